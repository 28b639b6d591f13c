//! TTLs: expiry frees a lock, and never lets an old holder touch a new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use verrou_core::{Expiry, LockError, LockStore, Ttl};

use crate::Capabilities;
use crate::harness::{eventually, factory, fresh_key, until_free};

const SHORT: Duration = Duration::from_millis(250);

/// After its TTL, a lock nobody released lets another owner in — and not before.
pub async fn expiry_lets_another_owner_in(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("expiry");
    let locks = factory(&store);
    let a = locks.create_lock(&key, SHORT).unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    let acquired_at = Instant::now();
    a.acquire().await.unwrap();
    let refused = b.try_acquire().await.unwrap();
    if acquired_at.elapsed() < SHORT {
        assert!(!refused, "b got the lock before a's TTL ran out");
    }
    let freed_after = until_free(&store, &key).await + acquired_at.elapsed().min(Duration::ZERO);
    assert!(
        acquired_at.elapsed() >= SHORT - Duration::from_millis(5),
        "freed after {freed_after:?}"
    );
    assert!(
        b.try_acquire().await.unwrap(),
        "b could not take an expired lock"
    );
    eventually("a's local view to expire", || async { a.is_expired() }).await;
    b.release().await.unwrap();
}

/// Once A's lock expired and B took it, A's release and extend are
/// `NotOwned` and B keeps the lock.
pub async fn expired_holder_cannot_release_or_extend_the_new_holder(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("stale-holder");
    let locks = factory(&store);
    let a = locks.create_lock(&key, SHORT).unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    until_free(&store, &key).await;
    b.acquire().await.unwrap();
    assert!(matches!(a.release().await, Err(LockError::NotOwned { .. })));
    assert!(matches!(a.extend().await, Err(LockError::NotOwned { .. })));
    assert!(matches!(
        a.extend_by(Duration::from_secs(60)).await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the old holder freed the new holder's lock"
    );
    assert!(
        !a.try_acquire().await.unwrap(),
        "the new holder lost the lock"
    );
    b.release().await.unwrap();
}

/// Extending a lock that expired, even one nobody took, is `NotOwned`: an
/// expired lock is never revived.
pub async fn extend_of_an_expired_lock_nobody_took_is_not_owned(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("no-revive");
    let a = factory(&store).create_lock(&key, SHORT).unwrap();
    a.acquire().await.unwrap();
    until_free(&store, &key).await;
    assert!(matches!(a.extend().await, Err(LockError::NotOwned { .. })));
    assert!(
        !store.is_locked(&key).await.unwrap(),
        "extend revived an expired lock"
    );
    assert!(matches!(a.release().await, Err(LockError::NotOwned { .. })));
}

/// Extending before expiry keeps the lock well past its original TTL.
pub async fn extend_keeps_the_lock_alive(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("extend");
    let locks = factory(&store);
    let ttl = Duration::from_millis(600);
    let a = locks.create_lock(&key, ttl).unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    let started = Instant::now();
    while started.elapsed() < ttl * 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.extend().await.unwrap();
        assert!(
            !b.try_acquire().await.unwrap(),
            "the extended lock was lost"
        );
    }
    // A longer, explicit extension also holds.
    a.extend_by(Duration::from_secs(30)).await.unwrap();
    assert!(a.remaining_time().unwrap() > Duration::from_secs(20));
    a.release().await.unwrap();
}

/// A lock's own TTL is used, and `Ttl::Default` uses the factory's (30 s).
pub async fn custom_and_default_ttl(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("ttl");
    let locks = factory(&store);
    let short = locks.create_lock(&key, "400ms").unwrap();
    short.acquire().await.unwrap();
    let left = short.remaining_time().unwrap();
    assert!(
        left <= Duration::from_millis(400) && left > Duration::ZERO,
        "{left:?}"
    );
    until_free(&store, &key).await;

    let default = locks.create_lock(&key, Ttl::Default).unwrap();
    assert_eq!(default.ttl(), Expiry::After(Duration::from_secs(30)));
    default.acquire().await.unwrap();
    assert!(default.remaining_time().unwrap() > Duration::from_secs(25));
    default.release().await.unwrap();
}

/// A lock with no TTL stays until released.
pub async fn never_expiring_lock_stays(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("forever");
    let locks = factory(&store);
    let a = locks.create_lock(&key, Ttl::Never).unwrap();
    a.acquire().await.unwrap();
    assert_eq!(a.remaining_time(), None);
    // Longer than any TTL this suite uses: a store that turned "never" into
    // a short or zero TTL has let it go by now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(store.is_locked(&key).await.unwrap());
    assert!(!a.is_expired());
    let b = locks.create_lock(&key, "10s").unwrap();
    assert!(!b.try_acquire().await.unwrap());
    // Extending to "never" from a TTL works too.
    a.release().await.unwrap();
    let c = locks.create_lock(&key, SHORT).unwrap();
    c.acquire().await.unwrap();
    c.extend_by(Ttl::Never).await.unwrap();
    tokio::time::sleep(SHORT * 2).await;
    assert!(
        store.is_locked(&key).await.unwrap(),
        "extend to never did not stick"
    );
    c.release().await.unwrap();
}

/// `extend()` renews by the lock's own TTL and `extend_by(Ttl::Never)` makes
/// the lock permanent: the two can no longer be confused.
pub async fn extend_and_extend_by_say_what_they_mean(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("extend-words");
    let ttl = Duration::from_millis(300);
    let lock = factory(&store).create_lock(&key, ttl).unwrap();
    lock.acquire().await.unwrap();
    lock.extend().await.unwrap();
    let left = lock.remaining_time().expect("a TTL was kept");
    assert!(left <= ttl, "{left:?}");
    lock.extend_by(Ttl::Never).await.unwrap();
    assert_eq!(lock.remaining_time(), None, "Ttl::Never still expires");
    tokio::time::sleep(ttl * 2).await;
    assert!(lock.is_held());
    assert!(store.is_locked(&key).await.unwrap(), "Ttl::Never expired");
    lock.extend_by("250ms").await.unwrap();
    assert!(
        lock.remaining_time()
            .is_some_and(|left| left <= Duration::from_millis(250))
    );
    assert!(matches!(
        lock.extend_by(Duration::ZERO).await,
        Err(LockError::InvalidDuration { .. })
    ));
    lock.release().await.unwrap();
    assert!(matches!(
        lock.extend().await,
        Err(LockError::NotOwned { .. })
    ));
}
