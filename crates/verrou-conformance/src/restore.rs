//! Serialize and restore: a held lock moves to another factory (or process).

use std::sync::Arc;

use verrou_core::{LockError, LockStore};

use crate::Capabilities;
use crate::harness::{factory, fresh_key};

/// A lock restored through another factory on the same store can extend and
/// release it; the original handle is then `NotOwned`.
pub async fn restored_lock_extends_and_releases_from_another_factory(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("restore");
    let a = factory(&store).create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    let elsewhere = factory(&store);
    let restored = elsewhere.restore_lock(&a.serialize()).unwrap();
    assert_eq!(restored.key(), key);
    assert_eq!(restored.owner(), a.owner());
    assert_eq!(restored.fencing_token(), a.fencing_token());
    assert!(!restored.is_held(), "restored handles are unverified");
    restored.extend().await.unwrap();
    assert!(restored.is_held(), "an extend confirms a restored handle");
    restored.release().await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(matches!(a.release().await, Err(LockError::NotOwned { .. })));
    for corrupt in [
        "",
        "{}",
        "null",
        "{\"v\":1}",
        &a.serialize().replace(&key, ""),
    ] {
        assert!(
            matches!(
                elsewhere.restore_lock(corrupt),
                Err(LockError::InvalidSerializedLock { .. })
            ),
            "{corrupt:?} was accepted"
        );
    }
}

/// A restored lock that was released (or taken over) since it was
/// serialized never claims to be held: `is_held` stays `false`, and the
/// store answers `NotOwned` when it is extended or released.
pub async fn a_restored_lock_that_was_released_is_not_held(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("restore-stale");
    let locks = factory(&store);
    let a = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    let text = a.serialize();
    a.release().await.unwrap();
    let b = locks.create_lock(&key, "10s").unwrap();
    b.acquire().await.unwrap();
    let stale = factory(&store).restore_lock(&text).unwrap();
    assert!(!stale.is_held(), "a stale restored lock claimed to be held");
    assert_eq!(stale.remaining_time(), None);
    assert!(matches!(
        stale.extend().await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(!stale.is_held());
    assert!(matches!(
        stale.release().await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the stale handle freed b"
    );
    b.release().await.unwrap();
}
