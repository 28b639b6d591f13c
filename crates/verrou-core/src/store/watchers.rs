//! `ReleaseWatchers`: the per-key waiter registry a store needs to implement
//! [`LockStore::watch_release`](crate::LockStore::watch_release) from its own
//! announcements (a local release, a pub/sub message, a `NOTIFY`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::{Notify, futures::OwnedNotified};

use crate::ReleaseWatch;

/// Waiters per key. An entry lives only while a watch on its key exists, so
/// the registry empties when nobody waits.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let watchers = verrou_core::store::ReleaseWatchers::new();
/// let watch = watchers.watch("k"); // registered now, before any poll
/// watchers.notify_all("k");
/// watch.await; // completes: the release happened after the registration
/// assert!(watchers.is_empty());
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct ReleaseWatchers {
    by_key: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl ReleaseWatchers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a waiter for `key`. The watch counts from this call, not
    /// from its first poll (`notify_waiters` wakes every `Notified` created
    /// before it), so a release between this call and the caller's next
    /// `save` is never lost.
    pub fn watch(&self, key: &str) -> ReleaseWatch {
        let notify = self
            .map()
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        ReleaseWatch::new(Watch {
            notified: Some(Box::pin(notify.clone().notified_owned())),
            notify,
            key: key.to_owned(),
            watchers: self.clone(),
        })
    }

    /// Wakes every waiter of `key` (they race for the lock; the losers wait again).
    pub fn notify_all(&self, key: &str) {
        if let Some(notify) = self.map().get(key) {
            notify.notify_waiters();
        }
    }

    /// Wakes one waiter of `key`, for stores where a stampede of `save`s
    /// after every release costs more than the latency it saves. The others
    /// keep their retry delay, so nobody is stranded.
    pub fn notify_one(&self, key: &str) {
        if let Some(notify) = self.map().get(key) {
            notify.notify_one();
        }
    }

    /// Wakes every waiter of every key: for when announcements may have been
    /// lost (a dropped subscription). A spurious wake-up costs one `save`.
    pub fn notify_everyone(&self) {
        for notify in self.map().values() {
            notify.notify_waiters();
        }
    }

    /// How many keys have waiters.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        // Every critical section is one map operation that cannot panic
        // halfway, so a poisoned mutex still holds consistent data.
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One registered waiter; removes its key's entry when it is the last one.
struct Watch {
    notified: Option<Pin<Box<OwnedNotified>>>,
    notify: Arc<Notify>,
    key: String,
    watchers: ReleaseWatchers,
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
        // Drop our own `Notified` first so that it does not count as a user.
        self.notified = None;
        let mut map = self.watchers.map();
        // Clones are made under this same mutex, so the count is exact: the
        // map's copy plus ours means nobody else waits on this key.
        if Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_disappear_with_their_waiters() {
        let watchers = ReleaseWatchers::new();
        let a = watchers.watch("k");
        let b = watchers.watch("k");
        assert_eq!(watchers.len(), 1);
        drop(a);
        assert_eq!(watchers.len(), 1);
        drop(b);
        assert!(watchers.is_empty());
    }

    #[tokio::test]
    async fn a_release_before_the_first_poll_still_wakes() {
        let watchers = ReleaseWatchers::new();
        let watch = watchers.watch("k");
        watchers.notify_all("k");
        tokio::time::timeout(std::time::Duration::from_secs(5), watch)
            .await
            .expect("woken");
    }
}
