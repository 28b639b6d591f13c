//! Waiting for a held lock: timeouts, attempts, immediate tries, wake-ups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use verrou_core::{LockError, LockStore, RetryPolicy, Ttl};

use crate::Capabilities;
use crate::harness::{SOON, factory, fresh_key};

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

/// `acquire_immediately` and `run_immediately` answer at once when the lock
/// is held, and `run_immediately` does not run its closure.
pub async fn acquire_and_run_immediately_do_not_wait(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("immediately");
    let locks = factory(&store);
    let holder = locks.create_lock(&key, Ttl::Never).unwrap();
    let other = locks.create_lock(&key, "10s").unwrap();
    assert_eq!(
        other.run_immediately(|| async { 7 }).await.unwrap(),
        Some(7)
    );
    assert!(
        !store.exists(&key).await.unwrap(),
        "run_immediately did not release"
    );
    holder.acquire().await.unwrap();
    let mut ran = false;
    let outcome = other
        .run_immediately(|| async { ran = true })
        .await
        .unwrap();
    assert_eq!(outcome, None);
    assert!(!ran, "run_immediately ran its closure without the lock");
    assert!(!other.acquire_immediately().await.unwrap());
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
