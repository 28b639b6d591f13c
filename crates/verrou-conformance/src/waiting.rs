//! Waiting for a held lock: timeouts, attempts, immediate tries, wake-ups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use verrou_core::{Backoff, LockError, LockFactory, LockStore, RetryPolicy, Ttl};

use crate::Capabilities;
use crate::harness::{SOON, factory, fresh_key, until_free};
use crate::wrappers::Instrumented;

/// `acquire` on a held lock gives up with `Timeout` no sooner than the
/// policy's timeout and not long after it.
pub async fn acquire_times_out_within_bounds(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("timeout");
    let locks = factory(&store);
    let holder = locks.create_lock(&key, Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks.create_lock(&key, "10s").unwrap();
    let timeout = Duration::from_millis(300);
    let policy = RetryPolicy::default()
        .with_delay(Duration::from_millis(40))
        .with_timeout(Some(timeout));
    let started = Instant::now();
    let result = waiter.acquire_with(&policy).await;
    let elapsed = started.elapsed();
    match result {
        Err(LockError::Timeout { attempts, .. }) => assert!(attempts >= 2, "{attempts} attempts"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(elapsed >= timeout, "gave up early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(3),
        "gave up late: {elapsed:?}"
    );
    holder.release().await.unwrap();
}

/// `acquire` with a capped number of attempts stops after exactly that many.
pub async fn acquire_gives_up_after_max_attempts(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("attempts");
    let locks = factory(&store);
    let holder = locks.create_lock(&key, Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks.create_lock(&key, "10s").unwrap();
    let policy = RetryPolicy::default()
        .with_attempts(Some(3))
        .with_delay(Duration::from_millis(5))
        .with_timeout(None);
    match waiter.acquire_with(&policy).await {
        Err(LockError::Timeout { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected Timeout, got {other:?}"),
    }
    holder.release().await.unwrap();
}

/// `try_acquire` and `try_run` answer at once when the lock
/// is held, and `try_run` does not run its closure.
pub async fn acquire_and_try_run_do_not_wait(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("immediately");
    let locks = factory(&store);
    let holder = locks.create_lock(&key, Ttl::Never).unwrap();
    let other = locks.create_lock(&key, "10s").unwrap();
    assert_eq!(other.try_run(|| async { 7 }).await.unwrap(), Some(7));
    assert!(
        !store.is_locked(&key).await.unwrap(),
        "try_run did not release"
    );
    holder.acquire().await.unwrap();
    let mut ran = false;
    let outcome = other.try_run(|| async { ran = true }).await.unwrap();
    assert_eq!(outcome, None);
    assert!(!ran, "try_run ran its closure without the lock");
    assert!(!other.try_acquire().await.unwrap());
    holder.release().await.unwrap();
}

/// A waiter wakes when the lock is released. With release announcements it
/// must get the lock long before its (30 s) retry delay; without, it gets it
/// at its next poll.
pub async fn release_wakes_a_waiter(store: Arc<dyn LockStore>, caps: Capabilities) {
    let key = fresh_key("wake");
    let locks = factory(&store);
    let holder = locks.create_lock(&key, Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let delay = if caps.release_announcements {
        Duration::from_secs(30)
    } else {
        Duration::from_millis(50)
    };
    let waiter = locks.create_lock(&key, "10s").unwrap();
    let policy = RetryPolicy::default()
        .with_delay(delay)
        .with_timeout(Some(Duration::from_secs(60)));
    let task = tokio::spawn(async move {
        waiter
            .acquire_with(&policy)
            .await
            .map(|()| (Instant::now(), waiter))
    });
    // Let the waiter reach its wait; the assertion below holds either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "the waiter got a held lock");
    let released_at = Instant::now();
    holder.release().await.unwrap();
    let (acquired_at, waiter) = tokio::time::timeout(SOON, task)
        .await
        .expect("the waiter was not woken by the release")
        .unwrap()
        .unwrap();
    let handoff = acquired_at.duration_since(released_at);
    assert!(handoff < SOON, "hand-off took {handoff:?}");
    waiter.release().await.unwrap();
}

/// A policy of `n` attempts makes exactly `n` acquire calls to the store,
/// the re-check after registering for release announcements included.
pub async fn n_attempts_are_n_store_calls(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("attempt-calls");
    let holder = factory(&store).create_lock(&key, Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let counted = Instrumented::new(store.clone());
    let locks = factory(&(counted.clone() as Arc<dyn LockStore>));
    for n in [1u32, 2, 4] {
        let before = counted.acquires.load(Ordering::SeqCst);
        let waiter = locks.create_lock(&key, "10s").unwrap();
        let policy = RetryPolicy::default()
            .with_attempts(Some(n))
            .with_delay(Duration::from_millis(5))
            .with_timeout(None);
        match waiter.acquire_with(&policy).await {
            Err(LockError::Timeout { attempts, .. }) => assert_eq!(attempts, n),
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert_eq!(counted.acquires.load(Ordering::SeqCst) - before, n);
    }
    holder.release().await.unwrap();
}

/// Retry settings at the extremes (`Duration::MAX` delays, exponential
/// backoff capped at `Duration::MAX`) are waits like any other: no panic.
pub async fn extreme_retry_settings_are_handled(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("extreme-retry");
    let holder = factory(&store).create_lock(&key, Ttl::Never).unwrap();
    holder.acquire().await.unwrap();
    let waiter = factory(&store).create_lock(&key, "10s").unwrap();
    let policy = RetryPolicy::default()
        .with_delay(Duration::MAX)
        .with_backoff(Backoff::Exponential {
            max_delay: Duration::MAX,
        })
        .with_timeout(Some(Duration::from_millis(200)));
    let started = Instant::now();
    assert!(matches!(
        waiter.acquire_with(&policy).await,
        Err(LockError::Timeout { .. })
    ));
    assert!(started.elapsed() < SOON);
    holder.release().await.unwrap();
    let free = policy.with_timeout(None).with_attempts(Some(3));
    waiter.acquire_with(&free).await.unwrap();
    waiter.release().await.unwrap();
}

/// A TTL shorter than the store's round trip does not spin: grants that
/// arrive already expired are let lapse (no release, which would wake every
/// waiter), the retry delay is kept, and after a few of them the acquire
/// fails with `TtlShorterThanRoundTrip`.
pub async fn a_ttl_shorter_than_the_round_trip_fails_with_a_typed_error(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("short-ttl");
    let late = Instrumented::new(store.clone());
    late.answer_late(Duration::from_millis(60));
    let delay = Duration::from_millis(100);
    let locks = LockFactory::from_arc(late.clone()).with_retry(
        RetryPolicy::default()
            .with_delay(delay)
            .with_timeout(Some(SOON)),
    );
    let lock = locks.create_lock(&key, Duration::from_millis(20)).unwrap();
    let started = Instant::now();
    match lock.acquire().await {
        Err(LockError::TtlShorterThanRoundTrip {
            key: k, give_backs, ..
        }) => {
            assert_eq!(k, key);
            assert!(give_backs >= 2, "{give_backs}");
        }
        other => panic!("expected TtlShorterThanRoundTrip, got {other:?}"),
    }
    let calls = late.acquires.load(Ordering::SeqCst);
    assert!(calls <= 10, "{calls} store calls: the acquire spun");
    assert!(
        started.elapsed() >= delay * 2,
        "the retry delay was not kept: {:?}",
        started.elapsed()
    );
    assert_eq!(
        late.releases.load(Ordering::SeqCst),
        0,
        "late grants were released (waking every waiter)"
    );
    assert!(!lock.is_held());
    until_free(&store, &key).await;
}
