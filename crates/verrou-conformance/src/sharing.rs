//! One handle shared by several tasks: they take turns, and nothing done for
//! one grant ever touches another.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use verrou_core::{LockError, LockStore, RetryPolicy, Ttl};

use crate::Capabilities;
use crate::harness::{SOON, factory, fresh_key};

/// A task waiting in `acquire` on a handle never blocks another task's
/// `release` through the same handle (it used to wait for the acquire's
/// whole retry loop: forever with no timeout).
pub async fn release_is_not_blocked_by_a_waiting_acquire_on_the_same_handle(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("share-release");
    let lock = Arc::new(factory(&store).create_lock(&key, Ttl::Never).unwrap());
    lock.acquire().await.unwrap();
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move {
            let forever = RetryPolicy::default()
                .with_delay(Duration::from_millis(20))
                .with_timeout(None);
            lock.acquire_with(&forever).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(SOON, lock.release())
        .await
        .expect("release waited behind the other task's acquire")
        .unwrap();
    tokio::time::timeout(SOON, waiter)
        .await
        .expect("the waiting task was never granted the lock")
        .unwrap()
        .unwrap();
    assert!(lock.is_held());
    lock.release().await.unwrap();
}

/// Task A holds a guard on a handle, task B waits in `acquire` on the same
/// handle; A drops its guard and B is granted. A's background release must
/// not free B's grant: a third handle still cannot get in.
pub async fn a_dropped_guard_never_frees_the_next_grant_of_its_handle(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("share-guard");
    let locks = factory(&store);
    let lock = Arc::new(locks.create_lock(&key, Ttl::Never).unwrap());
    let guard = lock.acquire_guard().await.unwrap();
    let first_token = guard.fencing_token();
    let b = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(guard);
    tokio::time::timeout(SOON, b)
        .await
        .expect("B was never granted")
        .unwrap()
        .unwrap();
    assert!(lock.is_held());
    if first_token.is_some() {
        assert!(lock.fencing_token() > first_token, "B got A's grant back");
    }
    // Give any stray release of A's grant every chance to arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        store.is_locked(&key).await.unwrap(),
        "A's release freed B's grant"
    );
    let third = locks.create_lock(&key, "10s").unwrap();
    assert!(
        !third.try_acquire().await.unwrap(),
        "a third handle got in while B held the lock"
    );
    lock.release().await.unwrap();
    assert!(third.try_acquire().await.unwrap());
    third.release().await.unwrap();
}

/// Node Verrou's own cases: a second `acquire` on a handle waits for the
/// handle's release and then succeeds; three tasks doing acquire → increment
/// → release on one handle all complete; so do `run`s.
pub async fn tasks_sharing_a_handle_take_turns(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("share-turns");
    let lock = Arc::new(factory(&store).create_lock(&key, "10s").unwrap());
    let counter = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (lock, counter) = (lock.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            lock.acquire().await?;
            let v = counter.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.store(v + 1, Ordering::SeqCst);
            lock.release().await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 3);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (lock, counter) = (lock.clone(), counter.clone());
        runs.push(tokio::spawn(async move {
            lock.run(|| async move {
                let v = counter.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.store(v + 1, Ordering::SeqCst);
            })
            .await
        }));
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 6);
    assert!(!store.is_locked(&key).await.unwrap());
    // A handle that holds the lock does not wait for itself on a `try`.
    lock.acquire().await.unwrap();
    assert!(!lock.try_acquire().await.unwrap());
    match lock
        .acquire_with(
            &RetryPolicy::default()
                .with_delay(Duration::from_millis(5))
                .with_timeout(Some(Duration::from_millis(100))),
        )
        .await
    {
        Err(LockError::Timeout { .. }) => {}
        other => panic!("a second acquire on a held handle returned {other:?}"),
    }
    lock.release().await.unwrap();
}
