//! A release wakes one local waiter, not all of them, and a woken waiter
//! that goes away does not strand the others (see "One waiter per release"
//! in `src/announcements.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use verrou_core::{
    Acquisition, Expiry, LockError, LockFactory, LockStore, ReleaseWatch, RetryPolicy, async_trait,
};
use verrou_redis::RedisStore;
use verrou_testkit::{Service, unique};

const TTL: Duration = Duration::from_secs(30);
/// Far above every bound below: a waiter that gets the lock in time was
/// woken by an announcement, not by its own polling.
const RETRY_DELAY: Duration = Duration::from_secs(60);

/// A prefix no other test or run uses.
fn prefix(name: &str) -> String {
    format!("{}:", unique(&format!("verrou-wake-{name}")))
}

async fn store(prefix: &str) -> Option<RedisStore> {
    let store = RedisStore::builder()
        .url(Service::Redis.url())
        .prefix(prefix)
        .build()
        .await;
    verrou_conformance::require_service("redis", store)
}

fn poll_once(watch: &mut ReleaseWatch) -> Poll<()> {
    Pin::new(watch).poll(&mut Context::from_waker(Waker::noop()))
}

async fn watch(store: &RedisStore, key: &str) -> ReleaseWatch {
    store
        .watch_release(key)
        .await
        .unwrap()
        .expect("redis announces releases")
}

/// Two waiters, one release: the one waiting longest is woken and the other
/// is not; when the woken one is dropped without having looked (a waiter
/// cancelled at that instant), its wake passes to the other.
#[tokio::test]
async fn a_release_wakes_one_waiter_and_a_dropped_one_passes_it_on() {
    let Some(store) = store(&prefix("one")).await else {
        return;
    };
    let ttl = Expiry::After(TTL);
    store.acquire("k", "holder", ttl).await.unwrap();
    let mut first = watch(&store, "k").await;
    let mut second = watch(&store, "k").await;
    // Polled once each, so both are waiting, `first` the longest.
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());

    // A release of another key, announced after `k`'s on the same
    // connection: once it arrives, `k`'s has been handled.
    store.acquire("sentinel", "holder", ttl).await.unwrap();
    let sentinel = watch(&store, "sentinel").await;
    store.release("k", "holder").await.unwrap();
    store.release("sentinel", "holder").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), sentinel)
        .await
        .expect("the sentinel's release was not announced");

    assert!(
        poll_once(&mut second).is_pending(),
        "one release woke more than one waiter"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the dropped waiter's wake was not passed on");
}

/// Counts the acquire calls that reach the store.
struct Counting {
    inner: RedisStore,
    acquires: AtomicU64,
}

#[async_trait]
impl LockStore for Counting {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let result = self.inner.acquire(key, owner, expiry).await;
        self.acquires.fetch_add(1, Ordering::SeqCst);
        result
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
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

async fn counting_factory(name: &str) -> Option<(Arc<Counting>, LockFactory)> {
    let inner = store(&prefix(name)).await?;
    let counting = Arc::new(Counting {
        inner,
        acquires: AtomicU64::new(0),
    });
    let policy = RetryPolicy::default()
        .with_delay(RETRY_DELAY)
        .with_timeout(Some(RETRY_DELAY));
    let factory = LockFactory::from_arc(counting.clone()).with_retry(policy);
    Some((counting, factory))
}

/// Waits (bounded) until `count` acquire calls have reached the store: each
/// waiter makes two before it waits (its first try, then the re-check after
/// registering its watch).
async fn until_acquires(counting: &Counting, count: u64) {
    let started = Instant::now();
    while counting.acquires.load(Ordering::SeqCst) < count {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} of {count} acquire calls arrived",
            counting.acquires.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 50 waiters take the lock one after the other. Woken one at a time, each
/// hand-off costs about one acquire; woken all at once, the i-th release
/// would cost one per remaining waiter (about 1,275 in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_release_costs_about_one_acquire_not_one_per_waiter() {
    const WAITERS: u64 = 50;
    let Some((counting, factory)) = counting_factory("herd").await else {
        return;
    };
    let holder = factory.create_lock("k", TTL).unwrap();
    holder.acquire().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..WAITERS {
        let lock = factory.create_lock("k", TTL).unwrap();
        tasks.push(tokio::spawn(async move {
            lock.acquire().await?;
            lock.release().await
        }));
    }
    until_acquires(&counting, 1 + 2 * WAITERS).await;
    let before = counting.acquires.load(Ordering::SeqCst);

    holder.release().await.unwrap();
    for task in tasks {
        // Far below the retry delay: hand-offs ride on announcements.
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("a waiter was stranded")
            .unwrap()
            .unwrap();
    }
    let handoff_acquires = counting.acquires.load(Ordering::SeqCst) - before;
    assert!(
        handoff_acquires <= 2 * WAITERS + 10,
        "{handoff_acquires} acquire calls for {WAITERS} hand-offs"
    );
}

/// A waiter whose acquire is cancelled while it waits does not take the
/// next wake-up with it: the others still get the lock, one after the
/// other, long before their retry delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_does_not_strand_the_others() {
    let Some((counting, factory)) = counting_factory("cancel").await else {
        return;
    };
    let holder = factory.create_lock("k", TTL).unwrap();
    holder.acquire().await.unwrap();
    let spawn_waiter = || {
        let lock = factory.create_lock("k", TTL).unwrap();
        tokio::spawn(async move {
            lock.acquire().await?;
            lock.release().await
        })
    };
    // The first waiter is the longest waiting: the one a release would wake.
    let cancelled = spawn_waiter();
    until_acquires(&counting, 3).await;
    let others = [spawn_waiter(), spawn_waiter()];
    until_acquires(&counting, 7).await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());

    holder.release().await.unwrap();
    for task in others {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a waiter was stranded by the cancelled one")
            .unwrap()
            .unwrap();
    }
}
