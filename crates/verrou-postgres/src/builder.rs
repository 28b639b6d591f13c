//! `PostgresStoreBuilder`: where the connections come from, the table, the
//! limits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Config;
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
use crate::tls::{self, MakeTls, SslMode, Wanted};

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
/// | [`ca_file`](Self::ca_file) | none: `sslrootcert`, else the platform's roots |
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
    ca_file: Option<PathBuf>,
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
    Url(Result<Url, String>),
    Config(Box<Config>),
    Pool(Pool),
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::PgPool),
}

/// A connection string: the driver's part, and libpq's TLS options that
/// were taken out of it before the driver saw it.
struct Url {
    config: Box<Config>,
    sslmode: Option<SslMode>,
    sslrootcert: Option<String>,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let split = tls::split(url)?;
        let config = split
            .rest
            .parse::<Config>()
            .map_err(|e| format!("invalid connection URL: {e}"))?;
        Ok(Url {
            config: Box::new(config),
            sslmode: split.sslmode,
            sslrootcert: split.sslrootcert,
        })
    }
}

impl PostgresStoreBuilder {
    pub(crate) fn new() -> Self {
        PostgresStoreBuilder {
            source: Source::Missing,
            ca_file: None,
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
    /// [`tokio_postgres::Config`] parses it
    /// (`postgres://user:password@host:5432/db?application_name=app`, or
    /// `host=db.internal user=app dbname=app`), plus libpq's TLS options,
    /// which the store reads itself:
    ///
    /// | `sslmode` | the store's connections |
    /// |---|---|
    /// | none, `disable` | plain TCP (or a Unix socket), as before TLS existed here; naming roots (`sslrootcert`, [`ca_file`](Self::ca_file)) with them is [`LockError::InvalidConfig`] |
    /// | `require`, `verify-full` | TLS or nothing; the certificate must chain to a trusted root **and** name the host connected to |
    /// | `verify-ca` | TLS or nothing; the certificate must chain to the CA of `sslrootcert` or [`ca_file`](Self::ca_file) (required), whatever host it names |
    /// | `prefer`, `allow` | refused ([`LockError::InvalidConfig`]): both may fall back to plain text without telling |
    ///
    /// Two departures from libpq, both away from plain text and unchecked
    /// certificates: no `sslmode` means plain text, not libpq's `prefer`
    /// (which tries TLS and silently falls back); and `require` checks as
    /// much as `verify-full`, where libpq's checks nothing: a lock store
    /// never accepts a certificate nobody vouches for, as whoever sits in
    /// the middle could grant the same lock twice. The host checked is the
    /// one named (`host`), also when `hostaddr` gives the address to
    /// connect to.
    ///
    /// The trusted roots are `sslrootcert=<PEM file>` (percent-decoded in a
    /// URL; in `'` quotes, with `\` escapes, in the key-value form), or
    /// [`ca_file`](Self::ca_file) (not both: that is
    /// [`LockError::InvalidConfig`]); `sslrootcert=system`, or neither,
    /// means the platform's roots (and Mozilla's, with the `webpki-roots`
    /// feature). Client certificates (`sslcert`, `sslkey`) and libpq's other
    /// TLS options are refused as [`LockError::InvalidConfig`] saying so.
    /// Without the `rustls` feature (on by default), any TLS mode is
    /// [`LockError::InvalidConfig`]: never plain text instead.
    ///
    /// The same TLS serves the store's pool, its `LISTEN` session (so
    /// releases still wake waiters at once) and the cancel requests of
    /// statements that run out of time. PostgreSQL has no TLS on Unix
    /// sockets: a TLS mode with a socket host fails to connect.
    ///
    /// The URL is never shown by `Debug` nor in errors: it may hold a
    /// password.
    pub fn url(mut self, url: &str) -> Self {
        self.source = Source::Url(Url::parse(url));
        self
    }

    /// Connects with a driver configuration. Its
    /// [`ssl_mode`](tokio_postgres::Config::ssl_mode) decides TLS:
    /// `Require` is TLS with the full check of [`url`](Self::url)'s
    /// `verify-full` (roots: [`ca_file`](Self::ca_file), else the
    /// platform's); `Disable`, and `Prefer` (the `Config` default, which
    /// cannot be told apart from "not set"), are plain TCP, as `Prefer`
    /// never tried TLS on the store's connections: set `Require` for TLS.
    pub fn config(mut self, config: Config) -> Self {
        self.source = Source::Config(Box::new(config));
        self
    }

    /// Uses an existing pool: its size, TLS connector and recycling are
    /// yours, and [`max_connections`](Self::max_connections),
    /// [`connect_timeout`](Self::connect_timeout) and
    /// [`ca_file`](Self::ca_file) (refused with it) do not change it.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.source = Source::Pool(pool);
        self
    }

    /// Uses an existing sqlx pool (feature `sqlx`): its size, TLS and
    /// session settings are yours, and [`max_connections`](Self::max_connections)
    /// and [`ca_file`](Self::ca_file) (refused with it) do not change it.
    /// Release announcements listen on one extra session opened with the
    /// pool's connect options (not one of the pool's connections).
    /// `PostgresStore::from_sqlx` starts a builder with it.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(mut self, pool: sqlx::PgPool) -> Self {
        self.source = Source::Sqlx(pool);
        self
    }

