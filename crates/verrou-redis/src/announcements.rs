//! Release announcements: one subscriber connection per store, one
//! reference-counted `SUBSCRIBE` per key somebody waits on, and a local
//! fan-out from channel to waiters.
//!
//! Releases are announced with plain `PUBLISH` from inside the release
//! scripts. In a Redis Cluster a plain `PUBLISH` reaches every node over the
//! cluster bus, so the subscriber can listen on any single node: one
//! connection for the whole store, unaffected by slot migrations and
//! failovers of the shard that holds the lock. Sharded pub/sub
//! (`SPUBLISH`/`SSUBSCRIBE`) would keep the message inside one shard, but it
//! needs a subscription on each shard's primary, is unsubscribed by the
//! server whenever a slot moves, and is not available on every
//! Redis-compatible server. A lock release is one small message, so the
//! broadcast is the simpler trade.
//!
//! # One waiter per release
//!
//! Only one waiter can take a released lock, so an announcement wakes one
//! local waiter (`Notify::notify_one`, the longest waiting first); waking
//! all of them made every release cost one `acquire` per waiter (1000
//! waiters: 1000 scripts per hand-off). The others keep waiting for the next
//! release, and every waiter still wakes at its retry delay at the latest.
//! Why the one woken cannot strand the others:
//!
//! - A release between a waiter's failed attempt and its next wait is not
//!   lost: if no waiter is waiting at that moment, `notify_one` leaves a
//!   permit that the next waiter to wait takes at once.
//! - A woken waiter that goes away before it sees the wake (its `acquire`
//!   was cancelled or timed out in that instant) passes it on: tokio hands
//!   a `notify_one` wake-up that was delivered but not received to the next
//!   waiter when the future is dropped.
//! - A woken waiter always sends its `acquire` (verrou's retry loop makes
//!   the attempt before it looks at its deadline, and finishes an attempt
//!   whose caller was dropped in the background). If it takes the lock, its
//!   release announces the next hand-off; if someone else has it, theirs
//!   will.
//! - What is not passed on: a woken waiter whose `acquire` fails with a
//!   `Store` error, or whose grant arrives too late and is left to lapse.
//!   The others then take the lock at their next retry (within one retry
//!   delay), as after an expiry, which is not announced either. Passing the
//!   wake on after an error would turn one failing call into every waiter
//!   failing in turn, as fast as the errors come back.
//! - Announcements lost wholesale (the subscriber lagged or reconnected)
//!   still wake every waiter of every key.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use fred::clients::Client;
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::{ClusterHash, CustomCommand, Value};
use fred::util::redis_keyslot;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::futures::OwnedNotified;
use tokio::task::AbortHandle;
use verrou_core::LockError;
use verrou_core::store::within;

use crate::error::{STORE, store_error};

/// The subscriber connection and the channels it listens to.
pub(crate) struct Announcements {
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
}

struct Shared {
    subscriber: Client,
    channels: Mutex<HashMap<String, Channel>>,
    /// Held while a `SUBSCRIBE`/`UNSUBSCRIBE` is on the wire, so that the
    /// server sees them in the order the map changed: an `UNSUBSCRIBE` for a
    /// channel that gained a waiter meanwhile is never sent after its
    /// `SUBSCRIBE`.
    wire: tokio::sync::Mutex<()>,
    runtime: Handle,
    /// Bounds each `SUBSCRIBE`/`UNSUBSCRIBE`; `None`: unbounded.
    timeout: Option<Duration>,
}

struct Channel {
    notify: Arc<Notify>,
    watchers: usize,
    /// The server confirmed the `SUBSCRIBE`.
    subscribed: bool,
}

impl Announcements {
    /// Connects `subscriber` (a fresh, unconnected client) and starts the
    /// fan-out.
    pub(crate) async fn connect(
        subscriber: Client,
        timeout: Option<Duration>,
    ) -> Result<Self, LockError> {
        let connecting = async { subscriber.init().await.map(drop).map_err(store_error) };
        let connected = within(
            STORE,
            timeout,
            "connecting the release subscriber",
            connecting,
        );
        if let Err(error) = connected.await {
            // Stop its reconnect loop; a dead server must not hold us here.
            let _ = tokio::time::timeout(Duration::from_secs(1), subscriber.quit()).await;
            return Err(error);
        }
        let shared = Arc::new(Shared {
            subscriber,
            channels: Mutex::new(HashMap::new()),
            wire: tokio::sync::Mutex::new(()),
            runtime: Handle::current(),
            timeout,
        });
        let tasks = vec![
            tokio::spawn(fan_out(shared.clone())).abort_handle(),
            tokio::spawn(resubscribe_on_reconnect(shared.clone())).abort_handle(),
        ];
        Ok(Announcements { shared, tasks })
    }

    /// Registers a waiter on `channel`; the server has the subscription when
    /// this returns (see [`subscribe`]).
    pub(crate) async fn watch(&self, channel: &str) -> Result<Watch, LockError> {
        let shared = &self.shared;
        if !shared.subscriber.is_connected() {
            return Err(store_error(FredError::new(
                ErrorKind::IO,
                "release subscriber is not connected",
            )));
        }
        // Fast path: someone already waits on this key, the server knows.
        {
            let mut channels = lock(&shared.channels);
            if let Some(entry) = channels.get_mut(channel).filter(|e| e.subscribed) {
                entry.watchers += 1;
                return Ok(Watch::new(shared, channel, entry.notify.clone()));
            }
        }
        let _wire = shared.wire.lock().await;
        let (notify, subscribed) = {
            let mut channels = lock(&shared.channels);
            let entry = channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    notify: Arc::new(Notify::new()),
                    watchers: 0,
                    subscribed: false,
                });
            entry.watchers += 1;
            (entry.notify.clone(), entry.subscribed)
        };
        // Built before the SUBSCRIBE so that a failure below unregisters it.
        let watch = Watch::new(shared, channel, notify);
        if !subscribed {
            subscribe(shared, channel).await?;
            if let Some(entry) = lock(&shared.channels).get_mut(channel) {
                entry.subscribed = true;
            }
        }
        Ok(watch)
    }
}

