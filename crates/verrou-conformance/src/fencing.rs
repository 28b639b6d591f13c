//! Fencing tokens: strictly increasing per key, whatever happened in between.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};

use crate::Capabilities;
use crate::harness::{factory, fresh_key, until_free};

/// Every acquisition of a key gets a larger token than the one before it:
/// across release, expiry and takeover, and through serialize/restore.
pub async fn fencing_tokens_strictly_increase(store: Arc<dyn LockStore>, caps: Capabilities) {
    let key = fresh_key("fencing");
    let locks = factory(&store);
    let other = factory(&store);
    let a = locks.create_lock(&key, "10s").unwrap();
    a.acquire().await.unwrap();
    let t1 = a.fencing_token();
    if !caps.fencing_tokens {
        a.release().await.unwrap();
        return;
    }
    let t1 = t1.expect("no fencing token from a store that has them");
    a.release().await.unwrap();

    // Takeover after release, by another factory.
    let b = other.create_lock(&key, Duration::from_millis(250)).unwrap();
    b.acquire().await.unwrap();
    let t2 = b.fencing_token().unwrap();
    assert!(t2 > t1, "after release: {t2} <= {t1}");

    // Takeover after expiry.
    until_free(&store, &key).await;
    let c = locks.create_lock(&key, "10s").unwrap();
    c.acquire().await.unwrap();
    let t3 = c.fencing_token().unwrap();
    assert!(t3 > t2, "after expiry: {t3} <= {t2}");

    // A restored lock carries its token.
    let restored = other.restore_lock(&c.serialize()).unwrap();
    assert_eq!(restored.fencing_token(), Some(t3));
    restored.release().await.unwrap();

    // The same handle re-acquiring gets a new, larger token too (its own
    // grant was released elsewhere: its release says so and frees its turn).
    assert!(matches!(
        c.release().await,
        Err(verrou_core::LockError::NotOwned { .. })
    ));
    c.acquire().await.unwrap();
    let t4 = c.fencing_token().unwrap();
    assert!(t4 > t3, "re-acquire: {t4} <= {t3}");
    c.release().await.unwrap();

    // The raw trait answers the same way, and force-delete does not reset it.
    let Acquisition::Acquired {
        fencing_token: Some(t5),
    } = store.acquire(&key, "raw", Expiry::Never).await.unwrap()
    else {
        panic!("raw save did not acquire with a token");
    };
    assert!(t5 > t4);
    store.force_release(&key).await.unwrap();
    let Acquisition::Acquired {
        fencing_token: Some(t6),
    } = store.acquire(&key, "raw", Expiry::Never).await.unwrap()
    else {
        panic!("raw save did not acquire with a token");
    };
    assert!(t6 > t5, "after force delete: {t6} <= {t5}");
    store.force_release(&key).await.unwrap();
}

/// Tokens keep rising across prunes of idle state: release, prune, acquire
/// again, many times over, on one key and on many.
pub async fn fencing_tokens_keep_rising_across_prunes(
    store: Arc<dyn LockStore>,
    caps: Capabilities,
) {
    if !caps.fencing_tokens {
        return;
    }
    let key = fresh_key("fencing-prune");
    let mut last = 0u64;
    for round in 0..30 {
        let Acquisition::Acquired {
            fencing_token: Some(token),
        } = store
            .acquire(&key, "prune", Expiry::After(Duration::from_secs(10)))
            .await
            .unwrap()
        else {
            panic!("round {round}: not acquired with a token");
        };
        assert!(
            token > last,
            "round {round}: {token} <= {last} after a prune"
        );
        last = token;
        // A prune never frees a held lock.
        store.prune().await.unwrap();
        assert!(
            store.is_locked(&key).await.unwrap(),
            "a prune freed a held lock"
        );
        store.release(&key, "prune").await.unwrap();
        store.prune().await.unwrap();
    }
    // Expiry, then a prune, then a new holder: still higher.
    store
        .acquire(&key, "prune", Expiry::After(Duration::from_millis(100)))
        .await
        .unwrap();
    until_free(&store, &key).await;
    store.prune().await.unwrap();
    let Acquisition::Acquired {
        fencing_token: Some(token),
    } = store.acquire(&key, "next", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired after expiry and prune");
    };
    assert!(token > last, "after expiry and prune: {token} <= {last}");
    store.force_release(&key).await.unwrap();
}
