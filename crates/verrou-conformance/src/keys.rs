//! Keys: awkward ones are distinct locks or a clear `InvalidKey`, never a wrong lock.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};

use crate::Capabilities;
use crate::harness::{factory, fresh_key};

/// Unicode, spaces, quotes, `%`, `_`, `:` and long keys either work as
/// distinct locks or fail with `InvalidKey`. No escaping collision, no
/// truncation: a long key and its prefix are two locks.
pub async fn awkward_keys_are_distinct_or_invalid(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let base = fresh_key("keys");
    let max = store.max_key_bytes();
    let mut keys: Vec<String> = [
        "",
        ":a",
        ":a:b",
        ":a%",
        ":ab",
        ":a_",
        ":a\\",
        ":ключ 🔒 锁",
        ": with spaces ",
        ":quote'\"`",
        ":semi;--",
        ":%00",
        ":*",
        ":{tag}",
        ":A",
    ]
    .iter()
    .map(|suffix| format!("{base}{suffix}"))
    .collect();
    // Long keys around the store's own limit and the 255-byte SQL classic.
    for len in [255usize, 256, 300, max.saturating_sub(1), max] {
        if len > base.len() {
            let long = format!("{base}{}", "x".repeat(len - base.len()));
            if !keys.contains(&long) {
                keys.push(long);
            }
        }
    }
    keys.push(format!("{base}{}", "é".repeat(200))); // 400 bytes, 200 chars

    let ttl = Expiry::After(Duration::from_secs(30));
    let mut held = Vec::new();
    for key in &keys {
        match store.acquire(key, "owner", ttl).await {
            Ok(Acquisition::Acquired { .. }) => held.push(key.clone()),
            Ok(Acquisition::Held) => panic!(
                "key of {} bytes collided with another key: {key:?}",
                key.len()
            ),
            Err(LockError::InvalidKey { .. }) => {
                assert!(key.len() > 255, "a {}-byte key was refused", key.len());
            }
            Err(e) => panic!("key {key:?} failed with {e}"),
        }
    }
    for key in &held {
        assert!(store.is_locked(key).await.unwrap(), "{key:?} lost");
        store.release(key, "owner").await.unwrap();
        assert!(!store.is_locked(key).await.unwrap());
    }
    // The store's declared limit is accepted, one byte more is InvalidKey
    // from the handle, which checks keys so that store methods need not.
    let at_limit = format!("{base}{}", "y".repeat(max.saturating_sub(base.len())));
    let over = format!("{at_limit}y");
    let locks = factory(&store);
    assert!(matches!(
        locks.create_lock(&over, "1s"),
        Err(LockError::InvalidKey { .. })
    ));
    let lock = locks.create_lock(&at_limit, "10s").unwrap();
    lock.acquire().await.unwrap();
    lock.release().await.unwrap();
}

/// An empty key is `InvalidKey` when the handle is created, before the store
/// is asked anything (stores rely on the handle's check; see
/// [`LockStore`]'s key rule).
pub async fn empty_key_is_invalid(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let locks = factory(&store);
    assert!(matches!(
        locks.create_lock("", "1s"),
        Err(LockError::InvalidKey { .. })
    ));
}
