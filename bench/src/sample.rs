//! What one run of one workload measured, on either side.

use std::fmt;

/// The workloads, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// The store's bare round trip, one task (ours only).
    Floor,
    /// Acquire + release on distinct keys, one task.
    Sequential,
    /// Acquire + release on distinct keys, 64 tasks, one client/pool.
    Concurrent,
    /// 16 tasks taking turns on one key.
    Contended,
    /// 1000 tasks waiting on one key, each release handing it to one of
    /// them (ours only).
    Herd,
}

impl Workload {
    /// Every workload, in run order.
    pub const ALL: [Workload; 5] = [
        Workload::Floor,
        Workload::Sequential,
        Workload::Concurrent,
        Workload::Contended,
        Workload::Herd,
    ];

    /// The name used on the command line, in the peer protocol and the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Floor => "floor",
            Workload::Sequential => "sequential",
            Workload::Concurrent => "concurrent",
            Workload::Contended => "contended",
            Workload::Herd => "herd",
        }
    }

    /// Whether `bench/node/peer.mjs` runs it too. The floor is ours by
    /// definition; the herd is not mirrored because Node's Verrou only polls
    /// (every 250 ms), so 1000 of its waiters measure the poll interval, not
    /// a hand-off.
    pub fn has_peer(self) -> bool {
        !matches!(self, Workload::Floor | Workload::Herd)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One workload run: how many operations in how many seconds, and latency
/// percentiles where the workload has them (floor and sequential: per
/// operation; contended and herd: per hand-off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Completed operations (acquisitions for the contended and herd
    /// workloads).
    pub ops: u64,
    /// The seconds `ops` took: summed operation times for the single-task
    /// workloads, wall time for the others.
    pub secs: f64,
    /// Median latency in microseconds.
    pub p50_us: Option<f64>,
    /// 99th percentile latency in microseconds.
    pub p99_us: Option<f64>,
}

impl Sample {
    /// Operations per second.
    pub fn per_sec(&self) -> f64 {
        // Counts stay far below 2^52: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let ops = self.ops as f64;
        if self.secs > 0.0 {
            ops / self.secs
        } else {
            0.0
        }
    }
}
