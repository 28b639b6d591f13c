//! Renewal and the lost-lease signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{LeasePolicy, LockError, LockFactory, LockStore, LossReason, Ttl};

use crate::Capabilities;
use crate::harness::{SOON, factory, fresh_key, until_free};
use crate::wrappers::Instrumented;

fn renewing(store: &Arc<dyn LockStore>) -> LockFactory {
    factory(store).with_lease(LeasePolicy::renewing())
}

/// A renewing guard keeps its lease for several TTLs, with the same fencing
/// token, and nobody else gets in meanwhile.
pub async fn renewal_keeps_a_lease_alive_past_its_ttl(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("renew");
    let locks = renewing(&store);
    // Long enough that a loaded CI machine still renews in time.
    let ttl = Duration::from_millis(1500);
    let guard = locks
        .create_lock(&key, ttl)
        .unwrap()
        .acquire_guard()
        .await
        .unwrap();
    let token = guard.fencing_token();
    let other = factory(&store).create_lock(&key, "10s").unwrap();
    for _ in 0..4 {
        tokio::time::sleep(ttl / 2).await;
        assert!(guard.is_held(), "the renewing lease was lost");
        assert!(!other.try_acquire().await.unwrap(), "someone got in");
    }
    assert!(guard.renewals() >= 3, "{} renewals", guard.renewals());
    assert_eq!(guard.fencing_token(), token);
    assert_eq!(guard.lock().fencing_token(), token);
    assert!(!guard.lost().is_lost());
    guard.release().await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
}

