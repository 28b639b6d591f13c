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
    assert!(restored.is_held());
    restored.extend(None).await.unwrap();
    restored.release().await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
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
