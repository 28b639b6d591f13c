//! Release announcements over `LISTEN`/`NOTIFY`, so that waiters wake as soon
//! as a lock is released instead of at their next retry.
//!
//! Releases send `pg_notify(<table>, key)` in the same statement that frees
//! the row (delivered when it commits). Each store keeps one extra session
//! that `LISTEN`s on the table's channel and wakes the waiters of the key in
//! the payload. When that session is down, `watch_release` answers "no
//! announcements" and waiters poll; when it drops, every waiter is woken
//! (a spurious wake-up costs one `save`, a lost one would cost a retry delay)
//! and it reconnects in the background.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config, NoTls};
use verrou_core::store::ReleaseWatchers;
use verrou_core::{BoxError, ReleaseWatch};

/// Waits between reconnection attempts of the listening session.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The listening session of one store and the waiters it wakes.
pub(crate) struct Announcements {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// Keys that have waiters.
    waiters: ReleaseWatchers,
    /// Whether the session is connected and `LISTEN` has taken effect.
    listening: AtomicBool,
}

impl Announcements {
    /// Starts listening on `channel`; returns once the first attempt has
    /// succeeded or failed (after at most twice `connect_timeout`), so that
    /// a store fresh out of `build` already announces.
    pub(crate) async fn start(
        mut config: Config,
        channel: String,
        connect_timeout: Duration,
    ) -> Self {
        // This session only ever waits; probe it often enough to notice a
        // dead peer (the default is two hours).
        config.keepalives_idle(Duration::from_secs(30));
        let shared = Arc::new(Shared::default());
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(listen_forever(
            shared.clone(),
            config,
            channel,
            connect_timeout,
            first_tx,
        ));
        // Connecting is bounded by `connect_timeout`; bound the `LISTEN` on
        // top of it too, so that `build` never hangs on a stuck server (the
        // session keeps trying in the background).
        let _ = tokio::time::timeout(connect_timeout.saturating_mul(2), first_rx).await;
        Announcements { shared, task }
    }

    /// Registers a waiter for the release of `key`, or `None` while the
    /// listening session is down (the caller then polls).
    pub(crate) fn watch(&self, key: &str) -> Option<ReleaseWatch> {
        // Register first, then look at the session: if it drops after this
        // look, the drop wakes this waiter too, so nothing is lost unseen.
        let watch = self.shared.waiters.watch(key);
        if self.shared.listening.load(Ordering::SeqCst) {
            Some(watch)
        } else {
            None
        }
    }
}

impl Drop for Announcements {
    fn drop(&mut self) {
        // The session belongs to the store: it goes when the last clone does.
        self.task.abort();
    }
}

async fn listen_forever(
    shared: Arc<Shared>,
    config: Config,
    channel: String,
    connect_timeout: Duration,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut retry = RETRY_MIN;
    loop {
        let outcome = listen_once(&shared, &config, &channel, connect_timeout, &mut first).await;
        let was_listening = shared.listening.swap(false, Ordering::SeqCst);
        shared.waiters.notify_everyone();
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
        match outcome {
            Ok(()) => tracing::debug!(%channel, "release announcement session ended; reconnecting"),
            Err(error) => {
                tracing::debug!(%channel, %error, "release announcement session failed; reconnecting")
            }
        }
        retry = if was_listening {
            RETRY_MIN
        } else {
            (retry * 2).min(RETRY_MAX)
        };
        tokio::time::sleep(retry).await;
    }
}

/// One session: connect, `LISTEN`, deliver notifications until it ends.
async fn listen_once(
    shared: &Arc<Shared>,
    config: &Config,
    channel: &str,
    connect_timeout: Duration,
    first: &mut Option<oneshot::Sender<()>>,
) -> Result<(), BoxError> {
    let Ok(connected) = tokio::time::timeout(connect_timeout, config.connect(NoTls)).await else {
        return Err(format!("connecting timed out after {connect_timeout:?}").into());
    };
    let (client, mut connection) = connected?;
    // The connection must be polled for the `LISTEN` to complete, and then
    // for notifications: both run here, side by side.
    let deliver = async {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                // One waiter, not all: only one can take the lock, and
                // waking them all would push every waiter's `save` through
                // the pool at once for each release (the others keep their
                // retry delay, so nobody is stranded).
                Some(Ok(AsyncMessage::Notification(note))) => {
                    shared.waiters.notify_one(note.payload())
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            }
        }
    };
    let listen = async {
        // The channel is a validated table name, so quoting is enough.
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await?;
        shared.listening.store(true, Ordering::SeqCst);
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
        // Keep the client (and so the session) alive while notes arrive.
        std::future::pending::<Result<(), BoxError>>().await
    };
    tokio::select! {
        ended = deliver => ended,
        failed = listen => failed,
    }
}
