//! `run`: the lock is released however the protected work ends.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{LockError, LockStore, Ttl};

use crate::Capabilities;
use crate::harness::{factory, fresh_key, until_free};

/// `run` returns the closure's value and releases the lock.
pub async fn run_returns_the_value_and_releases(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("run-ok");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    let probe = store.clone();
    let probe_key = key.clone();
    let value = lock
        .run(|| async move {
            assert!(
                probe.is_locked(&probe_key).await.unwrap(),
                "run's work ran without the lock"
            );
            "done"
        })
        .await
        .unwrap();
    assert_eq!(value, "done");
    assert!(!store.is_locked(&key).await.unwrap());
}

/// An error returned by the closure comes back as a value, and the lock is released.
pub async fn run_passes_an_error_value_through_and_releases(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("run-err");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    let value: Result<(), &str> = lock.run(|| async { Err("boom") }).await.unwrap();
    assert_eq!(value, Err("boom"));
    assert!(!store.is_locked(&key).await.unwrap());
}

/// A panic in the closure is re-raised after the lock is released.
pub async fn run_releases_on_panic(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("run-panic");
    let lock = factory(&store).create_lock(&key, Ttl::Never).unwrap();
    let task = tokio::spawn(async move {
        lock.run(|| async {
            panic!("conformance: deliberate panic inside run");
        })
        .await
    });
    let joined = task.await;
    assert!(
        joined.is_err_and(|e| e.is_panic()),
        "the panic was swallowed"
    );
    // The release happens before the panic resumes: no waiting needed.
    assert!(
        !store.is_locked(&key).await.unwrap(),
        "a panic inside run leaked the lock"
    );
}

/// Dropping `run`'s future while the work is pending releases the lock.
pub async fn run_releases_when_its_future_is_dropped(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("run-drop");
    let lock = factory(&store).create_lock(&key, Ttl::Never).unwrap();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        lock.run(|| async move {
            let _ = entered_tx.send(());
            std::future::pending::<()>().await;
        })
        .await
    });
    entered_rx.await.expect("run's work started");
    assert!(store.is_locked(&key).await.unwrap());
    task.abort();
    let _ = task.await;
    // Never-expiring: only run's own clean-up can free it.
    until_free(&store, &key).await;
}

/// If the lock expired while the work ran, `run` says so with `Expired`
/// instead of returning the work's value as if it had been protected.
pub async fn run_reports_a_lock_that_expired_during_the_work(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("run-expired");
    let locks = factory(&store);
    let lock = locks.create_lock(&key, Duration::from_millis(200)).unwrap();
    let probe = store.clone();
    let probe_key = key.clone();
    let result = lock
        .run(|| async move {
            until_free(&probe, &probe_key).await;
            // Someone else takes the expired lock while we still "work".
            let thief = factory(&probe).create_lock(&probe_key, "10s").unwrap();
            assert!(thief.try_acquire().await.unwrap());
            thief
        })
        .await;
    match result {
        Err(LockError::Expired { key: reported }) => assert_eq!(reported, key),
        other => panic!("expected Expired, got {other:?}"),
    }
    // The expired holder's release must not have freed the thief's lock.
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the old holder freed the new holder's lock"
    );
    store.force_release(&key).await.unwrap();
}
