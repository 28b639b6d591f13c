//! Release announcements: one `Notify` per key that somebody waits on.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{Notify, futures::OwnedNotified};

/// Keys that have waiters. An entry lives only while a watch on it exists, so
/// the map empties when nobody waits.
#[derive(Default)]
pub(crate) struct Watchers {
    by_key: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Watchers {
    /// Registers a waiter for `key`. `notify_waiters` wakes every `Notified`
    /// created before it, even one not yet polled: that is what makes the
    /// registration count from this call, not from the first poll.
    pub(crate) fn watch(self: &Arc<Self>, key: &str) -> Watch {
        let notify = {
            let mut map = lock(&self.by_key);
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Notify::new()))
                .clone()
        };
        Watch {
            notified: Some(Box::pin(notify.clone().notified_owned())),
            notify,
            key: key.to_owned(),
            watchers: self.clone(),
        }
    }

    /// Wakes everyone waiting on `key`.
    pub(crate) fn released(&self, key: &str) {
        if let Some(notify) = lock(&self.by_key).get(key) {
            notify.notify_waiters();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.by_key).len()
    }
}

/// One registered waiter; removes its key's entry when it is the last one.
pub(crate) struct Watch {
    notified: Option<Pin<Box<OwnedNotified>>>,
    notify: Arc<Notify>,
    key: String,
    watchers: Arc<Watchers>,
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
        let mut map = lock(&self.watchers.by_key);
        // Clones are made under this same mutex, so the count is exact: the
        // map's copy plus ours means nobody else waits on this key.
        if Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.key);
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a single map operation that cannot
    // panic halfway, so a poisoned mutex still holds consistent data.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
