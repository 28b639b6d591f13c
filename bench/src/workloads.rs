//! The workloads, run through the public API exactly as a user would call it.
//! `bench/node/peer.mjs` runs the same ones on Node's Verrou; keep the two in
//! step.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use verrou_core::{Backoff, Lock, LockError, LockFactory, RetryPolicy};

use crate::sample::Sample;
use crate::stores::{Lane, RoundTrip};

/// Tasks of the concurrent workload.
pub const CONCURRENT_TASKS: usize = 64;
/// Tasks of the contended workload.
pub const CONTENDED_TASKS: usize = 16;
/// How long a contended holder keeps the lock ("briefly": one timer tick).
pub const HOLD: Duration = Duration::from_millis(1);
/// TTL of every lock taken; long enough never to expire during a round.
pub const TTL: Duration = Duration::from_secs(30);

/// The retry policy of the contended workload. The default polls every
/// 250 ms; here a waiter on a store without release announcements polls from
/// 0.5–1 ms growing to at most 10 ms, and memory and Redis wake it at once
/// (the delay is then only the fallback).
pub fn contention_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_delay(Duration::from_millis(1))
        .with_backoff(Backoff::Exponential {
            max_delay: Duration::from_millis(10),
        })
        .with_timeout(None)
}

/// Where one round's keys live: fresh for every run and round, so that no
/// leftover of an earlier run (or a cancelled acquire) is ever in the way.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `bench:<run>:<round>:`.
    pub fn new(run: &str, round: usize) -> Self {
        Keys {
            prefix: format!("bench:{run}:{round}"),
        }
    }

    fn key(&self, workload: &str, task: usize, i: u64) -> String {
        format!("{}:{workload}:{task}:{i}", self.prefix)
    }
}

/// The store's round-trip reference, back to back on one task; only the
/// round trip is timed.
pub async fn round_trip(round_trip: Arc<RoundTrip>, secs: f64) -> Result<Sample, String> {
    spawn(async move {
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < deadline {
            let t0 = Instant::now();
            round_trip.run().await.map_err(|e| describe(e.as_ref()))?;
            latencies.push(t0.elapsed());
        }
        Ok(single_task_sample(latencies))
    })
    .await
}

/// The same-work floor on one task: the store's own acquire and release on
/// a fresh key, back to back on `lane` (the store's connection, or the
/// driver comparison's), as [`sequential`] does through verrou; the pair is
/// timed. `name` keeps its keys apart from the other workloads'.
pub async fn floor_sequential(
    lane: Arc<dyn Lane>,
    keys: Keys,
    name: &'static str,
    secs: f64,
) -> Result<Sample, String> {
    lane.prepare().await.map_err(|e| describe(e.as_ref()))?;
    spawn(async move {
        let owner = verrou_core::random_owner().map_err(|e| describe(&e))?;
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut i = 0;
        while Instant::now() < deadline {
            let key = keys.key(name, 0, i);
            i += 1;
            let t0 = Instant::now();
            lane.acquire(&key, &owner)
                .await
                .map_err(|e| describe(e.as_ref()))?;
            lane.release(&key, &owner)
                .await
                .map_err(|e| describe(e.as_ref()))?;
            latencies.push(t0.elapsed());
        }
        Ok(single_task_sample(latencies))
    })
    .await
}

/// The same-work floor with many tasks: for each `(lane, tasks)`, that many
/// tasks doing acquire + release on fresh keys on the lane; throughput over
/// wall time, as [`concurrent`] measures it.
pub async fn floor_parallel(
    lanes: Vec<(Arc<dyn Lane>, usize)>,
    keys: Keys,
    name: &'static str,
    secs: f64,
) -> Result<Sample, String> {
    for (lane, _) in &lanes {
        lane.prepare().await.map_err(|e| describe(e.as_ref()))?;
    }
    let owner = verrou_core::random_owner().map_err(|e| describe(&e))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (lane, count) in lanes {
        for _ in 0..count {
            let task = tasks.len();
            let (lane, keys, owner) = (lane.clone(), keys.clone(), owner.clone());
            tasks.push(tokio::spawn(async move {
                let mut ops = 0u64;
                while Instant::now() < deadline {
                    let key = keys.key(name, task, ops);
                    lane.acquire(&key, &owner).await?;
                    lane.release(&key, &owner).await?;
                    ops += 1;
                }
                Ok::<u64, verrou_core::BoxError>(ops)
            }));
        }
    }
    let mut ops = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(n)) => ops += n,
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| describe(e.as_ref()));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("task panicked: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(Sample::rate(ops, started.elapsed().as_secs_f64())),
    }
}