impl Drop for Announcements {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let subscriber = self.shared.subscriber.clone();
        self.shared.runtime.spawn(async move {
            let _ = subscriber.quit().await;
        });
    }
}

/// Delivers each published release to the waiters of its channel.
async fn fan_out(shared: Arc<Shared>) {
    let mut messages = shared.subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                // One waiter per release: see "One waiter per release".
                if let Some(entry) = lock(&shared.channels).get(&*message.channel) {
                    entry.notify.notify_one();
                }
            }
            // Some messages were dropped: wake everyone, they look again.
            Err(RecvError::Lagged(_)) => wake_all(&shared),
            Err(RecvError::Closed) => return,
        }
    }
}

/// A new connection has no subscriptions: subscribe again to every channel
/// with waiters, then wake them all, since a release may have been published
/// while the connection was down.
async fn resubscribe_on_reconnect(shared: Arc<Shared>) {
    let mut reconnects = shared.subscriber.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        let _wire = shared.wire.lock().await;
        let channels: Vec<String> = lock(&shared.channels).keys().cloned().collect();
        if !channels.is_empty()
            && let Err(error) = subscribe(&shared, channels).await
        {
            tracing::warn!(
                ?error,
                "redis: could not resubscribe to release channels; waiters poll"
            );
        }
        wake_all(&shared);
    }
}

fn wake_all(shared: &Shared) {
    for entry in lock(&shared.channels).values() {
        entry.notify.notify_waiters();
    }
}

/// One waiter: completes on the next announcement on its channel (or a
/// spurious wake-up after a reconnect), and drops its share of the
/// subscription when dropped.
pub(crate) struct Watch {
    // Declared first so that it is dropped before the registration below
    // (a `notify_one` it received but never saw is passed on as it goes).
    // `notify_waiters` (a lost subscription) wakes every `Notified` created
    // before it, even one never polled; `notify_one` (a release) wakes one
    // that is being waited on, or leaves a permit for the next one that is.
    notified: Pin<Box<OwnedNotified>>,
    _registration: Registration,
}

impl Watch {
    fn new(shared: &Arc<Shared>, channel: &str, notify: Arc<Notify>) -> Self {
        Watch {
            notified: Box::pin(notify.notified_owned()),
            _registration: Registration {
                shared: shared.clone(),
                channel: channel.to_owned(),
            },
        }
    }
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.notified.as_mut().poll(cx)
    }
}

struct Registration {
    shared: Arc<Shared>,
    channel: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let last = {
            let mut channels = lock(&self.shared.channels);
            match channels.get_mut(&self.channel) {
                Some(entry) => {
                    entry.watchers -= 1;
                    entry.watchers == 0
                }
                None => false,
            }
        };
        if last {
            let shared = self.shared.clone();
            let channel = std::mem::take(&mut self.channel);
            self.shared
                .runtime
                .spawn(unsubscribe_if_unused(shared, channel));
        }
    }
}

/// Drops the server-side subscription unless a new waiter arrived meanwhile.
async fn unsubscribe_if_unused(shared: Arc<Shared>, channel: String) {
    let _wire = shared.wire.lock().await;
    let unused = {
        let mut channels = lock(&shared.channels);
        let unused = channels.get(&channel).is_some_and(|e| e.watchers == 0);
        if unused {
            channels.remove(&channel);
        }
        unused
    };
    if unused && shared.subscriber.is_connected() {
        // A failure leaves a subscription nobody listens to until the next
        // reconnect; messages on it are ignored.
        let unsubscribing = async {
            shared
                .subscriber
                .unsubscribe(channel)
                .await
                .map_err(store_error)
        };
        let _ = within(STORE, shared.timeout, "unsubscribing", unsubscribing).await;
    }
}

/// `SUBSCRIBE`, in force on the server when this returns, within the
/// subscriber's timeout.
///
/// fred completes a `SUBSCRIBE` as soon as it is written: its answer comes
/// back out of band and is dropped. A release published before the server
/// read it would be missed, and its waiter would sleep until its retry
/// delay (in a cluster the release runs on another node, so that window is
/// wide enough to hit). A `PING` behind it on the same connection is
/// answered only after the server has run the `SUBSCRIBE`.
async fn subscribe<C>(shared: &Shared, channels: C) -> Result<(), LockError>
where
    C: Into<fred::types::MultipleStrings> + Send,
{
    let subscriber = &shared.subscriber;
    let subscribing = async {
        subscriber.subscribe(channels).await.map_err(store_error)?;
        // fred sends `SUBSCRIBE` in a cluster to the node that owns the
        // slot of the client's id; the `PING` must take the same connection.
        let same_connection = ClusterHash::Custom(redis_keyslot(subscriber.id().as_bytes()));
        let ping = CustomCommand::new_static("PING", same_connection, false);
        subscriber
            .custom::<Value, Value>(ping, Vec::new())
            .await
            .map(drop)
            .map_err(store_error)
    };
    within(STORE, shared.timeout, "subscribing", subscribing).await
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation that cannot panic halfway.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
