//! Runs one store's torture: starts the workers, injects faults while they
//! run, then hands the histories to the checker.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::checker::{Findings, check};
use crate::fault::FaultLog;
use crate::history::{Event, read_history};
use crate::mode;
use crate::processes::run_processes;
use crate::progress::Progress;
use crate::renewing_hold::RenewalWork;
use crate::resource::FencedResource;
use crate::setup::StoreSetup;
use crate::threads::run_threads;
use crate::worker::{Rng, WorkerConfig};

/// How a run is sized.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Lock operations to reach per store.
    pub ops: u64,
    /// The CI run: fewer operations, no restarts of shared servers.
    pub short: bool,
    /// Where histories and the report go (`target/torture`).
    pub out: PathBuf,
    /// The worker executable.
    pub worker_exe: PathBuf,
    /// Print a progress line this often while a store runs (`None`: quiet).
    pub progress: Option<Duration>,
}

/// One store's result.
#[derive(Debug)]
pub struct StoreRun {
    /// The run.
    pub case: Case,
    /// What the checker found.
    pub findings: Findings,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Workers running at once.
    pub workers: u32,
    /// Keys contended for.
    pub keys: usize,
    /// Lock TTL.
    pub ttl: Duration,
    /// Whether workers were processes.
    pub processes: bool,
    /// Store notes for the report.
    pub notes: Vec<String>,
    /// Why the run could not complete, if it could not.
    pub failure: Option<String>,
    /// A demonstration of a misconfiguration: violations are expected.
    pub expect_violations: bool,
}

impl StoreRun {
    /// Whether the run completed without a violation.
    pub fn clean(&self) -> bool {
        self.failure.is_none() && self.findings.violation_total() == 0
    }

    /// Whether the run counts as a success: clean, or a demonstration that
    /// completed (its violations are the point).
    pub fn passed(&self) -> bool {
        self.clean() || (self.expect_violations && self.failure.is_none())
    }
}

const TTL: Duration = Duration::from_millis(400);
const MAX_PAUSE: Duration = Duration::from_millis(3);

/// Runs the torture of `case`: its target's store, plain or renewing.
pub fn run_store(case: Case, opts: &RunOptions) -> StoreRun {
    let renewing = case.renewing();
    let started = Instant::now();
    let dir = opts.out.join(case.to_string());
    let mut run = StoreRun {
        case,
        findings: Findings::default(),
        elapsed: Duration::ZERO,
        workers: 0,
        keys: 0,
        ttl: TTL,
        processes: false,
        notes: Vec::new(),
        failure: None,
        expect_violations: false,
    };
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(dir.join("logs")) {
        run.failure = Some(format!("cannot create {}: {e}", dir.display()));
        return run;
    }
    let mut setup = match StoreSetup::start(case.target, !opts.short, &dir) {
        Ok(setup) => setup,
        Err(e) => {
            run.failure = Some(e);
            return run;
        }
    };
    run.notes = setup.notes.clone();
    run.expect_violations = setup.expect_violations;
    run.processes = !setup.threads();
    if renewing {
        run.notes.push(format!(
            "renewal run: `LeasePolicy::renewing()` (renewed every TTL/3, drift margin TTL/100 + 1 ms); each hold works {} to {} steps of {} ms (two to three TTLs), checking the guard's lost signal before every read and write; holders are {} past their TTL in mid-hold",
            mode::WORK.min_steps,
            mode::WORK.max_steps,
            mode::WORK.step.as_millis(),
            if setup.threads() { "stalled (the whole thread)" } else { "stopped with SIGSTOP" },
        ));
    }
    let workers = if setup.threads() { 8 } else { 6 };
    let key_count = if renewing { mode::KEYS } else { 4 };
    run.workers = workers;
    run.keys = key_count;
    let keys: Vec<String> = (0..key_count).map(|k| format!("k{k}")).collect();
    let resource = FencedResource::new(dir.join("resource"));
    let result = resource
        .reset(&keys)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let ops = if renewing {
                // Sized in holds, alike for every store: a hold takes about
                // a second on the slowest store as on the fastest.
                mode::holds(opts.ops, opts.short)
            } else if opts.short {
                (opts.ops * setup.ops_factor).min(setup.max_ops.unwrap_or(u64::MAX))
            } else {
                opts.ops.min(setup.max_ops.unwrap_or(u64::MAX))
            };
            let plan = Plan {
                case,
                keys: keys.clone(),
                prefix: format!("torture:{:x}:", Rng::seeded().below(u64::MAX)),
                ops_per_worker: ops.div_ceil(u64::from(workers)),
                renewal: renewing.then_some(mode::WORK),
                workers,
                dir: dir.clone(),
                fault_every: if opts.short {
                    Duration::from_millis(300)
                } else {
                    Duration::from_millis(1_500)
                },
                deadline: if opts.short {
                    Duration::from_secs(120)
                } else {
                    Duration::from_secs(30 * 60)
                },
            };
            let mut faults = FaultLog::create(&dir.join("faults.jsonl"))?;
            let progress = opts
                .progress
                .map(|every| Progress::new(case, ops, &dir, TTL, every));
            std::thread::scope(|scope| {
                // Stopped when `_watching` drops, as the run ends.
                let _watching = progress.map(|p| p.watch(scope));
                if setup.threads() {
                    run_threads(&plan, &setup, &mut faults)
                } else {
                    run_processes(&plan, &mut setup, &opts.worker_exe, &mut faults)
                }
            })?;
            Ok(faults.into_faults())
        });
    setup.stop();
    let faults = match result {
        Ok(faults) => faults,
        Err(e) => {
            run.failure = Some(e);
            return run;
        }
    };
    let mut events = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("logs")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "jsonl") {
                events.extend(read_history(&path).unwrap_or_default());
            }
        }
    }
    let mut records = HashMap::new();
    for key in &keys {
        match resource.load(key) {
            Ok(record) => {
                records.insert(key.clone(), record);
            }
            Err(e) => run.failure = Some(format!("resource {key}: {e}")),
        }
    }
    run.findings = check(events, &faults, &records, TTL.as_micros() as u64);
    run.elapsed = started.elapsed();
    run
}

