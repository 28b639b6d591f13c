//! What one run of one workload measured, on either side.

use std::fmt;
use std::time::Duration;

use crate::stats::percentile;

/// The workloads, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// The store's cheapest request (Redis `PING`, `SELECT 1`, `GetItem`),
    /// one task: a round-trip reference line. For memory, which has no
    /// server, its floor: a `tokio::sync::Mutex` lock + unlock (ours only).
    RoundTrip,
    /// Same-work floor: the store's own acquire and release, issued bare on
    /// its driver, one task on the store's connection or pool (ours only).
    FloorSequential,
    /// The same scripts as [`Workload::FloorSequential`] on the `redis`
    /// crate's (redis-rs) multiplexed connection, one task: fred against
    /// redis-rs (single Redis and Valkey servers; ours only). Reported, not
    /// a target, and not one of the floors a target divides by.
    FloorSequentialRedisRs,
    /// The same at the concurrent workload's concurrency, on the store's
    /// connection or pool (ours only).
    FloorConcurrent,
    /// [`Workload::FloorConcurrent`]'s tasks on one redis-rs multiplexed
    /// connection (as [`Workload::FloorSequentialRedisRs`]).
    FloorConcurrentRedisRs,
    /// The same at a third concurrency (ours only): Redis, server-bound
    /// (several connections of its own with many operations in flight on
    /// each); SQL, verrou's default pool size on the store's pool.
    FloorServerBound,
    /// Acquire + release on distinct keys, one task.
    Sequential,
    /// Acquire + release on distinct keys, 64 tasks, one client/pool.
    Concurrent,
    /// 16 tasks taking turns on one key.
    Contended,
    /// 1000 tasks waiting on one key with the default retry, each taking
    /// the lock, holding it for no time and releasing it.
    Handoff,
}

impl Workload {
    /// Every workload, in run order.
    pub const ALL: [Workload; 10] = [
        Workload::RoundTrip,
        Workload::FloorSequential,
        Workload::FloorSequentialRedisRs,
        Workload::FloorConcurrent,
        Workload::FloorConcurrentRedisRs,
        Workload::FloorServerBound,
        Workload::Sequential,
        Workload::Concurrent,
        Workload::Contended,
        Workload::Handoff,
    ];

    /// The same-work floors (run only on stores that have one), those the
    /// targets divide by.
    pub const FLOORS: [Workload; 3] = [
        Workload::FloorSequential,
        Workload::FloorConcurrent,
        Workload::FloorServerBound,
    ];

    /// The same work on another driver (run only on stores whose floor has
    /// a driver comparison): reported beside the floors, judged by no
    /// target.
    pub const DRIVER_COMPARISON: [Workload; 2] = [
        Workload::FloorSequentialRedisRs,
        Workload::FloorConcurrentRedisRs,
    ];

    /// The name used on the command line, in the peer protocol and the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::RoundTrip => "round-trip",
            Workload::FloorSequential => "floor-sequential",
            Workload::FloorSequentialRedisRs => "floor-sequential-redis-rs",
            Workload::FloorConcurrent => "floor-concurrent",
            Workload::FloorConcurrentRedisRs => "floor-concurrent-redis-rs",
            Workload::FloorServerBound => "floor-server-bound",
            Workload::Sequential => "sequential",
            Workload::Concurrent => "concurrent",
            Workload::Contended => "contended",
            Workload::Handoff => "handoff",
        }
    }

    /// Whether it is one of the same-work floors, or the same work on
    /// another driver: bare work, run only where the store has a floor.
    pub fn is_floor(self) -> bool {
        Workload::FLOORS.contains(&self) || self.is_driver_comparison()
    }

    /// Whether it is the same work on another driver (redis-rs).
    pub fn is_driver_comparison(self) -> bool {
        Workload::DRIVER_COMPARISON.contains(&self)
    }

    /// Whether `bench/node/peer.mjs` runs it too: the floors and the
    /// round-trip reference are ours by definition.
    pub fn has_peer(self) -> bool {
        !matches!(self, Workload::RoundTrip) && !self.is_floor()
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The quantiles a hand-off latency distribution is kept at (for the
/// charts): every percent, then the tail. `bench/node/peer.mjs` sends the
/// same ones.
pub const CDF_QUANTILES: [f64; 103] = {
    let mut q = [0.0; 103];
    let mut i = 0;
    while i < 100 {
        q[i] = i as f64 / 100.0;
        i += 1;
    }
    q[100] = 0.995;
    q[101] = 0.999;
    q[102] = 1.0;
    q
};

/// One workload run: how many operations in how many seconds, and latency
/// percentiles where the workload has them (round trip, floor and
/// sequential: per operation; contended and hand-off: per hand-off).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Completed operations (acquisitions for the contended and hand-off
    /// workloads).
    pub ops: u64,
    /// The seconds `ops` took: summed operation times for the single-task
    /// workloads, wall time for the others.
    pub secs: f64,
    /// Median latency in microseconds.
    pub p50_us: Option<f64>,
    /// 99th percentile latency in microseconds.
    pub p99_us: Option<f64>,
    /// The latency in microseconds at each of [`CDF_QUANTILES`], for the
    /// hand-off workload (empty otherwise).
    pub cdf_us: Vec<f64>,
}

impl Sample {
    /// A sample without latencies.
    pub fn rate(ops: u64, secs: f64) -> Sample {
        Sample {
            ops,
            secs,
            p50_us: None,
            p99_us: None,
            cdf_us: Vec::new(),
        }
    }

    /// A sample with the percentiles of `sorted` latencies.
    pub fn with_latencies(ops: u64, secs: f64, sorted: &[Duration]) -> Sample {
        Sample {
            ops,
            secs,
            p50_us: micros(percentile(sorted, 0.5)),
            p99_us: micros(percentile(sorted, 0.99)),
            cdf_us: Vec::new(),
        }
    }

    /// The same, keeping the whole distribution at [`CDF_QUANTILES`].
    pub fn with_distribution(ops: u64, secs: f64, sorted: &[Duration]) -> Sample {
        Sample {
            cdf_us: CDF_QUANTILES
                .iter()
                .filter_map(|&q| micros(percentile(sorted, q)))
                .collect(),
            ..Sample::with_latencies(ops, secs, sorted)
        }
    }

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

fn micros(d: Option<Duration>) -> Option<f64> {
    // Nanoseconds ÷ 1000: exact for whole microseconds, where seconds × 1e6
    // is not. Latencies stay far below 2^52 ns.
    #[allow(clippy::cast_precision_loss)]
    d.map(|d| d.as_nanos() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_is_kept_at_every_quantile() {
        let sorted: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let sample = Sample::with_distribution(1000, 1.0, &sorted);
        assert_eq!(sample.cdf_us.len(), CDF_QUANTILES.len());
        assert_eq!(sample.cdf_us[0], 1.0);
        assert_eq!(sample.cdf_us[50], 501.0);
        assert_eq!(sample.cdf_us[102], 1000.0);
        assert_eq!(sample.p50_us, Some(501.0));
        assert!(Sample::with_distribution(0, 1.0, &[]).cdf_us.is_empty());
    }
}
