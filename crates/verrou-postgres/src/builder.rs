//! `PostgresStoreBuilder`: where the connections come from, the table, the
//! limits.

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Config, NoTls};
use verrou_core::LockError;
use verrou_core::store::{TableName, within};

use crate::announcements::{Announcements, ListenTo};
use crate::backend::Backend;
use crate::error::STORE;
use crate::native::NativePool;
use crate::schema::{DEFAULT_TABLE, ensure_table};
use crate::shape::check_table;
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;
use crate::statements::Statements;
use crate::store::PostgresStore;

const DEFAULT_MAX_CONNECTIONS: usize = 8;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a [`PostgresStore`]; get one from [`PostgresStore::builder`] or
/// [`PostgresStore::from_pool`], finish with [`build`](Self::build)
/// ([`PostgresStore::connect`] is `builder().url(url).build()`).
///
/// The names are the ones every verrou store uses (see the builder
/// vocabulary in the `verrou-conformance` README).
///
/// | option | default |
/// |---|---|
/// | [`url`](Self::url) / [`config`](Self::config) / [`pool`](Self::pool) / `sqlx_pool` (feature `sqlx`) | required, one of them |
/// | [`table_name`](Self::table_name) | `verrou` |
/// | [`create_table`](Self::create_table) | `true` |
/// | [`max_connections`](Self::max_connections) | 8 (own pool only) |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s |
/// | [`operation_timeout`](Self::operation_timeout) | 10 s |
/// | [`release_announcements`](Self::release_announcements) | `true` |
/// | [`synchronous_commit`](Self::synchronous_commit) | `true` (own pool only) |
#[must_use = "call .build().await to get the store"]
pub struct PostgresStoreBuilder {
    source: Source,
    table_name: String,
    create_table: bool,
    max_connections: usize,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
    release_announcements: bool,
    synchronous_commit: bool,
}

enum Source {
    Missing,
    /// Parsed when given, reported by `build` (the URL itself is not kept: it
    /// may hold a password).
    Url(Result<Box<Config>, String>),
    Config(Box<Config>),
    Pool(Pool),
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::PgPool),
}

impl PostgresStoreBuilder {
    pub(crate) fn new() -> Self {
        PostgresStoreBuilder {
            source: Source::Missing,
            table_name: DEFAULT_TABLE.to_owned(),
            create_table: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: Some(DEFAULT_OPERATION_TIMEOUT),
            release_announcements: true,
            synchronous_commit: true,
        }
    }

    /// Connects with a URL or key-value string, as
    /// [`tokio_postgres::Config`] parses it:
    /// `postgres://user:password@host:5432/db?application_name=app`.
    ///
    /// Connections are plain TCP (or Unix sockets); for TLS, build a pool
    /// with your TLS connector and use [`pool`](Self::pool).
    pub fn url(mut self, url: &str) -> Self {
        self.source = Source::Url(
            url.parse::<Config>()
                .map(Box::new)
                .map_err(|e| e.to_string()),
        );
        self
    }

    /// Connects with a driver configuration (plain TCP or Unix sockets).
    pub fn config(mut self, config: Config) -> Self {
        self.source = Source::Config(Box::new(config));
        self
    }

