//! Workers as threads of the runner (the memory store cannot be shared by
//! processes): a crash abandons the held lock, a stall sleeps past the TTL
//! inside the critical section.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use super::history::{Fault, now_us};
use super::runner::{Plan, count_ops, stall_for};
use super::stores::{StoreSetup, connect};
use super::worker::{Rng, ThreadControl, WorkerConfig, run_worker};

struct ThreadWorker {
    id: u32,
    ops: u64,
    history: PathBuf,
    handle: Option<JoinHandle<Result<(), String>>>,
    control: Arc<ThreadControl>,
}

pub(super) fn run_threads(plan: &Plan, setup: &StoreSetup) -> Result<Vec<Fault>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Workers connect with the run's name (`memory-renewal` renews leases).
    let locks = runtime.block_on(connect(&plan.store, &setup.url))?;
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
        // Crash and stall take turns among the faults actually injected.
        turn += 1;
        let at = now_us();
        if turn % 2 == 0 {
            // A crash: the worker abandons its lock; a fresh worker replaces it
            // so the load stays the same.
            workers[i].control.crash.store(true, Ordering::SeqCst);
            let done = join(&mut workers[i])?;
            // The replacement does what is left of the crashed worker's share.
            let left = plan.left_after_kill(workers[i].ops, done);
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
