//! `MemoryStore`: locks in a mutex-guarded map.
//!
//! One map holds both the locks and their waiters, so a call makes one
//! lookup (its key hashed once, see [`crate::keys`]) under one mutex; the
//! key and owner strings of released locks are reused. An uncontended
//! acquire and release allocate nothing here beyond the trait's boxed
//! futures.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

use crate::keys::{Key, Keys, Lookup, Prehashed};

/// An in-process lock store. Clones share the same locks.
///
/// Expiry is judged with the monotonic clock ([`Instant`]), so wall-clock
/// jumps cannot free or extend a lock.
///
/// A release wakes one waiter of its key, not all of them: the others stay
/// registered and are woken, one per release, as the lock is passed on (a
/// waiter that is woken and then dropped passes its wake-up to the next).
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    keys: Keys,
}

#[derive(Default)]
struct Table {
    slots: HashMap<Key, Slot, Prehashed>,
    /// How many slots have a holder (live, or expired and not yet swept).
    held: usize,
    /// One counter for the whole store: strictly increasing per key without
    /// keeping anything per key after release.
    last_token: u64,
    /// When the map reaches this size, expired entries are swept (amortized
    /// O(1) per acquire, so abandoned locks cannot grow memory forever).
    sweep_at: usize,
    spare: Spare,
}

/// Key and owner strings of released locks, reused by the next acquires so
/// that the hot path does not allocate (bounded in count and size).
#[derive(Default)]
struct Spare(Vec<String>);

/// What the store keeps for one key: its lock, its waiters, or both. A slot
/// with neither is removed, so the map empties when nothing is held or
/// awaited.
struct Slot {
    holder: Option<Holder>,
    /// Present while at least one watch on the key exists.
    waiters: Option<Waiters>,
}

struct Holder {
    owner: String,
    expires_at: Option<Instant>,
}

/// The waiters of one key. The notifier lives as long as any of them (not
/// as long as a holder), so a waiter that was not woken by one release is
/// still registered for the next holder's.
struct Waiters {
    notify: Arc<Notify>,
    /// Live watches on the key; the slot's waiters go when it reaches zero.
    watches: usize,
}