/// Acquire + release on distinct keys, one task. Creating the lock handle
/// (no I/O) is not timed; the acquire and the release are.
pub async fn sequential(factory: LockFactory, keys: Keys, secs: f64) -> Result<Sample, String> {
    spawn(async move {
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut i = 0;
        while Instant::now() < deadline {
            let lock = factory
                .create_lock(keys.key("seq", 0, i), TTL)
                .map_err(|e| describe(&e))?;
            i += 1;
            let t0 = Instant::now();
            lock.acquire().await.map_err(|e| describe(&e))?;
            lock.release().await.map_err(|e| describe(&e))?;
            latencies.push(t0.elapsed());
        }
        Ok(single_task_sample(latencies))
    })
    .await
}

/// Acquire + release on distinct keys from 64 tasks sharing the factory (so
/// one client or pool); throughput over wall time, lock creation included.
pub async fn concurrent(factory: LockFactory, keys: Keys, secs: f64) -> Result<Sample, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|task| {
            let factory = factory.clone();
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut ops = 0u64;
                while Instant::now() < deadline {
                    let lock = factory.create_lock(keys.key("conc", task, ops), TTL)?;
                    lock.acquire().await?;
                    lock.release().await?;
                    ops += 1;
                }
                Ok::<u64, LockError>(ops)
            })
        })
        .collect();
    let mut ops = 0;
    for task in tasks {
        ops += task
            .await
            .map_err(|e| format!("task panicked: {e}"))?
            .map_err(|e| describe(&e))?;
    }
    Ok(Sample::rate(ops, started.elapsed().as_secs_f64()))
}

/// Shared by the tasks of the contended and hand-off workloads.
#[derive(Default)]
struct Turns {
    /// Acquisitions so far; a task that just released waits for it to move.
    acquisitions: AtomicU64,
    moved: Notify,
    /// When the current holder called `release()`.
    release_started: Mutex<Option<Instant>>,
    handoffs: Mutex<Vec<Duration>>,
}

/// 16 tasks take turns on one key, holding it for [`HOLD`]. After its turn a
/// task re-queues only once another task has taken the lock (or the round is
/// over), so every acquisition after the first is a hand-off to a different
/// task, as between independent workers. Hand-off latency: from the holder
/// calling `release()` to the next holder's `acquire()` returning.
pub async fn contended(factory: LockFactory, keys: Keys, secs: f64) -> Result<Sample, String> {
    let factory = factory.with_retry(contention_policy());
    let key = keys.key("contended", 0, 0);
    let turns = Arc::new(Turns::default());
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + Duration::from_secs_f64(secs));
    let tasks: Vec<_> = (0..CONTENDED_TASKS)
        .map(|_| {
            let lock = factory.create_lock(key.clone(), TTL);
            let turns = turns.clone();
            tokio::spawn(async move { take_turns(lock?, &turns, deadline, Some(HOLD)).await })
        })
        .collect();
    join_turn_takers(tasks).await?;
    Ok(turns.sample(deadline.into_std() - started, false))
}

/// Waiters of the hand-off workload.
pub const HANDOFF_TASKS: usize = 1000;

/// How long the waiters gather before the first release: one default retry
/// delay, so that every waiter has made its first attempt and registered
/// its release watch before the measured window opens.
pub const HANDOFF_GATHER: Duration = Duration::from_millis(250);

/// The hand-off workload's retry policy: the default one (poll every
/// 250 ms) without a timeout, as most users run it. On a store that
/// announces releases the poll is only the fallback; on one that does not,
/// 1000 waiters already poll about 4,000 times a second.
pub fn handoff_policy() -> RetryPolicy {
    RetryPolicy::default().with_timeout(None)
}

