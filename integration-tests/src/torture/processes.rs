//! Workers as separate processes: `kill -9` of a holder, `SIGSTOP` past its
//! TTL then `SIGCONT`, and the store's own faults (cut connections, restarts).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::history::{Event, Fault, now_us};
use super::runner::{Plan, count_ops, stall_for};
use super::skew;
use super::stores::StoreSetup;
use super::worker::{Rng, WorkerConfig};

struct ProcWorker {
    id: u32,
    child: Child,
    config: WorkerConfig,
    done: bool,
}

pub(super) fn run_processes(
    plan: &Plan,
    setup: &mut StoreSetup,
    exe: &Path,
) -> Result<Vec<Fault>, String> {
    let (name, url) = (setup.name.clone(), setup.url.clone());
    let spawn = |config: WorkerConfig| -> Result<ProcWorker, String> {
        let err = File::create(config.history.with_extension("err")).map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        if skew::applies(&name, config.id) {
            skew::apply(&mut command)?;
        }
        let child = command
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
