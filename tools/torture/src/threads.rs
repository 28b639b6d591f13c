//! Workers as threads of the runner (the memory store cannot be shared by
//! processes): a crash abandons the held lock, a stall sleeps past the TTL
//! inside the critical section.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::fault::{Fault, FaultLog, InjectedFault};
use crate::history::now_us;
use crate::runner::{Plan, count_ops, stall_for};
use crate::setup::StoreSetup;
use crate::stores::connect;
use crate::worker::{Rng, ThreadControl, WorkerConfig, run_worker};

struct ThreadWorker {
    id: u32,
    ops: u64,
    history: PathBuf,
    handle: Option<JoinHandle<Result<(), String>>>,
    control: Arc<ThreadControl>,
}

pub(crate) fn run_threads(
    plan: &Plan,
    setup: &StoreSetup,
    faults: &mut FaultLog,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Workers connect with the run's name (`memory-renewal` renews leases).
    let locks = runtime.block_on(connect(plan.case, &setup.url))?;
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
    let rotation = setup.faults();
    let mut next_id = plan.workers;
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
        let holders: Vec<usize> = (0..workers.len())
            .filter(|&i| {
                let w = &workers[i];
                w.control.holding.load(Ordering::SeqCst)
                    && w.handle.as_ref().is_some_and(|h| !h.is_finished())
            })
            .collect();
        if holders.is_empty() {
            continue;
        }
        let i = holders[rng.below(holders.len() as u64) as usize];
        // The faults take turns among those actually injected.
        let kind = rotation[turn % rotation.len()];
        turn += 1;
        let at = now_us();
        if kind == Fault::Crash {
            // A crash: the worker abandons its lock; a fresh worker replaces it
            // so the load stays the same.
            workers[i].control.crash.store(true, Ordering::SeqCst);
            let done = join(&mut workers[i])?;
            // The replacement does what is left of the crashed worker's share.
            let left = plan.left_after_kill(workers[i].ops, done);
            workers.push(spawn(plan.worker(next_id, left)));
            faults.record(InjectedFault {
                kind,
                w: Some(workers[i].id),
                at,
                until: None,
                key: None,
            })?;
            next_id += 1;
        } else if kind == Fault::Stall {
            let stall = stall_for(&mut rng);
            workers[i]
                .control
                .stall_ms
                .store(stall.as_millis() as u64, Ordering::SeqCst);
            faults.record(InjectedFault {
                kind,
                w: Some(workers[i].id),
                at,
                until: Some(at + stall.as_micros() as u64),
                key: None,
            })?;
            std::thread::sleep(stall);
        } else {
            return Err(format!("{kind} is not a fault of worker threads"));
        }
    }
    for worker in &mut workers {
        join(worker)?;
    }
    Ok(())
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
