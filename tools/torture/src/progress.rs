//! The progress line of a long run: every few seconds, how far the store
//! has got, what was done to it and what the checker finds so far.
//!
//! It reads what the run writes anyway (the workers' histories and
//! `faults.jsonl`), a few new lines at a time, from a thread of its own, so
//! the workers and the fault loop know nothing of it. The violations it
//! counts are a lower bound: a hold still open is left out until it ends
//! (or its worker is killed), and the resource's final balance is checked
//! only at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::Scope;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::case::Case;
use crate::checker::check_so_far;
use crate::fault::InjectedFault;
use crate::history::Event;

/// What the progress line needs to know about a run.
pub(crate) struct Progress {
    case: Case,
    /// Operations (holds, in a renewal run) the run is to reach.
    target: u64,
    logs: PathBuf,
    ttl_us: u64,
    every: Duration,
    started: Instant,
    faults: Tail<InjectedFault>,
    /// Each worker's history so far, by worker id.
    histories: BTreeMap<u32, Tail<Event>>,
}

/// Ends the watching thread when dropped.
pub(crate) struct Watch {
    _stop: Sender<()>,
}

impl Progress {
    /// A line every `every` for the run of `case` writing into `dir`.
    pub(crate) fn new(case: Case, target: u64, dir: &Path, ttl: Duration, every: Duration) -> Self {
        Progress {
            case,
            target,
            logs: dir.join("logs"),
            ttl_us: ttl.as_micros() as u64,
            every,
            started: Instant::now(),
            faults: Tail::new(dir.join("faults.jsonl")),
            histories: BTreeMap::new(),
        }
    }

    /// Prints a line every `every` on a thread of `scope` until the returned
    /// [`Watch`] drops.
    pub(crate) fn watch<'scope>(mut self, scope: &'scope Scope<'scope, '_>) -> Watch {
        let (stop, stopped) = mpsc::channel::<()>();
        scope.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(self.every) {
                eprintln!("{}", self.line());
            }
        });
        Watch { _stop: stop }
    }

    /// `torture: redis: 41200 of 100002 lock operations, 46 faults (12
    /// kill9, ...), 0 violations so far, 185 s`.
    fn line(&mut self) -> String {
        self.read();
        let faults = self.faults.items.as_slice();
        let findings = check_so_far(self.whole_holds(), faults, self.ttl_us);
        let unit = if self.case.renewing() {
            "renewing holds"
        } else {
            "lock operations"
        };
        let mut line = format!(
            "torture: {}: {} of {} {unit}, {} faults",
            self.case,
            findings.ops,
            self.target,
            faults.len()
        );
        if !findings.faults.is_empty() {
            let by_kind: Vec<String> = findings
                .faults
                .iter()
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect();
            let _ = write!(line, " ({})", by_kind.join(", "));
        }
        let _ = write!(
            line,
            ", {} violations so far, {} s",
            findings.violation_total(),
            self.started.elapsed().as_secs()
        );
        line
    }

    /// Reads what was written since the last line: new faults, new workers'
    /// histories, new events.
    fn read(&mut self) {
        self.faults.read_new();
        if let Ok(entries) = std::fs::read_dir(&self.logs) {
            for path in entries.flatten().map(|entry| entry.path()) {
                if let Some(id) = worker_id(&path) {
                    self.histories
                        .entry(id)
                        .or_insert_with(|| Tail::new(path.clone()));
                }
            }
        }
        for history in self.histories.values_mut() {
            history.read_new();
        }
    }

    /// Every event of the holds that are over: a worker's whole history once
    /// a fault ended it, else up to its last finished release (or failed
    /// acquire), past which a hold may still be open.
    fn whole_holds(&self) -> impl Iterator<Item = Event> + '_ {
        let ended: Vec<u32> = self
            .faults
            .items
            .iter()
            .filter(|fault| fault.kind.ends_a_worker())
            .filter_map(|fault| fault.w)
            .collect();
        self.histories.iter().flat_map(move |(id, history)| {
            let events = history.items.as_slice();
            let whole = if ended.contains(id) {
                events.len()
            } else {
                events
                    .iter()
                    .rposition(|e| matches!(e, Event::Released { .. } | Event::AcquireError { .. }))
                    .map_or(0, |last| last + 1)
            };
            events[..whole].iter().cloned()
        })
    }
}

/// `logs/w7.jsonl` → 7.
fn worker_id(path: &Path) -> Option<u32> {
    if path.extension()? != "jsonl" {
        return None;
    }
    path.file_stem()?.to_str()?.strip_prefix('w')?.parse().ok()
}

