//! `MysqlStoreBuilder`: where the connections come from, the table, the
//! limits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints};
use verrou_core::LockError;
use verrou_core::store::{TableName, within};

use crate::backend::Backend;
use crate::error::STORE;
use crate::native::NativePool;
use crate::schema::{DEFAULT_TABLE, ensure_table};
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;
use crate::statements::Statements;
use crate::store::MysqlStore;
use crate::tls::{self, UrlTls};

const DEFAULT_MAX_CONNECTIONS: usize = 8;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_CONNECTION_TTL: Duration = Duration::from_secs(60);

/// Options of a [`MysqlStore`]; get one from [`MysqlStore::builder`] or
/// [`MysqlStore::from_pool`], finish with [`build`](Self::build)
/// ([`MysqlStore::connect`] is `builder().url(url).build()`).
///
/// The names are the ones every verrou store uses (see the builder
/// vocabulary in the `verrou-conformance` README).
///
/// | option | default |
/// |---|---|
/// | [`url`](Self::url) / [`config`](Self::config) / [`pool`](Self::pool) / `sqlx_pool` (feature `sqlx`) | required, one of them |
/// | [`ca_file`](Self::ca_file) | none: the platform's roots (URL with a TLS `ssl-mode` only) |
/// | [`table_name`](Self::table_name) | `verrou` |
/// | [`create_table`](Self::create_table) | `true` |
/// | [`max_connections`](Self::max_connections) | 8 (own pool only) |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s |
/// | [`operation_timeout`](Self::operation_timeout) | 10 s |
#[must_use = "call .build().await to get the store"]
pub struct MysqlStoreBuilder {
    source: Source,
    table_name: String,
    create_table: bool,
    max_connections: usize,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
    ca_file: Option<PathBuf>,
}

enum Source {
    Missing,
    /// Parsed when given, reported by `build` (the URL itself is not kept: it
    /// may hold a password). Its TLS options are applied at `build`, where
    /// `ca_file` is known and the certificates are read.
    Url(Result<(Opts, UrlTls), String>),
    Config(Box<Opts>),
    Pool(Pool),
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::MySqlPool),
}

impl MysqlStoreBuilder {
    pub(crate) fn new() -> Self {
        MysqlStoreBuilder {
            source: Source::Missing,
            table_name: DEFAULT_TABLE.to_owned(),
            create_table: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: Some(DEFAULT_OPERATION_TIMEOUT),
            ca_file: None,
        }
    }

    /// Connects with a URL as [`mysql_async::Opts::from_url`] parses it:
    /// `mysql://user:password@host:3306/db`. The URL must name a database.
    ///
    /// # TLS
    ///
    /// The `mysql` client's options ask for TLS (feature `rustls`, on by
    /// default): `ssl-mode` (any case; `sslmode` works too, as in sqlx) and
    /// `ssl-ca=<path>` (percent-encoded like any query value, `+` being a
    /// space), e.g.
    /// `mysql://app@db.internal:3306/app?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/verrou/mysql-ca.pem`.
    ///
    /// | `ssl-mode` | connection | the server's certificate |
    /// |---|---|---|
    /// | absent, `DISABLED` | plain TCP | — |
    /// | `REQUIRED`, `VERIFY_IDENTITY` | TLS | must chain to a trusted root and name the URL's host |
    /// | `VERIFY_CA` | TLS | must chain to a trusted root, any host name (but see below) |
    /// | `PREFERRED` | [`LockError::InvalidConfig`] | it falls back to plain text |
    ///
    /// `REQUIRED` checks more than MySQL's client does (no name, and no
    /// certificate unless given a CA): a lock store never accepts a
    /// certificate nobody vouches for, since whoever can stand between it
    /// and its server could grant a lock twice. The
    /// trusted roots are those of `ssl-ca` or [`ca_file`](Self::ca_file)
    /// only, else the platform's (and Mozilla's, with the `webpki-roots`
    /// feature). `VERIFY_CA`: mysql_async 0.37.1 still checks the host name
    /// (blackbeam/mysql_async#404), so a name the certificate does not carry
    /// fails the connection until a fixed driver is released.
    ///
    /// With TLS the store stays on the TCP connection it checked: the
    /// driver's `prefer_socket` (trying to reconnect through the server's
    /// Unix socket path, which has no TLS, when this machine has that path)
    /// is turned off, and a `socket` parameter is
    /// [`LockError::InvalidConfig`].
    ///
    /// The driver's own TLS parameters (`require_ssl`, `verify_ca`,
    /// `verify_identity`, `built_in_roots`), client certificates
    /// (`ssl-cert`, `ssl-key`), an unknown `ssl-mode`, and any TLS mode
    /// without the `rustls` feature are [`LockError::InvalidConfig`] at
    /// [`build`](Self::build), before connecting: never plain text. A server
    /// without TLS, or whose certificate is refused, is a
    /// [`LockError::Store`] naming `host:port` and why.
    ///
    /// The store installs *ring* as the process's default rustls crypto
    /// provider if there is none yet (the driver builds its TLS settings
    /// from that default and would panic on a build with two providers and
    /// no default): see `verrou_core::store::tls::install_default_provider`.
    pub fn url(mut self, url: &str) -> Self {
        self.source = Source::Url(tls::split_url(url).and_then(|(plain, tls)| {
            Opts::from_url(&plain)
                .map(|opts| (opts, tls))
                .map_err(|e| format!("invalid connection URL: {e}"))
        }));
        self
    }