pub(crate) struct Plan {
    /// The run, which workers connect with (`redis-renewal`).
    pub(crate) case: Case,
    pub(crate) keys: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) ops_per_worker: u64,
    pub(crate) workers: u32,
    pub(crate) dir: PathBuf,
    pub(crate) fault_every: Duration,
    pub(crate) deadline: Duration,
    /// The renewal run's work per hold (`None`: the plain run).
    pub(crate) renewal: Option<RenewalWork>,
}

impl Plan {
    pub(crate) fn worker(&self, id: u32, ops: u64) -> WorkerConfig {
        WorkerConfig {
            id,
            keys: self.keys.clone(),
            lock_prefix: self.prefix.clone(),
            ops,
            ttl: TTL,
            max_pause: MAX_PAUSE,
            resource_dir: self.dir.join("resource"),
            history: self.dir.join("logs").join(format!("w{id}.jsonl")),
            give_up_after: Duration::from_secs(30),
            renewal: self.renewal,
        }
    }

    /// The operations left to a replacement for a worker that died (crash or
    /// `kill -9`) holding a lock, having finished `done` of its `ops`.
    ///
    /// A renewing hold lasts longer than the gap between faults, so redoing
    /// the hold that died could have the last worker killed again and again
    /// before it finishes one: there the dead hold counts as done, and every
    /// kill brings the run closer to its end.
    pub(crate) fn left_after_kill(&self, ops: u64, done: u64) -> u64 {
        ops.saturating_sub(done)
            .saturating_sub(u64::from(self.renewal.is_some()))
    }

    /// Sleeps `fault_every` in small steps; `false` once `done()` holds.
    pub(crate) fn wait_for_fault(&self, mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + self.fault_every;
        while Instant::now() < until {
            if done() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        !done()
    }
}

/// How long a stopped or stalled holder sleeps: past its TTL, by a random margin.
pub(crate) fn stall_for(rng: &mut Rng) -> Duration {
    TTL + Duration::from_millis(150 + rng.below(350))
}

pub(crate) fn count_ops(path: &Path) -> u64 {
    read_history(path)
        .unwrap_or_default()
        .iter()
        .filter(|e| matches!(e, Event::Released { .. }))
        .count() as u64
}

/// Writes `text` to `path`, creating its directory.
///
/// # Errors
/// On I/O failure.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path)?.write_all(text.as_bytes())
}
