//! Runs one store's torture: starts the workers, injects faults while they
//! run, then hands the histories to the checker.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::checker::{Findings, check};
use super::history::{Event, Fault, now_us, read_history};
use super::resource::FencedResource;
use super::stores::{StoreSetup, connect};
use super::worker::{Rng, ThreadControl, WorkerConfig, run_worker};

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
}

/// One store's result.
#[derive(Debug)]
pub struct StoreRun {
    /// The store.
    pub store: String,
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

/// Runs the torture against `store`.
pub fn run_store(store: &str, opts: &RunOptions) -> StoreRun {
    let started = Instant::now();
    let dir = opts.out.join(store);
    let mut run = StoreRun {
        store: store.to_owned(),
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
    let mut setup = match StoreSetup::start(store, !opts.short, &dir) {
        Ok(setup) => setup,
        Err(e) => {
            run.failure = Some(e);
            return run;
        }
    };
    run.notes = setup.notes.clone();
    run.expect_violations = setup.expect_violations;
    run.processes = !setup.threads;
    let (workers, key_count) = if setup.threads { (8, 4) } else { (6, 4) };
    run.workers = workers;
    run.keys = key_count;
    let keys: Vec<String> = (0..key_count).map(|k| format!("k{k}")).collect();
    let resource = FencedResource::new(dir.join("resource"));
    let result = resource
        .reset(&keys)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let plan = Plan {
                keys: keys.clone(),
                prefix: format!("torture:{:x}:", Rng::seeded().below(u64::MAX)),
                ops_per_worker: opts
                    .ops
                    .min(setup.max_ops.unwrap_or(u64::MAX))
                    .div_ceil(u64::from(workers)),
                workers,
                dir: dir.clone(),
                fault_every: if opts.short {
                    Duration::from_millis(800)
                } else {
                    Duration::from_millis(1_500)
                },
                deadline: if opts.short {
                    Duration::from_secs(120)
                } else {
                    Duration::from_secs(30 * 60)
                },
            };
            if setup.threads {
                run_threads(&plan, &setup)
            } else {
                run_processes(&plan, &mut setup, &opts.worker_exe)
            }
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
    let faults_log = faults
        .iter()
        .filter_map(|f| serde_json::to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let _ = std::fs::write(dir.join("faults.jsonl"), faults_log);
    run.findings = check(events, &faults, &records, TTL.as_micros() as u64);
    run.elapsed = started.elapsed();
    run
}

struct Plan {
    keys: Vec<String>,
    prefix: String,
    ops_per_worker: u64,
    workers: u32,
    dir: PathBuf,
    fault_every: Duration,
    deadline: Duration,
}

impl Plan {
    fn worker(&self, id: u32, ops: u64) -> WorkerConfig {
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
        }
    }

    /// Sleeps `fault_every` in small steps; `false` once `done()` holds.
    fn wait_for_fault(&self, mut done: impl FnMut() -> bool) -> bool {
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
fn stall_for(rng: &mut Rng) -> Duration {
    TTL + Duration::from_millis(150 + rng.below(350))
}

// ---- workers as threads (the memory store) --------------------------------

struct ThreadWorker {
    id: u32,
    ops: u64,
    history: PathBuf,
    handle: Option<JoinHandle<Result<(), String>>>,
    control: Arc<ThreadControl>,
}

fn run_threads(plan: &Plan, setup: &StoreSetup) -> Result<Vec<Fault>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let locks = runtime.block_on(connect(&setup.name, &setup.url))?;
    let spawn = |config: WorkerConfig| {
        let control = Arc::new(ThreadControl::default());
        let (locks, thread_control) = (locks.clone(), control.clone());
        let (id, ops, history) = (config.id, config.ops, config.history.clone());
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(run_worker(&config, &locks, Some(thread_control)))
        });
        ThreadWorker {
            id,
            ops,
            history,
            handle: Some(handle),
            control,
        }
    };
    let mut workers: Vec<ThreadWorker> = (0..plan.workers)
        .map(|id| spawn(plan.worker(id, plan.ops_per_worker)))
        .collect();
    let mut next_id = plan.workers;
    let mut faults = Vec::new();
    let mut rng = Rng::seeded();
    let started = Instant::now();
    let mut turn = 0;
    let running = |workers: &Vec<ThreadWorker>| {
        workers
            .iter()
            .filter(|w| w.handle.as_ref().is_some_and(|h| !h.is_finished()))
            .count()
    };
    while plan.wait_for_fault(|| running(&workers) == 0) {
        if started.elapsed() > plan.deadline {
            return Err(format!("not finished after {:?}", plan.deadline));
        }
        turn += 1;
        let holder = workers.iter().position(|w| {
            w.control.holding.load(Ordering::SeqCst)
                && w.handle.as_ref().is_some_and(|h| !h.is_finished())
        });
        let Some(i) = holder else { continue };
        let at = now_us();
        if turn % 2 == 0 {
            // A crash: the worker abandons its lock; a fresh worker replaces it
            // so the load stays the same.
            workers[i].control.crash.store(true, Ordering::SeqCst);
            let done = join(&mut workers[i])?;
            // The replacement does what is left of the crashed worker's share.
            let left = workers[i].ops.saturating_sub(done);
            workers.push(spawn(plan.worker(next_id, left)));
            faults.push(Fault {
                kind: "crash".into(),
                w: Some(workers[i].id),
                at,
                until: None,
                key: None,
            });
            next_id += 1;
        } else {
            let stall = stall_for(&mut rng);
            workers[i]
                .control
                .stall_ms
                .store(stall.as_millis() as u64, Ordering::SeqCst);
            faults.push(Fault {
                kind: "stall".into(),
                w: Some(workers[i].id),
                at,
                until: Some(at + stall.as_micros() as u64),
                key: None,
            });
            std::thread::sleep(stall);
        }
    }
    for worker in &mut workers {
        join(worker)?;
    }
    Ok(faults)
}

/// Joins a worker thread; returns how many operations its history shows.
fn join(worker: &mut ThreadWorker) -> Result<u64, String> {
    if let Some(handle) = worker.handle.take() {
        handle
            .join()
            .map_err(|_| "a worker thread panicked".to_owned())??;
    }
    Ok(count_ops(&worker.history))
}

// ---- workers as processes -------------------------------------------------

struct ProcWorker {
    id: u32,
    child: Child,
    config: WorkerConfig,
    done: bool,
}

fn run_processes(plan: &Plan, setup: &mut StoreSetup, exe: &Path) -> Result<Vec<Fault>, String> {
    let (name, url) = (setup.name.clone(), setup.url.clone());
    let spawn = |config: WorkerConfig| -> Result<ProcWorker, String> {
        let err = File::create(config.history.with_extension("err")).map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(config.to_args(&name, &url))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        Ok(ProcWorker {
            id: config.id,
            child,
            config,
            done: false,
        })
    };
    let mut workers = Vec::new();
    for id in 0..plan.workers {
        workers.push(spawn(plan.worker(id, plan.ops_per_worker))?);
    }
    let result = drive_processes(plan, setup, &mut workers, &spawn);
    for worker in &mut workers {
        // Never leave a stopped or running worker behind.
        let _ = signal(worker.child.id(), "CONT");
        let _ = worker.child.kill();
        let _ = worker.child.wait();
    }
    result
}

fn drive_processes(
    plan: &Plan,
    setup: &mut StoreSetup,
    workers: &mut Vec<ProcWorker>,
    spawn: &dyn Fn(WorkerConfig) -> Result<ProcWorker, String>,
) -> Result<Vec<Fault>, String> {
    let mut rotation = vec!["kill9", "stop"];
    rotation.extend(setup.store_faults());
    let mut next_id = plan.workers;
    let mut faults = Vec::new();
    let mut rng = Rng::seeded();
    let started = Instant::now();
    let mut turn = 0usize;
    loop {
        let mut failure = None;
        let all_done = |workers: &mut Vec<ProcWorker>, failure: &mut Option<String>| {
            for w in workers.iter_mut().filter(|w| !w.done) {
                if let Ok(Some(status)) = w.child.try_wait() {
                    w.done = true;
                    if !status.success() && failure.is_none() {
                        let err = std::fs::read_to_string(w.config.history.with_extension("err"))
                            .unwrap_or_default();
                        *failure =
                            Some(format!("worker {} failed ({status}): {}", w.id, err.trim()));
                    }
                }
            }
            workers.iter().all(|w| w.done)
        };
        let more = plan.wait_for_fault(|| all_done(workers, &mut failure) || failure.is_some());
        if let Some(failure) = failure {
            return Err(failure);
        }
        if !more {
            return Ok(faults);
        }
        if started.elapsed() > plan.deadline {
            return Err(format!("not finished after {:?}", plan.deadline));
        }
        let kind = rotation[turn % rotation.len()];
        turn += 1;
        match kind {
            "kill9" | "stop" => {
                let Some(i) = find_holder(workers, &mut rng) else {
                    continue;
                };
                let pid = workers[i].child.id();
                let at = now_us();
                if kind == "kill9" {
                    let _ = workers[i].child.kill();
                    let _ = workers[i].child.wait();
                    workers[i].done = true;
                    let key = last_event(&workers[i].config.history).and_then(|e| match e {
                        Event::Acquired { key, .. } => Some(key),
                        _ => None,
                    });
                    let done_ops = count_ops(&workers[i].config.history);
                    let remaining = workers[i].config.ops.saturating_sub(done_ops);
                    faults.push(Fault {
                        kind: "kill9".into(),
                        w: Some(workers[i].id),
                        at,
                        until: None,
                        key,
                    });
                    if remaining > 0 {
                        workers.push(spawn(plan.worker(next_id, remaining))?);
                        next_id += 1;
                    }
                } else {
                    signal(pid, "STOP")?;
                    let stall = stall_for(&mut rng);
                    std::thread::sleep(stall);
                    signal(pid, "CONT")?;
                    faults.push(Fault {
                        kind: "sigstop".into(),
                        w: Some(workers[i].id),
                        at,
                        until: Some(now_us()),
                        key: None,
                    });
                }
            }
            store_fault => {
                let at = now_us();
                setup.inject(store_fault)?;
                faults.push(Fault {
                    kind: store_fault.into(),
                    w: None,
                    at,
                    until: Some(now_us()),
                    key: None,
                });
            }
        }
    }
}

/// A running worker whose history ends with an acquire (it holds a lock),
/// polled for up to half a second.
fn find_holder(workers: &[ProcWorker], rng: &mut Rng) -> Option<usize> {
    let running: Vec<usize> = (0..workers.len()).filter(|&i| !workers[i].done).collect();
    if running.is_empty() {
        return None;
    }
    for _ in 0..250 {
        let i = running[rng.below(running.len() as u64) as usize];
        if matches!(
            last_event(&workers[i].config.history),
            Some(Event::Acquired { .. })
        ) {
            return Some(i);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .map_err(|e| format!("kill -{sig}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid}: {status}"))
    }
}

/// The last complete event of a history (reads only its tail).
fn last_event(path: &Path) -> Option<Event> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(2048))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
}

fn count_ops(path: &Path) -> u64 {
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
