//! Acquisitions still running on the server, so that a release by the same
//! process is ordered after them.
//!
//! `Lock::acquire` sends an owner-checked release when an acquire is dropped
//! mid-call. With a pool, that release may run on a different connection than
//! the dropped `INSERT`, which may still be on its way: the release would find
//! nothing, then the insert would grant a lock nobody will free. So every
//! acquisition runs to completion in its own task, registered here, and a
//! release first waits for the acquisitions of its key that are still running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// Keys with acquisitions in flight. An entry lives only while someone uses
/// it, so the map empties when the store is idle.
#[derive(Default)]
pub(crate) struct InFlight {
    by_key: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

impl InFlight {
    /// Registers an acquisition of `key`; it counts as running until the
    /// returned ticket is dropped.
    pub(crate) async fn begin(self: &Arc<Self>, key: &str) -> Ticket {
        let entry = self.entry(key);
        let guard = entry.gate.clone().read_owned().await;
        Ticket {
            _guard: guard,
            _entry: entry,
        }
    }

    /// Waits until every acquisition of `key` that started before this call
    /// has finished.
    pub(crate) async fn settle(self: &Arc<Self>, key: &str) {
        if !lock(&self.by_key).contains_key(key) {
            return;
        }
        let entry = self.entry(key);
        drop(entry.gate.write().await);
    }

    fn entry(self: &Arc<Self>, key: &str) -> Entry {
        let gate = lock(&self.by_key)
            .entry(key.to_owned())
            .or_default()
            .clone();
        Entry {
            gate,
            key: key.to_owned(),
            in_flight: self.clone(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.by_key).len()
    }
}

/// One registered acquisition. Field order matters: the read guard (which
/// holds a clone of the gate) is dropped before the entry counts its users.
pub(crate) struct Ticket {
    _guard: OwnedRwLockReadGuard<()>,
    _entry: Entry,
}

/// A use of a key's gate; removes the key when it is the last one.
struct Entry {
    gate: Arc<RwLock<()>>,
    key: String,
    in_flight: Arc<InFlight>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut map = lock(&self.in_flight.by_key);
        // Clones are made under this same mutex, so the count is exact: the
        // map's copy plus ours means nobody else uses this key.
        if Arc::strong_count(&self.gate) == 2 {
            map.remove(&self.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation that cannot panic halfway,
    // so a poisoned mutex still holds consistent data.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn settle_waits_for_running_acquisitions_and_the_map_empties() {
        let in_flight = Arc::new(InFlight::default());
        let ticket = in_flight.begin("k").await;
        assert_eq!(in_flight.len(), 1);
        let settle = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.settle("k").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !settle.is_finished(),
            "settle returned while an acquisition was running"
        );
        drop(ticket);
        tokio::time::timeout(Duration::from_secs(5), settle)
            .await
            .expect("settle must finish once the acquisition is done")
            .unwrap();
        assert_eq!(in_flight.len(), 0);
    }

    #[tokio::test]
    async fn settle_of_an_idle_key_returns_at_once_and_leaves_nothing() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.settle("k").await;
        assert_eq!(in_flight.len(), 0);
    }
}
