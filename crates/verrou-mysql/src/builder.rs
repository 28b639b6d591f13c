//! `MysqlStoreBuilder`: where the connections come from, the table, the
//! limits.

use std::fmt;
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
}

enum Source {
    Missing,
    /// Parsed when given, reported by `build` (the URL itself is not kept: it
    /// may hold a password).
    Url(Result<Opts, String>),
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
        }
    }

    /// Connects with a URL as [`mysql_async::Opts::from_url`] parses it:
    /// `mysql://user:password@host:3306/db`. The URL must name a database.
    ///
    /// The driver is built without TLS support; for TLS, build a
    /// `mysql_async` with a TLS feature enabled, make a pool and use
    /// [`pool`](Self::pool).
    pub fn url(mut self, url: &str) -> Self {
        self.source = Source::Url(Opts::from_url(url).map_err(|e| e.to_string()));
        self
    }

    /// Connects with the driver's own settings: an [`Opts`] or an
    /// [`OptsBuilder`] (anything that converts into [`Opts`]). Its pool
    /// constraints are replaced by [`max_connections`](Self::max_connections).
    pub fn config(mut self, config: impl Into<Opts>) -> Self {
        self.source = Source::Config(Box::new(config.into()));
        self
    }

    /// Uses an existing pool: its size, TLS, connection reset and found-rows
    /// settings are yours (the statements do not depend on them), and
    /// [`max_connections`](Self::max_connections) does not change it.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.source = Source::Pool(pool);
        self
    }

    /// Uses an existing sqlx pool (feature `sqlx`): its size, TLS and
    /// session settings are yours (the statements do not depend on them),
    /// and [`max_connections`](Self::max_connections) does not change it.
    /// `MysqlStore::from_sqlx` starts a builder with it.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(mut self, pool: sqlx::MySqlPool) -> Self {
        self.source = Source::Sqlx(pool);
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
    ///   database, a missing table with `create_table(false)`, or a table
    ///   that cannot hold the locks (its columns, nullability or unique
    ///   indexes do not match the schema, or the server refuses a statement
    ///   on it; the message names each).
    /// - [`LockError::Store`]: the server could not be reached in time,
    ///   refused the login, or failed.
    pub async fn build(self) -> Result<MysqlStore, LockError> {
        let table = TableName::new(STORE, &self.table_name)?;
        at_least_a_millisecond("connect_timeout", Some(self.connect_timeout))?;
        at_least_a_millisecond("operation_timeout", self.operation_timeout)?;
        let native = |pool| NativePool::new(pool, self.connect_timeout, self.operation_timeout);
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
            Source::Url(Ok(opts)) => Backend::Native(native(own_pool(opts, self.max_connections)?)),
            Source::Config(opts) => Backend::Native(native(own_pool(*opts, self.max_connections)?)),
            Source::Pool(pool) => Backend::Native(native(pool)),
            #[cfg(feature = "sqlx")]
            Source::Sqlx(pool) => Backend::Sqlx(SqlxPool::new(
                pool,
                self.connect_timeout,
                self.operation_timeout,
            )),
        };
        let sql = Statements::new(&table);
        // A user's pool may have no timeouts of its own: bound the first
        // connection here so that `build` never hangs on a dead server.
        let mut session = within(
            STORE,
            Some(self.connect_timeout),
            "connecting",
            backend.setup_session(),
        )
        .await?;
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
        // No connection detail at all: the driver's `Debug` of its options
        // prints the password.
        f.debug_struct("MysqlStoreBuilder")
            .field("source", &source)
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}