impl Holder {
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
/// At most this many released strings are kept for reuse...
const SPARE_STRINGS: usize = 64;
/// ...each of at most this capacity (owners are at most 255 bytes; a long key
/// is not worth keeping).
const SPARE_CAPACITY: usize = 256;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys the store holds an entry for (held or expired but not yet
    /// swept). Zero once every lock has been released.
    pub fn len(&self) -> usize {
        self.shared.table().held
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

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Every critical section here is a few map operations that cannot
        // panic halfway, so a poisoned mutex still holds consistent data.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Table {
    fn sweep_if_due(&mut self, now: Instant) {
        if self.slots.len() < self.sweep_at.max(MIN_SWEEP) {
            return;
        }
        self.drop_expired(now);
        self.sweep_at = (self.slots.len() * 2).max(MIN_SWEEP);
    }

    /// Drops every expired holder (and the slots left empty); returns how
    /// many. Waiters of a freed key are told: the key is free now.
    fn drop_expired(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        self.slots.retain(|_, slot| {
            if slot.holder.as_ref().is_some_and(|h| !h.is_live(now)) {
                slot.holder = None;
                dropped += 1;
                if let Some(waiters) = &slot.waiters {
                    waiters.notify.notify_one();
                }
            }
            slot.holder.is_some() || slot.waiters.is_some()
        });
        self.held -= dropped;
        dropped
    }

    /// Frees `key`'s lock (its slot stays while it has waiters). Returns
    /// whom to wake: one waiter, if any.
    fn free(&mut self, key: &dyn Lookup) -> Option<Arc<Notify>> {
        let slot = self.slots.get_mut(key)?;
        let holder = slot.holder.take()?;
        self.held -= 1;
        let wake = slot.waiters.as_ref().map(|w| w.notify.clone());
        if wake.is_none()
            && let Some((key, _)) = self.slots.remove_entry(key)
        {
            self.spare.recycle(key.into_text());
        }
        self.spare.recycle(holder.owner);
        wake
    }
}

impl Spare {
    /// A copy of `text`, in a reused buffer when one is spare.
    fn copy_of(&mut self, text: &str) -> String {
        match self.0.pop() {
            Some(mut spare) => {
                spare.clear();
                spare.push_str(text);
                spare
            }
            None => text.to_owned(),
        }
    }

    fn recycle(&mut self, text: String) {
        if self.0.len() < SPARE_STRINGS && text.capacity() <= SPARE_CAPACITY {
            self.0.push(text);
        }
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
        let key = self.shared.keys.hashed(key);
        let ttl = expiry.duration();
        let now = Instant::now();
        let expires_at = Self::deadline(now, ttl);
        let mut guard = self.shared.table();
        let table = &mut *guard;
        match table.slots.get_mut(key.probe()) {
            Some(slot) => match &mut slot.holder {
                Some(holder) if holder.is_live(now) => return Ok(Acquisition::Held),
                Some(expired) => {
                    // Taken over in place: the old owner's release and extend
                    // now find another owner.
                    expired.owner.clear();
                    expired.owner.push_str(owner);
                    expired.expires_at = expires_at;
                }
                None => {
                    let owner = table.spare.copy_of(owner);
                    slot.holder = Some(Holder { owner, expires_at });
                    table.held += 1;
                }
            },
            None => {
                table.sweep_if_due(now);
                let owner = table.spare.copy_of(owner);
                let text = table.spare.copy_of(key.text());
                table.slots.insert(
                    key.owned(text),
                    Slot {
                        holder: Some(Holder { owner, expires_at }),
                        waiters: None,
                    },
                );
                table.held += 1;
            }
        }
        table.last_token += 1;
        Ok(Acquisition::Acquired {
            fencing_token: Some(table.last_token),
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let key = self.shared.keys.hashed(key);
        let now = Instant::now();
        let (wake, result) = {
            let mut table = self.shared.table();
            match table
                .slots
                .get(key.probe())
                .and_then(|slot| slot.holder.as_ref())
            {
                Some(holder) if holder.is_held_by(owner, now) => (table.free(key.probe()), Ok(())),
                // Expired: gone for everyone, including its old owner.
                Some(holder) if !holder.is_live(now) => (
                    table.free(key.probe()),
                    Err(LockError::not_owned(key.text())),
                ),
                _ => return Err(LockError::not_owned(key.text())),
            }
        };
        // Woken after the table's mutex is let go: the waiter runs at once.
        if let Some(notify) = wake {
            notify.notify_one();
        }
        result
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let key = self.shared.keys.hashed(key);
        let wake = self.shared.table().free(key.probe());
        if let Some(notify) = wake {
            notify.notify_one();
        }
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let key = self.shared.keys.hashed(key);
        let now = Instant::now();
        Ok(self
            .shared
            .table()
            .slots
            .get(key.probe())
            .and_then(|slot| slot.holder.as_ref())
            .is_some_and(|holder| holder.is_live(now)))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let key = self.shared.keys.hashed(key);
        let ttl = expiry.duration();
        let now = Instant::now();
        let mut table = self.shared.table();
        match table
            .slots
            .get_mut(key.probe())
            .and_then(|slot| slot.holder.as_mut())
        {
            Some(holder) if holder.is_held_by(owner, now) => {
                holder.expires_at = Self::deadline(now, ttl);
                Ok(())
            }
            _ => Err(LockError::not_owned(key.text())),
        }
    }

    /// Drops the entries of expired locks now (they are otherwise swept as
    /// the map grows); released locks leave nothing behind, and tokens come
    /// from one store-wide counter, so nothing else needs pruning.
    async fn prune(&self) -> Result<u64, LockError> {
        let now = Instant::now();
        Ok(self.shared.table().drop_expired(now) as u64)
    }

    /// A watch registered on the key's waiters, or one that is ready at once
    /// when the key has no slot (it is free: the caller's next acquire finds
    /// it free, or held by someone whose release will wake the waiters).
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        let key = self.shared.keys.hashed(key);
        let notify = {
            let mut table = self.shared.table();
            let Some(slot) = table.slots.get_mut(key.probe()) else {
                return Ok(Some(ReleaseWatch::new(std::future::ready(()))));
            };
            let waiters = slot.waiters.get_or_insert_with(|| Waiters {
                notify: Arc::new(Notify::new()),
                watches: 0,
            });
            waiters.watches += 1;
            waiters.notify.clone()
        };
        let text = key.text().to_owned();
        Ok(Some(ReleaseWatch::new(Watch {
            notified: Some(Box::pin(notify.notified_owned())),
            shared: self.shared.clone(),
            key: key.owned(text),
        })))
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

/// One registered waiter. Its `Notified` counts from the registration for a
/// wake-up stored by a release nobody was polling for; dropped after a
/// release chose it but before it saw that, it passes the wake-up on to the
/// next waiter (tokio's `notify_one` guarantee), so dropping a waiter never
/// strands the others.
struct Watch {
    notified: Option<Pin<Box<OwnedNotified>>>,
    shared: Arc<Shared>,
    key: Key,
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.notified.as_mut() {
            Some(notified) => notified.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Our `Notified` first: an unseen wake-up goes to the next waiter
        // while the key's notifier still exists.
        self.notified = None;
        let mut table = self.shared.table();
        let Some(slot) = table.slots.get_mut(self.key.probe()) else {
            return;
        };
        let last = slot.waiters.as_mut().is_some_and(|waiters| {
            waiters.watches -= 1;
            waiters.watches == 0
        });
        if last {
            slot.waiters = None;
            if slot.holder.is_none()
                && let Some((key, _)) = table.slots.remove_entry(self.key.probe())
            {
                table.spare.recycle(key.into_text());
            }
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .finish()
    }
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
        assert!(store.shared.table().slots.is_empty());
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
        assert!(store.shared.table().slots.len() < 15_000);
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

    #[tokio::test]
    async fn waiters_keep_their_slot_across_holders_and_leave_nothing_behind() {
        let store = MemoryStore::new();
        store.acquire("k", "a", Expiry::Never).await.unwrap();
        let mut first = store.watch_release("k").await.unwrap().unwrap();
        let mut second = store.watch_release("k").await.unwrap().unwrap();
        // Both waiting (polled once), as waiters are after a busy attempt.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        store.release("k", "a").await.unwrap();
        assert!(Pin::new(&mut first).poll(&mut cx).is_ready());
        assert!(
            Pin::new(&mut second).poll(&mut cx).is_pending(),
            "one release, one waiter woken"
        );
        // The other is still registered when the next holder releases.
        store.acquire("k", "b", Expiry::Never).await.unwrap();
        drop(first);
        store.release("k", "b").await.unwrap();
        assert!(Pin::new(&mut second).poll(&mut cx).is_ready());
        drop(second);
        assert!(store.is_empty());
        assert!(store.shared.table().slots.is_empty());
    }

    #[tokio::test]
    async fn a_woken_waiter_dropped_unpolled_passes_its_wake_up_on() {
        let store = MemoryStore::new();
        store.acquire("k", "a", Expiry::Never).await.unwrap();
        let mut chosen = store.watch_release("k").await.unwrap().unwrap();
        let other = store.watch_release("k").await.unwrap().unwrap();
        // Both are queued (polled once); the release wakes the first.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut chosen).poll(&mut cx).is_pending());
        let mut other = Box::pin(other);
        assert!(other.as_mut().poll(&mut cx).is_pending());
        store.release("k", "a").await.unwrap();
        drop(chosen);
        tokio::time::timeout(Duration::from_secs(5), other)
            .await
            .expect("the dropped waiter's wake-up reached the other one");
        assert!(store.shared.table().slots.is_empty());
    }

    #[tokio::test]
    async fn a_watch_on_a_free_key_is_ready_at_once() {
        let store = MemoryStore::new();
        let watch = store.watch_release("free").await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("nothing holds the key");
        assert!(store.shared.table().slots.is_empty());
    }

    #[tokio::test]
    async fn reused_strings_never_mix_keys_or_owners() {
        let store = MemoryStore::new();
        let expiry = Expiry::After(Duration::from_secs(60));
        for i in 0..200u32 {
            let (key, owner) = (format!("key-{i}"), format!("owner-{i}"));
            store.acquire(&key, &owner, expiry).await.unwrap();
            if i % 2 == 0 {
                store.release(&key, &owner).await.unwrap();
            }
        }
        for i in (1..200u32).step_by(2) {
            let (key, owner) = (format!("key-{i}"), format!("owner-{i}"));
            assert!(store.is_locked(&key).await.unwrap());
            assert!(store.release(&key, "owner-0").await.is_err());
            store.release(&key, &owner).await.unwrap();
        }
        assert!(store.is_empty());
        assert!(store.shared.table().spare.0.len() <= SPARE_STRINGS);
    }
}
