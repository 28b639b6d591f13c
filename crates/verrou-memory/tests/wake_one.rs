//! A release wakes one waiter, and the lock is still passed on to every
//! waiter promptly: nobody is left to its retry delay, even when woken
//! waiters are cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{
    Acquisition, Expiry, LockError, LockFactory, LockStore, ReleaseWatch, RetryPolicy, Ttl,
    async_trait,
};
use verrou_memory::MemoryStore;

/// The memory store, counting the acquire calls that reach it: every
/// wake-up of a waiter costs one.
struct Counted {
    inner: MemoryStore,
    acquires: AtomicU64,
}

#[async_trait]
impl LockStore for Counted {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        self.inner.acquire(key, owner, expiry).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner.release(key, owner).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.inner.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.inner.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        self.inner.extend(key, owner, expiry).await
    }
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        self.inner.watch_release(key).await
    }
    fn max_key_bytes(&self) -> usize {
        self.inner.max_key_bytes()
    }
}

/// A retry delay no waiter may end up depending on: every hand-off must come
/// from a release's wake-up.
const DELAY: Duration = Duration::from_secs(30);
/// Far below `DELAY`, far above what the hand-offs take.
const BOUND: Duration = Duration::from_secs(20);

fn counted() -> (Arc<Counted>, LockFactory) {
    let counted = Arc::new(Counted {
        inner: MemoryStore::new(),
        acquires: AtomicU64::new(0),
    });
    let locks = LockFactory::from_arc(counted.clone() as Arc<dyn LockStore>).with_retry(
        RetryPolicy::default()
            .with_delay(DELAY)
            .with_timeout(Some(DELAY * 2)),
    );
    (counted, locks)
}

/// Waits until the store has seen `calls` acquires: each waiter makes two
/// (its try, and the re-check after registering its watch) before it sleeps.
async fn until_acquires(counted: &Counted, calls: u64) {
    let started = Instant::now();
    while counted.acquires.load(Ordering::SeqCst) < calls {
        assert!(started.elapsed() < BOUND, "the waiters never all waited");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Marks the lock as held by this task; dropped (by the end of the hold or by
/// an abort) before the guard that releases the lock.
struct Holding(Arc<AtomicBool>);

impl Holding {
    fn enter(inside: Arc<AtomicBool>) -> Self {
        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
        Holding(inside)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Spawns `n` waiters on `key`; each takes the lock once (alone: `inside`
/// catches two holders at once) and releases it.
fn waiters(
    locks: &LockFactory,
    key: &str,
    n: usize,
    inside: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let lock = locks.create_lock(key, "30s").unwrap();
            let inside = inside.clone();
            tokio::spawn(async move {
                // A guard: a waiter aborted while holding releases in the
                // background.
                let guard = lock.acquire_guard().await.unwrap();
                let holding = Holding::enter(inside);
                tokio::task::yield_now().await;
                drop(holding);
                guard.release().await.unwrap();
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_waiters_each_get_the_lock_with_one_wake_up_per_release() {
    const WAITERS: usize = 200;
    let (counted, locks) = counted();
    let holder = locks.create_lock("herd", Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let tasks = waiters(&locks, "herd", WAITERS, &inside);
    until_acquires(&counted, 1 + 2 * WAITERS as u64).await;

    let before = counted.acquires.load(Ordering::SeqCst);
    let started = Instant::now();
    holder.release().await.unwrap();
    for task in tasks {
        tokio::time::timeout(BOUND.saturating_sub(started.elapsed()), task)
            .await
            .expect("a waiter was left to its retry delay")
            .unwrap();
    }
    let after_release = counted.acquires.load(Ordering::SeqCst) - before;
    // One successful acquire each, plus the odd attempt of a waiter woken
    // while the next holder already had the lock. Waking every waiter on
    // each release would take about WAITERS² / 2 (20,000) here.
    eprintln!(
        "{after_release} acquire calls for {WAITERS} hand-offs in {:?}",
        started.elapsed()
    );
    assert!(
        after_release <= 3 * WAITERS as u64,
        "{after_release} acquire calls for {WAITERS} hand-offs"
    );
    assert!(counted.inner.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiters_pass_their_wake_up_on() {
    const WAITERS: usize = 100;
    let (counted, locks) = counted();
    let holder = locks.create_lock("cancelled", Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let mut tasks = waiters(&locks, "cancelled", WAITERS, &inside);
    until_acquires(&counted, 1 + 2 * WAITERS as u64).await;

    // Half of them go away right as the release wakes the first in line
    // (queued first, so likely one of them), some possibly after being
    // chosen and before seeing it.
    let started = Instant::now();
    holder.release().await.unwrap();
    let kept: Vec<_> = tasks
        .drain(..)
        .enumerate()
        .filter_map(|(i, task)| {
            if i % 2 == 0 {
                task.abort();
                None
            } else {
                Some(task)
            }
        })
        .collect();
    for task in kept {
        tokio::time::timeout(BOUND.saturating_sub(started.elapsed()), task)
            .await
            .expect("a waiter was left to its retry delay")
            .unwrap();
    }
    // The aborted tasks that had taken the lock released it in the
    // background (or were cancelled before taking it).
    let free = async {
        while counted.inner.is_locked("cancelled").await.unwrap() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(BOUND, free)
        .await
        .expect("the lock was released");
}