    /// Connects with the driver's own settings: an [`Opts`] or an
    /// [`OptsBuilder`] (anything that converts into [`Opts`]). Its pool
    /// constraints are replaced by [`max_connections`](Self::max_connections).
    ///
    /// Its TLS settings ([`OptsBuilder::ssl_opts`]) are used as they are:
    /// [`ca_file`](Self::ca_file) does not apply. Settings with TLS need the
    /// `rustls` feature (without it [`build`](Self::build) refuses them: the
    /// driver would panic); the store installs *ring* as the default
    /// crypto provider as [`url`](Self::url) says.
    pub fn config(mut self, config: impl Into<Opts>) -> Self {
        self.source = Source::Config(Box::new(config.into()));
        self
    }

    /// Uses an existing pool: its size, TLS, connection reset and found-rows
    /// settings are yours (the statements do not depend on them), and
    /// [`max_connections`](Self::max_connections) does not change it. The
    /// `KILL` for an abandoned statement goes out on a connection of this
    /// pool, with its TLS. [`ca_file`](Self::ca_file) does not apply.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.source = Source::Pool(pool);
        self
    }

    /// Uses an existing sqlx pool (feature `sqlx`): its size, TLS and
    /// session settings are yours (the statements do not depend on them),
    /// and [`max_connections`](Self::max_connections) does not change it.
    /// The `KILL` for an abandoned statement goes out on a connection opened
    /// with the pool's connect options, with their TLS.
    /// [`ca_file`](Self::ca_file) does not apply: TLS is sqlx's (its TLS
    /// features and `ssl-mode`; see "Production" in the crate
    /// documentation). `MysqlStore::from_sqlx` starts a builder with it.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(mut self, pool: sqlx::MySqlPool) -> Self {
        self.source = Source::Sqlx(pool);
        self
    }

    /// Trust only the certificate authorities in this PEM file, instead of
    /// the platform's roots, for a URL whose `ssl-mode` asks for TLS (the
    /// same as `ssl-ca=<path>` in the URL; give one of the two). Read at
    /// [`build`](Self::build).
    ///
    /// [`build`](Self::build) fails with [`LockError::InvalidConfig`] when
    /// the file cannot be read or holds no certificate rustls can use, when
    /// the URL does not ask for TLS (absent or `DISABLED` `ssl-mode`), and
    /// with [`config`](Self::config), [`pool`](Self::pool) or a sqlx pool,
    /// whose TLS settings are their own: a CA given for a connection that
    /// would not use it is a mistake, not something to ignore. A server
    /// whose certificate this CA did not sign fails the build with a
    /// [`LockError::Store`].
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_mysql::MysqlStore::builder()
    ///     .url("mysql://app@db.internal:3306/app?ssl-mode=VERIFY_IDENTITY")
    ///     .ca_file("/etc/verrou/mysql-ca.pem")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The lock table (default `verrou`): ASCII letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes. It lives in the connection's
    /// default database.
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

    /// How long getting a connection may take: waiting for a free one in the
    /// pool, or opening one, TCP connect and login together (default 5 s). A
    /// server that is down or unreachable becomes a [`LockError::Store`]
    /// after at most this long instead of a hang.
    ///
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]; `Duration::MAX` (or any value too large
    /// for the clock) means no limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one store operation may take, getting its connection included
    /// (default 10 s; `None`: unbounded). An operation that runs out of time
    /// is a [`LockError::Store`] and its connection is closed rather than
    /// reused, so a dead network or a long row-lock wait cannot hang a lock
    /// call forever.
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

    /// Connects, makes sure the table exists (creating it if allowed), checks
    /// that its columns fit the store's statements, and returns the store.
    ///
    /// # Errors
    /// - [`LockError::InvalidConfig`]: an invalid table name, URL or
    ///   timeout, no connection source, a zero pool size, a URL without a
    ///   database, TLS options that cannot be used (see [`url`](Self::url)
    ///   and [`ca_file`](Self::ca_file)), a missing table with
    ///   `create_table(false)`, or a table
    ///   that cannot hold the locks (its columns, nullability or unique
    ///   indexes do not match the schema, or the server refuses a statement
    ///   on it; the message names each).
    /// - [`LockError::Store`]: the server could not be reached in time,
    ///   refused the login (a server that requires TLS refuses a plain
    ///   connection), offers no TLS when asked for it, sent a certificate
    ///   that is refused, or failed.
    pub async fn build(self) -> Result<MysqlStore, LockError> {
        let table = TableName::new(STORE, &self.table_name)?;
        at_least_a_millisecond("connect_timeout", Some(self.connect_timeout))?;
        at_least_a_millisecond("operation_timeout", self.operation_timeout)?;
        let native = |pool| NativePool::new(pool, self.connect_timeout, self.operation_timeout);
        if self.ca_file.is_some() && !matches!(self.source, Source::Url(_) | Source::Missing) {
            return Err(LockError::invalid_config(
                STORE,
                "ca_file applies to a URL whose ssl-mode asks for TLS; options or a pool of \
                 your own keep their own TLS settings (`SslOpts::with_root_certs`)",
            ));
        }
        // What the first connection was to do over TLS, to say so if it fails.
        #[cfg(feature = "rustls")]
        let mut target = None;
        // A pool of the user's may use TLS, and nothing tells.
        #[cfg(feature = "rustls")]
        let users_pool = matches!(self.source, Source::Pool(_));
        let backend = match self.source {
            Source::Missing => {
                return Err(LockError::invalid_config(
                    STORE,
                    "no connection given: call url(), config() or pool()",
                ));
            }
            Source::Url(Err(reason)) => return Err(LockError::invalid_config(STORE, reason)),
            Source::Url(Ok((opts, url_tls))) => {
                let opts = tls::apply(opts, &url_tls, self.ca_file.as_deref())?;
                #[cfg(feature = "rustls")]
                {
                    let mode = url_tls.mode.map_or("DISABLED", tls::SslMode::as_str);
                    target = tls::TlsTarget::of(&opts, format!("ssl-mode={mode}"));
                }
                Backend::Native(native(own_pool(opts, self.max_connections)?))
            }
            Source::Config(opts) => {
                #[cfg(feature = "rustls")]
                {
                    target = tls::TlsTarget::of(&opts, "the config's SslOpts");
                }
                #[cfg(not(feature = "rustls"))]
                if opts.ssl_opts().is_some() {
                    return Err(tls::unsupported("a config with TLS settings (`ssl_opts`)"));
                }
                Backend::Native(native(own_pool(*opts, self.max_connections)?))
            }
            Source::Pool(pool) => Backend::Native(native(pool)),
            #[cfg(feature = "sqlx")]
            Source::Sqlx(pool) => Backend::Sqlx(SqlxPool::new(
                pool,
                self.connect_timeout,
                self.operation_timeout,
            )),
        };
        // The driver builds its rustls settings from the process's default
        // provider, which rustls cannot choose when the build has two (and
        // then panics). Only when TLS may be used: a process default is
        // global, and an application that installs its own after this would
        // be refused. An application's own choice made before stays.
        #[cfg(feature = "rustls")]
        if target.is_some() || users_pool {
            verrou_core::store::tls::install_default_provider();
        }
        let sql = Statements::new(&table);
        // A user's pool may have no timeouts of its own: bound the first
        // connection here so that `build` never hangs on a dead server.
        let connected = within(
            STORE,
            Some(self.connect_timeout),
            "connecting",
            backend.setup_session(),
        )
        .await;
        #[cfg(feature = "rustls")]
        let connected = connected.map_err(|e| match &target {
            Some(target) => target.explain(e),
            None => e,
        });
        let mut session = connected?;
        within(
            STORE,
            self.operation_timeout,
            "setting up the lock table",
            async {
                ensure_table(&mut *session, &table, self.create_table).await?;
                // Preparing every statement now turns a table the statements
                // do not fit into an error at startup rather than at the
                // first lock (and fills this connection's statement cache).
                // The server refusing a statement is the table's fault
                // (`InvalidConfig`, like the shape check); losing the
                // connection meanwhile is not.
                for statement in sql.all() {
                    if let Err(refused) = session.prepare(statement).await? {
                        return Err(LockError::invalid_config(
                            STORE,
                            format!(
                                "table {} does not fit verrou's statements: {refused} (see the \
                                 schema in the verrou-mysql README)",
                                table.backquoted(),
                            ),
                        ));
                    }
                }
                Ok(())
            },
        )
        .await?;
        drop(session);
        Ok(MysqlStore::new(
            backend,
            table,
            sql,
            self.connect_timeout,
            self.operation_timeout,
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

/// Our own pool, sized by `max_connections`.
fn own_pool(opts: Opts, max: usize) -> Result<Pool, LockError> {
    let constraints = PoolConstraints::new(0, max)
        .filter(|_| max > 0)
        .ok_or_else(|| LockError::invalid_config(STORE, "max_connections must be at least 1"))?;
    let mut pool_opts = opts.pool_opts().clone().with_constraints(constraints);
    if pool_opts.inactive_connection_ttl().is_zero() {
        // With the driver's default of zero, the pool keeps no more idle
        // connections than its minimum (0 here): every operation would open
        // and close a connection. Keep up to `max` idle ones instead, closing
        // those unused for this long.
        pool_opts = pool_opts.with_inactive_connection_ttl(IDLE_CONNECTION_TTL);
    }
    let pool_opts = pool_opts
        // The store leaves no session state behind (no transactions, no
        // variables), so the reset round trip on every return to the pool
        // would buy nothing and would empty the prepared-statement cache.
        .with_reset_connection(false);
    Ok(Pool::new(OptsBuilder::from_opts(opts).pool_opts(pool_opts)))
}

impl fmt::Debug for MysqlStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Missing => "missing",
            Source::Url(Ok(_)) | Source::Config(_) => "config",
            Source::Url(Err(_)) => "invalid URL",
            Source::Pool(_) => "pool",
            #[cfg(feature = "sqlx")]
            Source::Sqlx(_) => "sqlx pool",
        };
        // No connection detail but the TLS mode: the driver's `Debug` of its
        // options prints the password.
        let ssl_mode = match &self.source {
            Source::Url(Ok((_, url_tls))) => url_tls.mode.map(tls::SslMode::as_str),
            _ => None,
        };
        f.debug_struct("MysqlStoreBuilder")
            .field("source", &source)
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("ssl_mode", &ssl_mode)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}
