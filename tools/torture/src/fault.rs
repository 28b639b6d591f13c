//! The faults the runner injects, and their log (`faults.jsonl`).

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A fault the runner injects. Each store's setup declares which apply to
/// it ([`StoreSetup::faults`](crate::setup::StoreSetup::faults)); the runner
/// injects them in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `kill -9` of a worker process that holds a lock; a new worker takes
    /// over what it had left to do.
    #[serde(rename = "kill9")]
    Kill9,
    /// `SIGSTOP` of a worker process that holds a lock, past its TTL, then
    /// `SIGCONT`.
    #[serde(rename = "sigstop")]
    Stop,
    /// A worker thread abandons its lock and ends (the thread version of
    /// `kill -9`, for stores that live in one process).
    Crash,
    /// A worker thread stalls inside its critical section past its TTL (the
    /// thread version of `SIGSTOP`).
    Stall,
    /// The server cuts every worker connection to the store.
    KillConnections,
    /// The store's server is crashed and started again.
    Restart,
    /// A Redis Cluster replica is promoted with a manual `CLUSTER FAILOVER`.
    Failover,
}

impl Fault {
    /// The name in `faults.jsonl` and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill9",
            Fault::Stop => "sigstop",
            Fault::Crash => "crash",
            Fault::Stall => "stall",
            Fault::KillConnections => "kill_connections",
            Fault::Restart => "restart",
            Fault::Failover => "failover",
        }
    }

    /// Whether the fault ends a worker (its history ends where it died).
    pub fn ends_a_worker(self) -> bool {
        matches!(self, Fault::Kill9 | Fault::Crash)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault as injected: a line of `faults.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InjectedFault {
    /// What was done.
    pub kind: Fault,
    /// The worker it hit, if any.
    pub w: Option<u32>,
    /// When it was injected (µs).
    pub at: u64,
    /// When it ended (µs): `SIGCONT` sent, server back up.
    pub until: Option<u64>,
    /// The key the worker held at the time, if known.
    pub key: Option<String>,
}

/// The faults of a run, kept and appended to `faults.jsonl` as they are
/// injected: an interrupted run still leaves them behind, and the progress
/// line counts them while the run goes on.
#[derive(Debug)]
pub struct FaultLog {
    file: File,
    faults: Vec<InjectedFault>,
}

impl FaultLog {
    /// Creates (truncates) the log at `path`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, String> {
        Ok(FaultLog {
            file: File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
            faults: Vec::new(),
        })
    }

    /// Records a fault, one line in one `write` call.
    ///
    /// # Errors
    /// When the disk write fails.
    pub fn record(&mut self, fault: InjectedFault) -> Result<(), String> {
        let mut line = serde_json::to_vec(&fault).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| format!("faults.jsonl: {e}"))?;
        self.faults.push(fault);
        Ok(())
    }

    /// The faults recorded so far.
    pub fn faults(&self) -> &[InjectedFault] {
        &self.faults
    }

    /// The faults recorded, the log closed.
    pub fn into_faults(self) -> Vec<InjectedFault> {
        self.faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_names_earlier_runs_wrote() {
        let names: Vec<String> = [
            Fault::Kill9,
            Fault::Stop,
            Fault::Crash,
            Fault::Stall,
            Fault::KillConnections,
            Fault::Restart,
            Fault::Failover,
        ]
        .iter()
        .map(|f| {
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
            f.to_string()
        })
        .collect();
        assert_eq!(
            names,
            [
                "kill9",
                "sigstop",
                "crash",
                "stall",
                "kill_connections",
                "restart",
                "failover"
            ]
        );
    }
}