    /// The CA certificates (a PEM file) that the store's own TLS
    /// connections trust instead of the platform's roots: the builder's
    /// form of `sslrootcert`, for a [`url`](Self::url) with a TLS `sslmode`
    /// or a [`config`](Self::config) with `ssl_mode` `Require`.
    ///
    /// [`build`](Self::build) refuses it with [`LockError::InvalidConfig`]
    /// when the connection asks for no TLS, when the URL also names
    /// `sslrootcert`, with [`pool`](Self::pool) or a sqlx pool (whose TLS is
    /// theirs), when the file is unreadable or holds no certificate, and
    /// without the `rustls` feature.
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_postgres::PostgresStore::builder()
    ///     .url("postgres://app@db.internal/app?sslmode=verify-full")
    ///     .ca_file("/etc/verrou/postgres-ca.pem")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
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
    /// `LISTEN`s on that channel, with the same TLS as the store's pool. A
    /// store on your own `deadpool` [`pool`](Self::pool) announces its
    /// releases but does not listen (its waiters poll), as that pool gives
    /// no access to notifications nor to its connection settings. Turn it
    /// off to save the extra session and the notification traffic, at the
    /// price of waiters polling.
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
    ///   no connection source, a zero pool size, TLS options that cannot be
    ///   honoured (see [`url`](Self::url) and [`ca_file`](Self::ca_file)),
    ///   a missing table with `create_table(false)`, or a table that cannot
    ///   hold the locks (the message names each column and what is wrong
    ///   with it, or the server's complaint about a statement that does not
    ///   fit it).
    /// - [`LockError::Store`]: the server could not be reached in time,
    ///   refused the login, refused TLS, presented a certificate the
    ///   connection does not trust, or failed.
    pub async fn build(mut self) -> Result<PostgresStore, LockError> {
        let table = TableName::new(STORE, &self.table_name)?;
        at_least_a_millisecond("connect_timeout", Some(self.connect_timeout))?;
        at_least_a_millisecond("operation_timeout", self.operation_timeout)?;
        // What the listening session connects with: the store's own
        // settings, or a sqlx pool's; a `deadpool` pool does not expose its.
        let mut listen_to = None;
        let backend = match std::mem::replace(&mut self.source, Source::Missing) {
            Source::Missing => {
                return Err(LockError::invalid_config(
                    STORE,
                    "no connection given: call url(), config() or pool()",
                ));
            }
            Source::Url(Err(reason)) => return Err(LockError::invalid_config(STORE, reason)),
            Source::Url(Ok(url)) => {
                let wanted = tls::from_url(
                    url.sslmode,
                    url.sslrootcert.as_deref(),
                    self.ca_file.as_deref(),
                )?;
                let (pool, listen) = self.own_pool(*url.config, &wanted)?;
                listen_to = Some(listen);
                pool
            }
            Source::Config(config) => {
                let wanted = tls::from_config(&config, self.ca_file.as_deref())?;
                let (pool, listen) = self.own_pool(*config, &wanted)?;
                listen_to = Some(listen);
                pool
            }
            Source::Pool(pool) => {
                self.no_ca_file_with("pool")?;
                Backend::Native(NativePool::new(
                    pool,
                    self.operation_timeout,
                    MakeTls::plain(),
                ))
            }
            #[cfg(feature = "sqlx")]
            Source::Sqlx(pool) => {
                self.no_ca_file_with("sqlx pool")?;
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

impl PostgresStoreBuilder {
    /// The store's own pool on `config`, with the TLS `wanted`, and what
    /// its listening session connects with (the same TLS).
    fn own_pool(
        &self,
        mut config: Config,
        wanted: &Wanted,
    ) -> Result<(Backend, ListenTo), LockError> {
        let tls = MakeTls::new(wanted)?;
        // `Require` or `Disable`, never the driver's `Prefer`: TLS that was
        // asked for cannot quietly become plain text.
        config.ssl_mode(wanted.driver_mode());
        let listen_to = ListenTo::config(config.clone(), tls.clone(), self.connect_timeout);
        if !self.synchronous_commit {
            let options = match config.get_options() {
                Some(given) => format!("{given} -c synchronous_commit=off"),
                None => "-c synchronous_commit=off".to_owned(),
            };
            config.options(options);
        }
        let pool = own_pool(
            config,
            tls.clone(),
            self.max_connections,
            self.connect_timeout,
        )?;
        // Cancel requests of timed-out statements travel with the same TLS.
        let backend = Backend::Native(NativePool::new(pool, self.operation_timeout, tls));
        Ok((backend, listen_to))
    }

    /// `ca_file` is for the connections the store opens: a pool you built
    /// has its TLS settings already.
    fn no_ca_file_with(&self, source: &str) -> Result<(), LockError> {
        match &self.ca_file {
            Some(_) => Err(LockError::invalid_config(
                STORE,
                format!(
                    "ca_file applies to connections the store opens; a {source} you built \
                     keeps its own TLS settings: give the CA to its connector instead"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Our own pool: bounded connect, fast recycling, the TLS of `tls` (none
/// when the config says `Disable`).
fn own_pool(
    mut config: Config,
    tls: MakeTls,
    max: usize,
    connect_timeout: Duration,
) -> Result<Pool, LockError> {
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
        tls,
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
            .field("ca_file", &self.ca_file)
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