/// [`HANDOFF_TASKS`] tasks wait on one key with the default retry. A holder
/// takes the lock, holds it for no time (it only yields to the scheduler),
/// releases it and steps back until another task has taken it, then queues
/// again, so that about 999 tasks wait all the time and every acquisition
/// is a hand-off. A store that wakes every waiter on each release pays
/// about 1000 acquire attempts per hand-off; one that wakes one waiter pays
/// one or two. Measures hand-offs per second over the window after the
/// waiters have gathered, and the hand-off latency (the holder calling
/// `release()` to the next holder's `acquire()` returning) as a
/// distribution.
pub async fn handoff(factory: LockFactory, keys: Keys, secs: f64) -> Result<Sample, String> {
    let factory = factory.with_retry(handoff_policy());
    let key = keys.key("handoff", 0, 0);
    // Held while the waiters gather, so that every task starts as a waiter.
    let gate = factory
        .create_lock(key.clone(), TTL)
        .map_err(|e| describe(&e))?;
    gate.acquire().await.map_err(|e| describe(&e))?;
    let turns = Arc::new(Turns::default());
    let opens = tokio::time::Instant::now() + HANDOFF_GATHER;
    let deadline = opens + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..HANDOFF_TASKS)
        .map(|_| {
            let lock = factory.create_lock(key.clone(), TTL);
            let turns = turns.clone();
            tokio::spawn(async move { take_turns(lock?, &turns, deadline, None).await })
        })
        .collect();
    tokio::time::sleep_until(opens).await;
    *lock_unpoisoned(&turns.release_started) = Some(Instant::now());
    let opened = gate.release().await.map_err(|e| describe(&e));
    join_turn_takers(tasks).await?;
    opened?;
    Ok(turns.sample(deadline - opens, true))
}

/// One task of [`contended`] or [`handoff`]: acquire, count the hand-off,
/// hold for `hold` (`None`: only yield), release, then wait until another
/// task has taken the lock before queueing again; until `deadline`.
async fn take_turns(
    lock: Lock,
    turns: &Turns,
    deadline: tokio::time::Instant,
    hold: Option<Duration>,
) -> Result<(), LockError> {
    loop {
        // Dropping an acquire at the deadline is safe: a save in flight is
        // followed by an owner-checked release.
        match tokio::time::timeout_at(deadline, lock.acquire()).await {
            Err(_) => return Ok(()),
            Ok(acquired) => acquired?,
        }
        let at = Instant::now();
        if at >= deadline.into_std() {
            lock.release().await?;
            return Ok(());
        }
        if let Some(released) = *lock_unpoisoned(&turns.release_started) {
            lock_unpoisoned(&turns.handoffs).push(at - released);
        }
        let seen = turns.acquisitions.fetch_add(1, Ordering::SeqCst) + 1;
        turns.moved.notify_waiters();
        match hold {
            Some(hold) => tokio::time::sleep(hold).await,
            // A timer would round up to its 1 ms tick.
            None => tokio::task::yield_now().await,
        }
        let moved = turns.moved.notified();
        tokio::pin!(moved);
        moved.as_mut().enable();
        *lock_unpoisoned(&turns.release_started) = Some(Instant::now());
        lock.release().await?;
        while turns.acquisitions.load(Ordering::SeqCst) == seen {
            tokio::select! {
                () = &mut moved => moved.set(turns.moved.notified()),
                () = tokio::time::sleep_until(deadline) => return Ok(()),
            }
            moved.as_mut().enable();
        }
    }
}

async fn join_turn_takers(
    tasks: Vec<tokio::task::JoinHandle<Result<(), LockError>>>,
) -> Result<(), String> {
    // Every task is awaited, even after a failure, so that none outlives
    // the round and takes turns in the next workload's window.
    let mut first_error = None;
    for task in tasks {
        let outcome = task
            .await
            .map_err(|e| format!("task panicked: {e}"))
            .and_then(|r| r.map_err(|e| describe(&e)));
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Turns {
    /// Acquisitions over `window`, with the hand-off percentiles (and the
    /// whole distribution when `distribution`).
    fn sample(&self, window: Duration, distribution: bool) -> Sample {
        let mut handoffs = std::mem::take(&mut *lock_unpoisoned(&self.handoffs));
        handoffs.sort_unstable();
        let ops = self.acquisitions.load(Ordering::SeqCst);
        if distribution {
            Sample::with_distribution(ops, window.as_secs_f64(), &handoffs)
        } else {
            Sample::with_latencies(ops, window.as_secs_f64(), &handoffs)
        }
    }
}

/// Throughput of a single task is 1 / mean latency: the summed operation
/// times, not the wall time, so that untimed set-up does not count.
fn single_task_sample(mut latencies: Vec<Duration>) -> Sample {
    let secs = latencies.iter().sum::<Duration>().as_secs_f64();
    latencies.sort_unstable();
    Sample::with_latencies(latencies.len() as u64, secs, &latencies)
}

/// Runs a single-task workload on a runtime worker, like the tasks of the
/// concurrent workloads (the main thread only drives the run).
async fn spawn<F>(work: F) -> Result<Sample, String>
where
    F: Future<Output = Result<Sample, String>> + Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| format!("task panicked: {e}"))?
}

fn lock_unpoisoned<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data written in single assignments: a poisoned mutex is consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// An error with its chain of causes, on one line.
pub fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
