//! `MemoryStore`: locks in a mutex-guarded map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use verrou_core::store::ReleaseWatchers;
use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

/// An in-process lock store. Clones share the same locks.
///
/// Expiry is judged with the monotonic clock ([`Instant`]), so wall-clock
/// jumps cannot free or extend a lock.
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    watchers: ReleaseWatchers,
}

#[derive(Default)]
struct Table {
    locks: HashMap<String, Entry>,
    /// One counter for the whole store: strictly increasing per key without
    /// keeping anything per key after release.
    last_token: u64,
    /// When the map reaches this size, expired entries are swept (amortized
    /// O(1) per acquire, so abandoned locks cannot grow memory forever).
    sweep_at: usize,
}

struct Entry {
    owner: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    fn is_held_by(&self, owner: &str, now: Instant) -> bool {
        self.is_live(now) && self.owner == owner
    }
}

const MIN_SWEEP: usize = 1024;
/// Keys are kept as given; this bound only stops a runaway key from holding
/// unbounded memory.
const MAX_KEY_BYTES: usize = 64 * 1024;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys the store holds an entry for (held or expired but not yet
    /// swept). Zero once every lock has been released.
    pub fn len(&self) -> usize {
        lock(&self.shared.table).locks.len()
    }

    /// Whether the store holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn deadline(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
        // A TTL too large for the clock is as good as never expiring.
        ttl.and_then(|ttl| now.checked_add(ttl))
    }
}

impl Table {
    fn sweep_if_due(&mut self, now: Instant) {
        if self.locks.len() < self.sweep_at.max(MIN_SWEEP) {
            return;
        }
        self.locks.retain(|_, entry| entry.is_live(now));
        self.sweep_at = (self.locks.len() * 2).max(MIN_SWEEP);
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let ttl = expiry.duration();
        let now = Instant::now();
        let mut table = lock(&self.shared.table);
        if table.locks.get(key).is_some_and(|e| e.is_live(now)) {
            return Ok(Acquisition::Held);
        }
        table.sweep_if_due(now);
        table.last_token += 1;
        let token = table.last_token;
        table.locks.insert(
            key.to_owned(),
            Entry {
                owner: owner.to_owned(),
                expires_at: Self::deadline(now, ttl),
            },
        );
        Ok(Acquisition::Acquired {
            fencing_token: Some(token),
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let now = Instant::now();
        {
            let mut table = lock(&self.shared.table);
            match table.locks.get(key) {
                Some(entry) if entry.is_held_by(owner, now) => {
                    table.locks.remove(key);
                }
                Some(entry) if !entry.is_live(now) => {
                    // Expired: gone for everyone, including its old owner.
                    table.locks.remove(key);
                    return Err(LockError::not_owned(key));
                }
                _ => return Err(LockError::not_owned(key)),
            }
        }
        self.shared.watchers.notify_all(key);
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let removed = lock(&self.shared.table).locks.remove(key).is_some();
        if removed {
            self.shared.watchers.notify_all(key);
        }
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let now = Instant::now();
        Ok(lock(&self.shared.table)
            .locks
            .get(key)
            .is_some_and(|e| e.is_live(now)))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let ttl = expiry.duration();
        let now = Instant::now();
        let mut table = lock(&self.shared.table);
        match table.locks.get_mut(key) {
            Some(entry) if entry.is_held_by(owner, now) => {
                entry.expires_at = Self::deadline(now, ttl);
                Ok(())
            }
            _ => Err(LockError::not_owned(key)),
        }
    }

    /// Drops the entries of expired locks now (they are otherwise swept as
    /// the map grows); released locks leave nothing behind, and tokens come
    /// from one store-wide counter, so nothing else needs pruning.
    async fn prune(&self) -> Result<u64, LockError> {
        let now = Instant::now();
        let mut table = lock(&self.shared.table);
        let before = table.locks.len();
        table.locks.retain(|_, entry| entry.is_live(now));
        Ok((before - table.locks.len()) as u64)
    }

    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        Ok(Some(self.shared.watchers.watch(key)))
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a few map operations that cannot panic
    // halfway, so a poisoned mutex still holds consistent data.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_returns_to_empty_after_a_million_keys() {
        let store = MemoryStore::new();
        for i in 0..1_000_000u32 {
            let key = format!("k{i}");
            let acquired = store
                .acquire(&key, "o", Expiry::After(Duration::from_secs(60)))
                .await
                .unwrap();
            assert!(matches!(acquired, Acquisition::Acquired { .. }));
            store.release(&key, "o").await.unwrap();
        }
        assert!(store.is_empty());
        assert_eq!(store.shared.watchers.len(), 0);
    }

    #[tokio::test]
    async fn abandoned_expired_locks_are_swept() {
        let store = MemoryStore::new();
        for i in 0..10_000u32 {
            store
                .acquire(
                    &format!("k{i}"),
                    "o",
                    Expiry::After(Duration::from_millis(1)),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in 0..10_000u32 {
            store
                .acquire(&format!("fresh{i}"), "o", Expiry::Never)
                .await
                .unwrap();
        }
        // Without sweeping the map would hold all 20,000 entries.
        assert!(store.len() < 15_000, "{} entries", store.len());
    }

    #[tokio::test]
    async fn a_watch_registered_before_the_release_is_woken_without_being_polled_first() {
        let store = MemoryStore::new();
        store.acquire("k", "a", Expiry::Never).await.unwrap();
        let watch = store.watch_release("k").await.unwrap().unwrap();
        store.release("k", "a").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("a release before the first poll must still wake the waiter");
    }
}