/// A JSON-lines file read as it grows: whole lines only, a torn last line
/// kept for the next read.
struct Tail<T> {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    items: Vec<T>,
}

impl<T: DeserializeOwned> Tail<T> {
    fn new(path: PathBuf) -> Self {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Appends the lines written since the last read (none if the file is
    /// not there yet).
    fn read_new(&mut self) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = std::mem::take(&mut self.partial);
        let Ok(read) = file.read_to_end(&mut bytes) else {
            return;
        };
        self.offset += read as u64;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(whole);
        self.items.extend(
            bytes
                .split(|&b| b == b'\n')
                .filter_map(|line| serde_json::from_slice(line).ok()),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::fault::{Fault, FaultLog};
    use crate::history::{Access, HistoryWriter, Op, Release};

    #[test]
    fn a_growing_file_is_read_line_by_line_across_torn_writes() {
        let dir = std::env::temp_dir().join(verrou_testkit::unique("verrou-torture-tail"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("numbers.jsonl");
        let mut file = File::create(&path).unwrap();
        let mut tail = Tail::<u64>::new(path);
        tail.read_new();
        file.write_all(b"1\n2\n3").unwrap();
        tail.read_new();
        assert_eq!(tail.items, [1, 2]);
        file.write_all(b"4\n").unwrap();
        tail.read_new();
        assert_eq!(tail.items, [1, 2, 34]);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn hold(w: u32, sent: u64, got: u64, tok: u64, rel_start: u64) -> Vec<Event> {
        let op = Op {
            w,
            n: 0,
            key: "k".into(),
            sent,
            got,
            tok: Some(tok),
            read: Access::Skipped,
            read_seq: 0,
            write: Access::Skipped,
            write_seq: 0,
            write_end: 0,
            rel_start,
            rel_end: rel_start + 1_000,
            rel: Release::Pending,
            stalled: false,
            renewals: 0,
        };
        vec![
            Event::Acquired {
                w,
                n: 0,
                key: "k".into(),
                sent,
                got,
                tok: Some(tok),
                renewing: false,
            },
            Event::Op(op),
            Event::Released {
                w,
                n: 0,
                rel: Release::Ok,
                rel_end: rel_start + 1_000,
            },
        ]
    }

    #[test]
    fn the_line_counts_finished_holds_faults_and_violations_so_far() {
        let dir = std::env::temp_dir().join(verrou_testkit::unique("verrou-torture-progress"));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let write = |w: u32, events: &[Event]| {
            let mut history = HistoryWriter::create(&dir.join(format!("logs/w{w}.jsonl"))).unwrap();
            for event in events {
                history.log(event).unwrap();
            }
        };
        // Worker 2 is granted the key while worker 1's lease is live.
        write(1, &hold(1, 1_000_000, 1_001_000, 1, 1_300_000));
        write(2, &hold(2, 1_099_000, 1_100_000, 2, 1_200_000));
        // Worker 3's hold is still open: left out.
        write(3, &hold(3, 1_500_000, 1_501_000, 3, 1_600_000)[..1]);
        let mut faults = FaultLog::create(&dir.join("faults.jsonl")).unwrap();
        faults
            .record(InjectedFault {
                kind: Fault::Stop,
                w: Some(3),
                at: 1_502_000,
                until: Some(2_000_000),
                key: None,
            })
            .unwrap();
        let case = Case::plain(crate::case::Target::Broken);
        let ttl = Duration::from_millis(400);
        let mut progress = Progress::new(case, 10, &dir, ttl, Duration::from_secs(5));
        let line = progress.line();
        assert!(
            line.starts_with("torture: broken: 2 of 10 lock operations, 1 faults (1 sigstop), 1 violations so far, "),
            "{line}"
        );
        // Worker 3 is killed: its hold counts, as the checker counts it.
        faults
            .record(InjectedFault {
                kind: Fault::Kill9,
                w: Some(3),
                at: 2_100_000,
                until: None,
                key: Some("k".into()),
            })
            .unwrap();
        let line = progress.line();
        assert!(
            line.contains(": 2 of 10 lock operations, 2 faults (1 kill9, 1 sigstop)"),
            "{line}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_worker_histories_count() {
        assert_eq!(worker_id(Path::new("logs/w12.jsonl")), Some(12));
        assert_eq!(worker_id(Path::new("logs/w12.err")), None);
        assert_eq!(worker_id(Path::new("faults.jsonl")), None);
    }
}