    /// Uses an existing pool: its size, TLS connector and recycling are
    /// yours, and [`max_connections`](Self::max_connections) and
    /// [`connect_timeout`](Self::connect_timeout) do not change it.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.source = Source::Pool(pool);
        self
    }

    /// Uses an existing sqlx pool (feature `sqlx`): its size, TLS and
    /// session settings are yours, and [`max_connections`](Self::max_connections)
    /// does not change it. Release announcements listen on one extra
    /// session opened with the pool's connect options (not one of the
    /// pool's connections). `PostgresStore::from_sqlx` starts a builder
    /// with it.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(mut self, pool: sqlx::PgPool) -> Self {
        self.source = Source::Sqlx(pool);
        self
    }

    /// The lock table (default `verrou`): ASCII letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes; case is kept. It is found
    /// through the connection's `search_path`.
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Whether [`build`](Self::build) creates the table when it is missing
    /// (default `true`). Turn it off when migrations own the schema; `build`
    /// then fails with [`LockError::InvalidConfig`] naming the missing table.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// The size of the pool the store opens (default 8). Each operation holds
    /// a connection for one statement.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// How long opening a connection may take, TCP connect and login
    /// together (default 5 s). A server that is down or unreachable becomes
    /// a [`LockError::Store`] after at most this long instead of a hang.
    ///
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]; `Duration::MAX` (or any value too large
    /// for the clock) means no limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one store operation may take, waiting for a pooled connection
    /// included (default 10 s; `None`: unbounded). An operation that runs out
    /// of time is a [`LockError::Store`] and its connection is closed, so a
    /// dead network cannot hang a lock call forever.
    ///
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]. `None` means no limit, and so does
    /// `Some(Duration::MAX)`. A call that runs out of time fails with a
    /// [`LockError::Store`] whose source is
    /// [`TimedOut`](verrou_core::store::TimedOut).
    pub fn operation_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Whether releases are announced with `NOTIFY` so that waiters wake at
    /// once instead of at their next retry (default `true`).
    ///
    /// With it on, every release also sends `pg_notify('<table>', key)`, and
    /// a store built from [`url`](Self::url) or [`config`](Self::config)
    /// (or a sqlx pool, feature `sqlx`) keeps one extra session that
    /// `LISTEN`s on that channel. A store on your own `deadpool`
    /// [`pool`](Self::pool) announces its releases but does not listen (its
    /// waiters poll), as that pool gives no access to notifications nor to
    /// its connection settings. Turn it off to save the extra session and
    /// the notification traffic, at the price of waiters polling.
    pub fn release_announcements(mut self, on: bool) -> Self {
        self.release_announcements = on;
        self
    }

    /// Whether each lock operation waits for its commit to reach disk
    /// (default `true`, PostgreSQL's own default).
    ///
    /// Every acquire, extend and release is a committed write, and a durable
    /// commit waits for the WAL flush: often milliseconds, far more than the
    /// statement itself. `false` sets `synchronous_commit = off` on the
    /// store's sessions, which makes operations several times faster, but
    /// after a **server crash** (not a clean restart) the last fraction of a
    /// second of lock operations can be lost: a lock the client was granted
    /// may come back free (two holders), and a fencing token may be handed
    /// out twice. Only for locks that are an optimisation, not a safety
    /// guarantee. Applies to the store's own pool; on your own pool, set it
    /// in your connection settings.
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }

    /// Connects, makes sure the table exists (creating it if allowed), checks
    /// that it can hold the store's locks, and returns the store.
    ///
    /// The check covers the column types, the key's collation and length
    /// (a `varchar(n)` key sets [`max_key_bytes`](verrou_core::LockStore::max_key_bytes)
    /// to `n`) and the unique index on the key; see the schema in the README.
    ///
    /// # Errors
    /// - [`LockError::InvalidConfig`]: an invalid table name, URL or timeout,
    ///   no connection source, a zero pool size, a missing table with
    ///   `create_table(false)`, or a table that cannot hold the locks (the
    ///   message names each column and what is wrong with it, or the
    ///   server's complaint about a statement that does not fit it).
    /// - [`LockError::Store`]: the server could not be reached in time,
    ///   refused the login, or failed.
    pub async fn build(self) -> Result<PostgresStore, LockError> {
        let table = TableName::new(STORE, &self.table_name)?;
        at_least_a_millisecond("connect_timeout", Some(self.connect_timeout))?;
        at_least_a_millisecond("operation_timeout", self.operation_timeout)?;
        // What the listening session connects with: the store's own
        // settings, or a sqlx pool's; a `deadpool` pool does not expose its.
        let mut listen_to = None;
        let backend = match self.source {
            Source::Missing => {
                return Err(LockError::invalid_config(
                    STORE,
                    "no connection given: call url(), config() or pool()",
                ));
            }
            Source::Url(Err(reason)) => {
                return Err(LockError::invalid_config(
                    STORE,
                    format!("invalid connection URL: {reason}"),
                ));
            }
            Source::Url(Ok(config)) | Source::Config(config) => {
                listen_to = Some(ListenTo::config((*config).clone(), self.connect_timeout));
                let mut config = *config;
                if !self.synchronous_commit {
                    let options = match config.get_options() {
                        Some(given) => format!("{given} -c synchronous_commit=off"),
                        None => "-c synchronous_commit=off".to_owned(),
                    };
                    config.options(options);
                }
                let pool = own_pool(config, self.max_connections, self.connect_timeout)?;
                Backend::Native(NativePool::new(pool, self.operation_timeout))
            }
            Source::Pool(pool) => Backend::Native(NativePool::new(pool, self.operation_timeout)),
            #[cfg(feature = "sqlx")]
            Source::Sqlx(pool) => {
                listen_to = Some(ListenTo::Sqlx(pool.connect_options()));
                Backend::Sqlx(SqlxPool::new(pool, self.operation_timeout))
            }
        };
        // A user's pool may have no timeouts of its own; bound the first
        // connection here so that `build` never hangs on a dead server.
        let mut session = within(
            STORE,
            Some(self.connect_timeout),
            "connecting",
            backend.setup_session(),
        )
        .await?;
        ensure_table(&mut *session, &table, self.create_table).await?;
        let shape = check_table(&mut *session, &table).await?;
        let sql = Statements::new(&table, self.release_announcements);
        // The shape check covers what we know can go wrong; preparing every
        // statement now turns anything it missed into an error at startup
        // rather than at the first lock. The server refusing a statement is
        // the table's fault (`InvalidConfig`, like the shape check); losing
        // the connection meanwhile is not.
        for statement in [
            &sql.acquire,
            &sql.release,
            &sql.force_release,
            &sql.exists,
            &sql.extend,
            &sql.prune,
        ] {
            if let Err(refused) = session.prepare(statement).await? {
                return Err(LockError::invalid_config(
                    STORE,
                    format!(
                        "table {} does not fit verrou's statements: {}{} (see the \
                         schema in the verrou-postgres README)",
                        table.quoted(),
                        refused.message,
                        refused
                            .detail
                            .map(|detail| format!(": {detail}"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        drop(session);
        let announcements = match listen_to.filter(|_| self.release_announcements) {
            Some(to) => {
                let channel = table.as_str().to_owned();
                Some(Announcements::start(to, channel, self.connect_timeout).await)
            }
            None => None,
        };
        Ok(PostgresStore::new(
            backend,
            table,
            sql,
            shape,
            self.operation_timeout,
            announcements,
        ))
    }
}

/// Timeouts shorter than a millisecond (zero included) would fail every
/// connection or call before it could start; like TTLs, they are refused.
/// Large ones need no ceiling: Tokio treats a deadline beyond its clock's
/// range as "never".
fn at_least_a_millisecond(option: &str, timeout: Option<Duration>) -> Result<(), LockError> {
    match timeout {
        Some(timeout) if timeout < Duration::from_millis(1) => Err(LockError::invalid_config(
            STORE,
            format!("{option} must be at least 1ms, got {timeout:?}"),
        )),
        _ => Ok(()),
    }
}

/// Our own pool: plain TCP, bounded connect, fast recycling.
fn own_pool(mut config: Config, max: usize, connect_timeout: Duration) -> Result<Pool, LockError> {
    if max == 0 {
        return Err(LockError::invalid_config(
            STORE,
            "max_connections must be at least 1",
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    // `Fast` recycling only checks that the connection is not closed: no
    // extra round trip per operation. A connection that broke during a
    // statement is dropped by the store itself, not returned.
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max)
        .runtime(Runtime::Tokio1)
        // The driver's connect timeout covers the TCP connect only; this
        // covers a server that accepts the socket but never answers.
        .create_timeout(Some(connect_timeout))
        .build()
        .map_err(|e| LockError::invalid_config(STORE, format!("cannot build the pool: {e}")))
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Missing => "missing",
            Source::Url(Ok(_)) | Source::Config(_) => "config",
            Source::Url(Err(_)) => "invalid URL",
            Source::Pool(_) => "pool",
            #[cfg(feature = "sqlx")]
            Source::Sqlx(_) => "sqlx pool",
        };
        // The driver's `Config` hides its password in `Debug`, but the
        // builder shows no connection detail at all.
        f.debug_struct("PostgresStoreBuilder")
            .field("source", &source)
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("release_announcements", &self.release_announcements)
            .field("synchronous_commit", &self.synchronous_commit)
            .finish()
    }
}
