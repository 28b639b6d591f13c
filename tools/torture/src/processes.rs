//! Workers as separate processes: `kill -9` of a holder, `SIGSTOP` past its
//! TTL then `SIGCONT`, and the store's own faults (cut connections, restarts).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fault::{Fault, FaultLog, InjectedFault};
use crate::history::{Event, now_us};
use crate::mode::Mode;
use crate::runner::{Plan, count_ops, stall_for};
use crate::setup::StoreSetup;
use crate::skew;
use crate::worker::{Rng, WorkerConfig};

struct ProcWorker {
    id: u32,
    child: Child,
    config: WorkerConfig,
    done: bool,
}

pub(crate) fn run_processes(
    plan: &Plan,
    setup: &mut StoreSetup,
    exe: &Path,
    faults: &mut FaultLog,
) -> Result<(), String> {
    // Workers connect with the run's name (`redis-renewal` renews leases).
    let (case, url) = (plan.case, setup.url.clone());
    let spawn = |config: WorkerConfig| -> Result<ProcWorker, String> {
        let err = File::create(config.history.with_extension("err")).map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        if skew::applies(case.target, config.id) {
            skew::apply(&mut command)?;
        }
        let child = command
            .args(config.to_args(case, &url))
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
    let result = drive_processes(plan, setup, &mut workers, &spawn, faults);
    // Never leave a stopped or running worker behind. Only workers not yet
    // reaped are signalled: a reaped worker's pid may belong to someone else.
    for worker in workers.iter_mut().filter(|w| !w.done) {
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
    faults: &mut FaultLog,
) -> Result<(), String> {
    let mut rotation = setup.faults().to_vec();
    if plan.case.mode == Mode::Renewal {
        // The renewal run is about holders stopped past their TTL: twice
        // as many stops.
        if let Some(i) = rotation.iter().position(|&f| f == Fault::Stop) {
            rotation.insert(i, Fault::Stop);
        }
    }
    let mut next_id = plan.workers;
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
            return Ok(());
        }
        if started.elapsed() > plan.deadline {
            return Err(format!("not finished after {:?}", plan.deadline));
        }
        let kind = rotation[turn % rotation.len()];
        turn += 1;
        match kind {
            Fault::Kill9 | Fault::Stop => {
                let Some(i) = find_holder(workers, &mut rng) else {
                    continue;
                };
                let pid = workers[i].child.id();
                if kind == Fault::Kill9 {
                    let at = now_us();
                    let _ = workers[i].child.kill();
                    let _ = workers[i].child.wait();
                    workers[i].done = true;
                    let key = held_key(&workers[i].config.history);
                    let done_ops = count_ops(&workers[i].config.history);
                    let remaining = plan.left_after_kill(workers[i].config.ops, done_ops);
                    faults.record(InjectedFault {
                        kind,
                        w: Some(workers[i].id),
                        at,
                        until: None,
                        key,
                    })?;
                    if remaining > 0 {
                        workers.push(spawn(plan.worker(next_id, remaining))?);
                        next_id += 1;
                    }
                } else {
                    // `at` once the signal is sent and `until` before it is
                    // lifted: the worker was stopped for all of `at..until`,
                    // which the renewal run's checker relies on.
                    signal(pid, "STOP")?;
                    let at = now_us();
                    let stall = stall_for(&mut rng);
                    std::thread::sleep(stall);
                    let until = now_us();
                    signal(pid, "CONT")?;
                    faults.record(InjectedFault {
                        kind,
                        w: Some(workers[i].id),
                        at,
                        until: Some(until),
                        key: None,
                    })?;
                }
            }
            store_fault => {
                let at = now_us();
                setup.inject(store_fault)?;
                faults.record(InjectedFault {
                    kind: store_fault,
                    w: None,
                    at,
                    until: Some(now_us()),
                    key: None,
                })?;
            }
        }
    }
}

/// A running worker whose history says it holds a lock, polled for up to
/// half a second.
fn find_holder(workers: &[ProcWorker], rng: &mut Rng) -> Option<usize> {
    let running: Vec<usize> = (0..workers.len()).filter(|&i| !workers[i].done).collect();
    if running.is_empty() {
        return None;
    }
    for _ in 0..250 {
        let i = running[rng.below(running.len() as u64) as usize];
        let events = last_events(&workers[i].config.history);
        if events.last().is_some_and(Event::holding) {
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

/// The key a worker holds, if its history says it holds one.
fn held_key(path: &Path) -> Option<String> {
    let events = last_events(path);
    if !events.last().is_some_and(Event::holding) {
        return None;
    }
    events.into_iter().rev().find_map(|e| match e {
        Event::Acquired { key, .. } => Some(key),
        _ => None,
    })
}

/// The complete events at the end of a history (reads only its tail, long
/// enough for a renewing hold's steps since its acquire).
fn last_events(path: &Path) -> Vec<Event> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if file
        .seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))
        .is_err()
    {
        return Vec::new();
    }
    let mut tail = Vec::new();
    if file.read_to_end(&mut tail).is_err() {
        return Vec::new();
    }
    String::from_utf8_lossy(&tail)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
