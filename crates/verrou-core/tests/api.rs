//! The user-facing API around the store: configuration, handles, bad input.

use std::time::Duration;

use verrou_core::{Expiry, LockError, LockFactory, Ttl, Verrou};
use verrou_memory::MemoryStore;

#[test]
fn unknown_store_names_are_typed_errors() {
    let verrou = Verrou::builder()
        .store("memory", MemoryStore::new())
        .build()
        .unwrap();
    assert_eq!(verrou.default_store_name(), "memory");
    match verrou.use_store("redis") {
        Err(LockError::UnknownStore { name, known }) => {
            assert_eq!(name, "redis");
            assert_eq!(known, "memory");
        }
        other => panic!("{other:?}"),
    }
    let bad_default = Verrou::builder()
        .store("memory", MemoryStore::new())
        .default_store("nope")
        .build();
    assert!(matches!(bad_default, Err(LockError::UnknownStore { .. })));
    assert!(matches!(
        Verrou::builder().build(),
        Err(LockError::UnknownStore { .. })
    ));
}

#[test]
fn the_environment_chooses_the_default_store() {
    // An unset variable leaves the configured default.
    let verrou = Verrou::builder()
        .store("a", MemoryStore::new())
        .store("b", MemoryStore::new())
        .default_store("b")
        .default_store_from_env("VERROU_TEST_SURELY_UNSET_VARIABLE")
        .build()
        .unwrap();
    assert_eq!(verrou.default_store_name(), "b");
    // A set variable wins; PATH is always set and names no store here.
    let from_env = Verrou::builder()
        .store("a", MemoryStore::new())
        .default_store("a")
        .default_store_from_env("PATH")
        .build();
    assert!(matches!(from_env, Err(LockError::UnknownStore { .. })));
}

#[test]
fn bad_keys_durations_and_owners_are_rejected_up_front() {
    let locks = LockFactory::new(MemoryStore::new());
    assert!(matches!(
        locks.create_lock("", "1s"),
        Err(LockError::InvalidKey { .. })
    ));
    assert!(matches!(
        locks.create_lock("a\0b", "1s"),
        Err(LockError::InvalidKey { .. })
    ));
    for ttl in ["0s", "-1s", "soon", ""] {
        match locks.create_lock("k", ttl) {
            Err(LockError::InvalidDuration { input, .. }) => assert_eq!(input, ttl),
            other => panic!("{ttl:?}: {other:?}"),
        }
    }
    assert!(locks.create_lock("k", 0u64).is_err());
    assert!(locks.create_lock_with_owner("k", "1s", "").is_err());
    assert!(
        locks
            .create_lock_with_owner("k", "1s", "x".repeat(256))
            .is_err()
    );
    let lock = locks.create_lock_with_owner("k", Ttl::Never, "me").unwrap();
    assert_eq!(lock.owner(), "me");
    assert_eq!(lock.ttl(), Expiry::Never);
}

#[test]
fn owners_are_random_and_never_printed() {
    let locks = LockFactory::new(MemoryStore::new());
    let a = locks.create_lock("k", "1s").unwrap();
    let b = locks.create_lock("k", "1s").unwrap();
    assert_ne!(a.owner(), b.owner());
    assert!(
        a.owner().len() >= 32,
        "owners carry at least 128 random bits"
    );
    assert!(!format!("{a:?}").contains(&a.owner()));
}

#[test]
fn default_ttl_and_retry_are_configurable() {
    let locks = LockFactory::new(MemoryStore::new()).with_default_ttl(Ttl::Never);
    assert_eq!(
        locks.create_lock("k", Ttl::Default).unwrap().ttl(),
        Expiry::Never
    );
    let locks = LockFactory::new(MemoryStore::new());
    assert_eq!(
        locks.create_lock("k", Ttl::Default).unwrap().ttl(),
        Expiry::After(Duration::from_secs(30))
    );
    assert_eq!(
        locks.create_lock("k", "2h").unwrap().ttl(),
        Expiry::After(Duration::from_secs(7200))
    );
}

#[tokio::test]
async fn corrupt_serialized_locks_are_typed_errors_and_change_nothing() {
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks.create_lock("k", "10s").unwrap();
    lock.acquire().await.unwrap();
    let good = lock.serialize();
    let corrupt = [
        String::new(),
        "not json".into(),
        "[]".into(),
        good.replace("\"v\":2", "\"v\":3"),
        good.replace("\"ttl_ms\":10000", "\"ttl_ms\":0"),
        good.replace('}', ",\"extra\":1}"),
        good[..good.len() / 2].to_owned(),
        good.replace(&lock.owner(), ""),
    ];
    for text in &corrupt {
        assert!(
            matches!(
                locks.restore_lock(text),
                Err(LockError::InvalidSerializedLock { .. })
            ),
            "{text:?} was accepted"
        );
    }
    assert!(lock.is_locked().await.unwrap());
    let restored = locks.restore_lock(&good).unwrap();
    assert_eq!(restored.fencing_token(), lock.fencing_token());
    restored.release().await.unwrap();
}

#[tokio::test]
async fn a_released_guard_sends_nothing_more() {
    let store = MemoryStore::new();
    let locks = LockFactory::new(store.clone());
    let lock = locks.create_lock("k", "10s").unwrap();
    let guard = lock.acquire_guard().await.unwrap();
    assert_eq!(guard.lock().key(), "k");
    guard.release().await.unwrap();
    // The same owner takes it again: a stray release from the spent guard
    // would be owner-checked *as this owner* and would free it.
    assert!(lock.try_acquire().await.unwrap());
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        lock.is_locked().await.unwrap(),
        "the spent guard released a new hold"
    );
    assert_eq!(store.len(), 1);
}

/// Answers every `save` only after `delay`, like a stalled server or a
/// paused process.
struct LateAnswers {
    inner: MemoryStore,
    delay: Duration,
}

#[verrou_core::async_trait]
impl verrou_core::LockStore for LateAnswers {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Expiry,
    ) -> Result<verrou_core::Acquisition, LockError> {
        let outcome = self.inner.acquire(key, owner, ttl).await;
        tokio::time::sleep(self.delay).await;
        outcome
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner.release(key, owner).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.inner.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.inner.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, ttl: Expiry) -> Result<(), LockError> {
        self.inner.extend(key, owner, ttl).await
    }
}

#[tokio::test]
async fn a_grant_heard_after_its_ttl_is_given_back_not_returned() {
    use verrou_core::LockStore;
    let memory = MemoryStore::new();
    let locks = LockFactory::new(LateAnswers {
        inner: memory.clone(),
        delay: Duration::from_millis(60),
    });
    let late = locks.create_lock("k", Duration::from_millis(30)).unwrap();
    assert!(
        !late.try_acquire().await.unwrap(),
        "a lease that was over on arrival was returned"
    );
    assert!(!late.is_held());
    // A TTL longer than the stall works as usual.
    let fine = locks.create_lock("k", "10s").unwrap();
    assert!(fine.try_acquire().await.unwrap());
    assert!(memory.is_locked("k").await.unwrap());
}
