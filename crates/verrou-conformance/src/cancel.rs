//! Cancellation: an `acquire` dropped at any point leaves no lock behind.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, LockFactory, LockStore, Ttl};

use crate::Capabilities;
use crate::harness::{factory, fresh_key, until_free};
use crate::wrappers::Instrumented;

/// An `acquire` cut off at many points (before, during and after the store
/// call) leaves no never-expiring lock behind.
pub async fn dropped_acquire_leaves_no_lock(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let locks = factory(&store);
    for cut_us in [0u64, 1, 10, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400] {
        let key = fresh_key("cancel");
        let lock = locks.create_lock(&key, Ttl::Never).unwrap();
        let cut = tokio::time::timeout(Duration::from_micros(cut_us), lock.acquire()).await;
        match cut {
            Ok(Ok(())) => lock.release().await.unwrap(),
            Ok(Err(e)) => panic!("acquire failed: {e}"),
            // Cancelled: never-expiring, so only the background release frees it.
            Err(_) => {
                until_free(&store, &key).await;
            }
        }
        // And the handle still works afterwards.
        lock.acquire().await.unwrap();
        lock.release().await.unwrap();
    }
}

/// The hardest cut: the store granted the lock, but the caller's future is
/// dropped before it hears so. The owner-checked clean-up must free it.
pub async fn acquire_dropped_after_the_store_granted_leaves_no_lock(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("cancel-granted");
    let slow = Instrumented::new(store.clone());
    // Long enough to drop the caller first, short enough for `until_free`.
    slow.answer_late(Duration::from_secs(1));
    let lock = LockFactory::from_arc(slow.clone())
        .create_lock(&key, Ttl::Never)
        .unwrap();
    tokio::select! {
        result = lock.acquire() => panic!("the slowed acquire finished: {result:?}"),
        () = slow.answered.notified() => {} // the store has answered; drop the acquire now
    }
    let answer = slow.last_answer.lock().unwrap().take();
    assert!(
        matches!(answer, Some(Acquisition::Acquired { .. })),
        "the store did not grant the lock: {answer:?}"
    );
    // Never-expiring: only the cancelled acquire's clean-up can free it, once
    // the slowed answer has arrived.
    until_free(&store, &key).await;
}

/// Every call cut off at any point — before, during or after its store call,
/// which a parking wrapper makes possible on every store — leaves the key
/// as the caller's intent says: a cancelled acquire leaves no lock, a
/// cancelled release still frees it, a cancelled extend leaves it held; and
/// the handle keeps working.
pub async fn calls_cancelled_mid_flight_leave_a_consistent_state(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let parked = Instrumented::new(store.clone());
    parked.park(Duration::from_millis(4));
    let locks = factory(&(parked.clone() as Arc<dyn LockStore>));
    let mut cut_somewhere = 0;
    for cut_ms in [0u64, 1, 2, 3, 5, 6, 7, 9, 11] {
        let cut = Duration::from_millis(cut_ms);
        let key = fresh_key("cancel-parked");
        let lock = locks.create_lock(&key, Ttl::Never).unwrap();
        if tokio::time::timeout(cut, lock.acquire()).await.is_err() {
            cut_somewhere += 1;
            until_free(&store, &key).await;
        } else {
            lock.release().await.unwrap();
        }
        lock.acquire().await.unwrap();
        if tokio::time::timeout(cut, lock.extend()).await.is_err() {
            cut_somewhere += 1;
        }
        assert!(
            store.is_locked(&key).await.unwrap(),
            "a cancelled extend freed the lock"
        );
        if tokio::time::timeout(cut, lock.release()).await.is_err() {
            cut_somewhere += 1;
        }
        until_free(&store, &key).await;
        // The handle's next turn comes once the background release is done.
        tokio::time::timeout(crate::harness::SOON, lock.acquire())
            .await
            .expect("the handle was stuck after a cancelled call")
            .unwrap();
        lock.release().await.unwrap();
    }
    assert!(
        cut_somewhere >= 9,
        "only {cut_somewhere} calls were cut mid-flight"
    );
}
