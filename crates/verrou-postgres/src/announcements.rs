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
//!
//! The session is a `tokio-postgres` connection with the settings and TLS
//! of the store's own pool, or, for a store on a sqlx pool, a
//! `sqlx::postgres::PgListener` on a connection of its own opened with the
//! pool's connect options (it never takes one of the pool's).

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[cfg(feature = "sqlx")]
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config};
use verrou_core::store::ReleaseWatchers;
use verrou_core::{BoxError, ReleaseWatch};

use crate::tls::MakeTls;

/// Waits between reconnection attempts of the listening session.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the listening session connects with.
pub(crate) enum ListenTo {
    /// The store's own connection settings, with the TLS of its pool (a
    /// TLS store that listened in plain text, or not at all, would lose its
    /// wake-ups).
    Config(Box<Config>, MakeTls),
    /// A sqlx pool's connect options.
    #[cfg(feature = "sqlx")]
    Sqlx(Arc<PgConnectOptions>),
}

impl ListenTo {
    /// The store's own settings, made fit for a session that only waits.
    pub(crate) fn config(mut config: Config, tls: MakeTls, connect_timeout: Duration) -> Self {
        // Probe the idle session often enough to notice a dead peer (the
        // default is two hours).
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(connect_timeout);
        }
        ListenTo::Config(Box::new(config), tls)
    }
}

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

impl Shared {
    /// `LISTEN` has taken effect: waiters may rely on wake-ups from now on.
    fn listening_now(&self, first: &mut Option<oneshot::Sender<()>>) {
        self.listening.store(true, Ordering::SeqCst);
        if let Some(first) = first.take() {
            let _ = first.send(());
        }
    }
}

impl Announcements {
    /// Starts listening on `channel`; returns once the first attempt has
    /// succeeded or failed (after at most twice `connect_timeout`), so that
    /// a store fresh out of `build` already announces.
    pub(crate) async fn start(to: ListenTo, channel: String, connect_timeout: Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let (first_tx, first_rx) = oneshot::channel();
        let task = tokio::spawn(listen_forever(
            shared.clone(),
            to,
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
    to: ListenTo,
    channel: String,
    connect_timeout: Duration,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut retry = RETRY_MIN;
    loop {
        let outcome = match &to {
            ListenTo::Config(config, tls) => {
                listen_once(&shared, config, tls, &channel, connect_timeout, &mut first).await
            }
            #[cfg(feature = "sqlx")]
            ListenTo::Sqlx(options) => {
                listen_once_sqlx(&shared, options, &channel, connect_timeout, &mut first).await
            }
        };
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
    tls: &MakeTls,
    channel: &str,
    connect_timeout: Duration,
    first: &mut Option<oneshot::Sender<()>>,
) -> Result<(), BoxError> {
    let Ok(connected) = tokio::time::timeout(connect_timeout, config.connect(tls.clone())).await
    else {
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
        shared.listening_now(first);
        // Keep the client (and so the session) alive while notes arrive.
        std::future::pending::<Result<(), BoxError>>().await
    };
    tokio::select! {
        ended = deliver => ended,
        failed = listen => failed,
    }
}

/// One session on a sqlx pool's settings: connect, `LISTEN`, deliver
/// notifications until it ends.
///
/// The session's connection comes from a private one-connection pool on the
/// application pool's connect options (TLS and credentials included), so it
/// never holds one of the application's connections. The session sends
/// nothing while it waits, and sqlx offers no TCP keepalive setting (the
/// store's own session probes every 30 s): a network path that vanishes
/// without a reset leaves it looking alive. Nothing is lost but latency:
/// waiters always also wake at their retry delay, as when no session listens.
#[cfg(feature = "sqlx")]
async fn listen_once_sqlx(
    shared: &Arc<Shared>,
    options: &PgConnectOptions,
    channel: &str,
    connect_timeout: Duration,
    first: &mut Option<oneshot::Sender<()>>,
) -> Result<(), BoxError> {
    let session = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(connect_timeout)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&session).await?;
    // This loop reconnects itself, and must know when it has to: a lost
    // connection ends the session (`Ok(None)` below) instead of being
    // replaced behind its back.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    shared.listening_now(first);
    while let Some(note) = listener.try_recv().await? {
        // One waiter, not all: see `listen_once`.
        shared.waiters.notify_one(note.payload());
    }
    Ok(())
}