/// When the store says the grant is gone (force-released here), renewal
/// stops at once, the signal fires with `NotOwned`, and the renewal never
/// takes the key back from the next holder.
pub async fn renewal_stops_and_signals_on_not_owned(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("renew-lost");
    let ttl = Duration::from_millis(1500);
    let guard = renewing(&store)
        .create_lock(&key, ttl)
        .unwrap()
        .acquire_guard()
        .await
        .unwrap();
    let lost = guard.lost();
    store.force_release(&key).await.unwrap();
    let thief = factory(&store).create_lock(&key, "10s").unwrap();
    assert!(thief.try_acquire().await.unwrap());
    let reason = tokio::time::timeout(SOON, lost.lost())
        .await
        .expect("the lost signal never fired");
    assert_eq!(reason, LossReason::NotOwned);
    assert!(!guard.is_held());
    let renewals = guard.renewals();
    tokio::time::sleep(ttl).await;
    assert_eq!(guard.renewals(), renewals, "renewal went on after NotOwned");
    assert!(thief.is_held() && store.is_locked(&key).await.unwrap());
    assert!(matches!(
        guard.release().await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the old guard freed the thief"
    );
    thief.release().await.unwrap();
}

/// Without renewal, the signal fires when the local clock stops vouching
/// for the lease: before the TTL has passed since the acquire was sent, so
/// before the store's own TTL can have run out.
pub async fn lost_signal_fires_before_the_store_ttl(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("lost-expiry");
    let ttl = Duration::from_millis(400);
    let lock = factory(&store).create_lock(&key, ttl).unwrap();
    let sent = Instant::now();
    let guard = lock.acquire_guard().await.unwrap();
    // Where the local clock stops vouching: the signal's deadline. (When the
    // signal is *observed* depends on the scheduler; when it is due does not.)
    let vouched_end = Instant::now() + guard.remaining_time().expect("a TTL");
    assert!(
        vouched_end < sent + ttl,
        "vouched for until {:?} after the acquire was sent",
        vouched_end - sent
    );
    let reason = tokio::time::timeout(SOON, guard.lost().lost())
        .await
        .expect("the lost signal never fired");
    assert!(
        Instant::now() >= vouched_end - Duration::from_millis(1),
        "fired early"
    );
    assert_eq!(reason, LossReason::Expired);
    assert!(!guard.is_held() && lock.is_expired());
    assert_eq!(lock.remaining_time(), Some(Duration::ZERO));
    drop(guard);
    until_free(&store, &key).await;
}

/// A renewing `run` whose lease is lost returns `LeaseLost` promptly and
/// drops the work future (it never resumes).
pub async fn renewing_run_returns_lease_lost_and_drops_the_work(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("run-lost");
    let lock = renewing(&store)
        .create_lock(&key, Duration::from_millis(1500))
        .unwrap();
    let resumed = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let (probe, probe_key) = (store.clone(), key.clone());
    let (resumed_in, dropped_in) = (resumed.clone(), dropped.clone());
    let started = Instant::now();
    let result = tokio::time::timeout(
        SOON,
        lock.run(|| async move {
            let _on_drop = SetOnDrop(dropped_in);
            probe.force_release(&probe_key).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            resumed_in.store(true, Ordering::SeqCst);
        }),
    )
    .await
    .expect("run did not return after its lease was lost");
    match result {
        Err(LockError::LeaseLost { key: k, reason }) => {
            assert_eq!(k, key);
            assert_eq!(reason, LossReason::NotOwned);
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the work future was not dropped"
    );
    assert!(!resumed.load(Ordering::SeqCst));
    assert!(!store.is_locked(&key).await.unwrap());
}

/// A renewing `run` whose work outlives several TTLs returns its value.
pub async fn renewing_run_outlives_its_ttl(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("run-renew");
    let ttl = Duration::from_millis(1000);
    let lock = renewing(&store).create_lock(&key, ttl).unwrap();
    let value = lock
        .run(|| async move {
            tokio::time::sleep(ttl * 3).await;
            7
        })
        .await
        .unwrap();
    assert_eq!(value, 7);
    assert!(!store.is_locked(&key).await.unwrap());
}

/// Renewals that keep failing with store errors end the lease (signal
/// `Unreachable`) while its store TTL may still be running, never after.
pub async fn failing_renewals_signal_unreachable_in_time(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("renew-fail");
    let ttl = Duration::from_millis(1500);
    let flaky = Instrumented::new(store.clone());
    let locks = factory(&(flaky.clone() as Arc<dyn LockStore>)).with_lease(LeasePolicy::renewing());
    let guard = locks
        .create_lock(&key, ttl)
        .unwrap()
        .acquire_guard()
        .await
        .unwrap();
    // Let one renewal succeed, then break them all.
    tokio::time::timeout(SOON, async {
        while guard.renewals() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no renewal happened");
    let renewed_at = Instant::now();
    // Where the local clock stops vouching: the signal's deadline.
    let vouched_end = renewed_at + guard.remaining_time().expect("a renewing lease has a TTL");
    flaky.extends_fail.store(true, Ordering::SeqCst);
    let reason = tokio::time::timeout(SOON, guard.lost().lost())
        .await
        .expect("the lost signal never fired");
    assert_eq!(reason, LossReason::Unreachable);
    // The last confirmed renewal was sent before `renewed_at`, so the
    // store's lease runs at least until `renewed_at + ttl`: the signal's
    // deadline must come first. (When the signal is *observed* depends on
    // the scheduler; when it is *due* does not.)
    assert!(
        vouched_end < renewed_at + ttl,
        "the lease was vouched for past the store's TTL"
    );
    assert!(
        Instant::now() >= vouched_end - Duration::from_millis(1),
        "fired early"
    );
    assert!(
        flaky.extends.load(Ordering::SeqCst) >= 2,
        "failed renewals were not retried"
    );
    drop(guard);
    until_free(&store, &key).await;
}

/// Renewal and release never race (Redisson #5698, #7272): with renewals
/// as frequent as they go, every release leaves the key free, for good.
pub async fn renewal_never_outlives_a_release(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("renew-release");
    let locks = factory(&store)
        .with_lease(LeasePolicy::renewing().with_renew_every(Duration::from_millis(1)));
    let lock = locks
        .create_lock(&key, Duration::from_millis(1000))
        .unwrap();
    for round in 0..10 {
        let guard = lock.acquire_guard().await.unwrap();
        tokio::time::sleep(Duration::from_millis(round * 3)).await;
        guard.release().await.unwrap();
        assert!(!store.is_locked(&key).await.unwrap(), "round {round}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !store.is_locked(&key).await.unwrap(),
        "a renewal revived the lock"
    );
    assert!(matches!(
        lock.extend_by(Ttl::Default).await,
        Err(LockError::NotOwned { .. })
    ));
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
