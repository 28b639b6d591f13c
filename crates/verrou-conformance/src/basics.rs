//! Holding, releasing and asking: the state every store must keep right.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore, Ttl};

use crate::Capabilities;
use crate::harness::{factory, fresh_key, until_free};

/// A key nobody took is not locked.
pub async fn new_key_is_unlocked(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("new");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    assert!(!lock.is_locked().await.unwrap());
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(!lock.is_held());
}

/// After `acquire`, the store reports the key locked and the handle holds it.
pub async fn acquire_locks_the_key(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("acquire");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    lock.acquire().await.unwrap();
    assert!(lock.is_locked().await.unwrap());
    assert!(lock.is_held());
    assert!(!lock.is_expired());
    lock.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());
    assert!(!lock.is_held());
}

/// While one owner holds a key, nobody else gets it; after release, they do.
pub async fn exclusivity(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("exclusive");
    let locks = factory(&store);
    let a = locks.create_lock(&key, "10s").unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    assert!(!b.try_acquire().await.unwrap(), "b got a held lock");
    assert_eq!(
        store
            .acquire(&key, "someone-else", Expiry::After(Duration::from_secs(10)))
            .await
            .unwrap(),
        Acquisition::Held
    );
    a.release().await.unwrap();
    assert!(
        b.try_acquire().await.unwrap(),
        "b could not take a released lock"
    );
    b.release().await.unwrap();
}

/// Acquiring a lock the same handle already holds does not succeed a second time.
pub async fn locks_are_not_reentrant(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("reentrant");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    lock.acquire().await.unwrap();
    assert!(!lock.try_acquire().await.unwrap());
    assert_eq!(
        store
            .acquire(&key, &lock.owner(), Expiry::After(Duration::from_secs(10)))
            .await
            .unwrap(),
        Acquisition::Held
    );
    lock.release().await.unwrap();
}

/// Someone else's release is `NotOwned` and leaves the lock held by its owner.
pub async fn release_by_non_owner_is_not_owned_and_keeps_the_lock(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("not-owner");
    let locks = factory(&store);
    let a = locks.create_lock(&key, "10s").unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    assert!(matches!(b.release().await, Err(LockError::NotOwned { .. })));
    assert!(matches!(b.extend().await, Err(LockError::NotOwned { .. })));
    assert!(
        store.is_locked(&key).await.unwrap(),
        "a non-owner's release freed the lock"
    );
    // a still holds it: nobody else gets in, and a can release it.
    assert!(!b.try_acquire().await.unwrap());
    a.release().await.unwrap();
}

/// Releasing a lock nobody holds is `NotOwned`.
pub async fn release_of_a_free_key_is_not_owned(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("free-release");
    let lock = factory(&store).create_lock(&key, "10s").unwrap();
    assert!(matches!(
        lock.release().await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(matches!(
        lock.extend().await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(
        !store.is_locked(&key).await.unwrap(),
        "extend created a lock"
    );
}

/// The trait itself, without `Lock`: what a custom store must return.
pub async fn store_contract_on_the_raw_trait(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("raw");
    let ttl = Expiry::After(Duration::from_secs(10));
    assert!(matches!(
        store.acquire(&key, "a", ttl).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert_eq!(
        store.acquire(&key, "b", ttl).await.unwrap(),
        Acquisition::Held
    );
    assert!(matches!(
        store.release(&key, "b").await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(matches!(
        store.extend(&key, "b", ttl).await,
        Err(LockError::NotOwned { .. })
    ));
    store
        .extend(&key, "a", Expiry::After(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(store.is_locked(&key).await.unwrap());
    store.release(&key, "a").await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(matches!(
        store.release(&key, "a").await,
        Err(LockError::NotOwned { .. })
    ));
    store.force_release(&key).await.unwrap(); // free key: not an error
    assert!(matches!(
        store.acquire(&key, "b", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.force_release(&key).await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
}

/// `force_release` frees a lock whoever holds it; the old holder then gets `NotOwned`.
pub async fn force_release_frees_anyone_s_lock(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("force");
    let locks = factory(&store);
    let a = locks.create_lock(&key, Ttl::Never).unwrap();
    let admin = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    admin.force_release().await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(matches!(a.release().await, Err(LockError::NotOwned { .. })));
    admin.force_release().await.unwrap(); // already free: fine
}

/// A guard that is dropped releases its lock (in the background, promptly).
pub async fn guard_releases_when_dropped(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("guard");
    let lock = factory(&store).create_lock(&key, Ttl::Never).unwrap();
    {
        let guard = lock.acquire_guard().await.unwrap();
        assert!(guard.fencing_token().is_some() || !_caps.fencing_tokens);
        assert!(store.is_locked(&key).await.unwrap());
    }
    // Never-expiring: only the guard's release can free it.
    until_free(&store, &key).await;
    let guard = lock.acquire_guard().await.unwrap();
    guard.release().await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
}
