//! The lease engine on the memory store: the local clock, runtime shutdown,
//! owners and grants.

use std::time::Duration;

use verrou_core::{LeasePolicy, LockError, LockFactory, LossReason, Ttl};
use verrou_memory::MemoryStore;

/// The local view of a lease runs on tokio's monotonic clock (paused here),
/// counted from when the acquire was sent; the wall clock plays no part.
#[tokio::test(start_paused = true)]
async fn the_local_view_follows_the_monotonic_clock() {
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks.create_lock("k", "10s").unwrap();
    lock.acquire().await.unwrap();
    let margin = LeasePolicy::default().drift_margin(Duration::from_secs(10));
    assert_eq!(
        lock.remaining_time(),
        Some(Duration::from_secs(10) - margin)
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(lock.is_held());
    assert_eq!(lock.remaining_time(), Some(Duration::from_secs(5) - margin));
    let lost = lock.lost().unwrap();
    tokio::time::advance(Duration::from_secs(5) - margin).await;
    assert!(!lock.is_held());
    assert!(lock.is_expired());
    assert_eq!(lock.remaining_time(), Some(Duration::ZERO));
    assert_eq!(lost.lost().await, LossReason::Expired);
}

/// With paused time a renewing lease is renewed every third of its TTL and
/// never runs out.
#[tokio::test(start_paused = true)]
async fn renewal_runs_at_a_third_of_the_ttl() {
    let locks = LockFactory::new(MemoryStore::new()).with_lease(LeasePolicy::renewing());
    let guard = locks
        .create_lock("k", "3s")
        .unwrap()
        .acquire_guard()
        .await
        .unwrap();
    for expected in 1..=5 {
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        assert_eq!(guard.renewals(), expected);
        assert!(guard.is_held());
    }
    guard.release().await.unwrap();
}

/// A guard dropped as the runtime shuts down (the end of `#[tokio::main]`)
/// is still released when the store can answer in place.
#[test]
fn a_guard_dropped_at_runtime_shutdown_is_released() {
    let store = MemoryStore::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let locks = LockFactory::new(store.clone());
    runtime.block_on(async {
        let lock = locks.create_lock("k", Ttl::Never).unwrap();
        let _guard = lock.acquire_guard().await.unwrap();
        // `_guard` is dropped here, its release spawned on a runtime that
        // stops right after.
    });
    drop(runtime);
    assert!(store.is_empty(), "the guard's release was lost at shutdown");
}

/// Owners given by the caller are checked with their own error variant.
#[test]
fn bad_owners_are_invalid_owner_errors() {
    let locks = LockFactory::new(MemoryStore::new());
    for owner in [String::new(), "x".repeat(256), "a\0b".to_owned()] {
        assert!(matches!(
            locks.create_lock_with_owner("k", "1s", owner),
            Err(LockError::InvalidOwner { .. })
        ));
    }
}

/// Each grant of a random-owner handle has its own owner string, so a call
/// for an old grant can never match a new one at the store.
#[tokio::test]
async fn every_grant_has_its_own_owner() {
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks.create_lock("k", "10s").unwrap();
    lock.acquire().await.unwrap();
    let first = lock.owner();
    lock.release().await.unwrap();
    lock.acquire().await.unwrap();
    let second = lock.owner();
    assert_ne!(first, second);
    assert_eq!(first.split('.').next(), second.split('.').next());
    lock.release().await.unwrap();
}

/// A grant whose lease ended by itself frees its handle's turn: the handle
/// acquires again without being released first.
#[tokio::test]
async fn an_expired_grant_does_not_block_its_handle() {
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks.create_lock("k", Duration::from_millis(50)).unwrap();
    lock.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(lock.is_expired());
    tokio::time::timeout(Duration::from_secs(5), lock.acquire())
        .await
        .expect("the handle waited for its own expired grant")
        .unwrap();
    assert!(lock.is_held());
}

/// No `Debug` output of a handle, guard or signal shows the owner string,
/// which is the right to release the lock.
#[tokio::test]
async fn owners_never_appear_in_debug_output() {
    let locks = LockFactory::new(MemoryStore::new()).with_lease(LeasePolicy::renewing());
    let lock = locks.create_lock("k", "10s").unwrap();
    let guard = lock.acquire_guard().await.unwrap();
    let owner = lock.owner();
    let base = owner.split('.').next().unwrap().to_owned();
    for text in [
        format!("{lock:?}"),
        format!("{guard:?}"),
        format!("{:?}", guard.lost()),
        format!("{locks:?}"),
    ] {
        assert!(!text.contains(&base), "{text}");
    }
    guard.release().await.unwrap();
}

/// A store whose release never answers, as a network store's does once its
/// runtime is gone.
struct ReleaseNeverAnswers(MemoryStore);

#[verrou_core::async_trait]
impl verrou_core::LockStore for ReleaseNeverAnswers {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: verrou_core::Expiry,
    ) -> Result<verrou_core::Acquisition, LockError> {
        self.0.acquire(key, owner, expiry).await
    }
    async fn release(&self, _: &str, _: &str) -> Result<(), LockError> {
        std::future::pending().await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.0.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.0.is_locked(key).await
    }
    async fn extend(
        &self,
        key: &str,
        owner: &str,
        expiry: verrou_core::Expiry,
    ) -> Result<(), LockError> {
        self.0.extend(key, owner, expiry).await
    }
}

/// Records the WARN events' fields.
#[derive(Default, Clone)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// When the release cannot finish before the runtime is gone, a WARN names
/// the key that stays locked.
#[test]
fn a_guard_that_cannot_be_released_at_shutdown_is_logged_with_its_key() {
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let locks = LockFactory::new(ReleaseNeverAnswers(MemoryStore::new()));
        runtime.block_on(async {
            let lock = locks.create_lock("orders:7", Ttl::Never).unwrap();
            let _guard = lock.acquire_guard().await.unwrap();
        });
        drop(runtime);
    });
    let warnings = warnings.0.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("orders:7") && w.contains("runtime stopped")),
        "{warnings:?}"
    );
}
