//! `SqliteStoreBuilder`: where the database is, which table, how to wait.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use verrou_core::LockError;
use verrou_core::store::TableName;

use crate::backend::Backend;
use crate::pool::{Pool, Source, open_file};
use crate::schema::{self, Statements};
use crate::shape;
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;
use crate::store::SqliteStore;

/// Configures a [`SqliteStore`]; get one from [`SqliteStore::builder`] or
/// [`SqliteStore::from_connection`], finish with [`build`](Self::build).
///
/// The names are the ones every verrou store uses (see the builder
/// vocabulary in the `verrou-conformance` README), with SQLite's own where
/// it has no server: [`path`](Self::path) instead of a URL, and
/// [`busy_timeout`](Self::busy_timeout) instead of connect and operation
/// timeouts.
///
/// | option | default |
/// |---|---|
/// | [`path`](Self::path) / [`in_memory`](Self::in_memory) / [`connection`](Self::connection) / `sqlx_pool` (feature `sqlx`) | required, one of them |
/// | [`table_name`](Self::table_name) | `verrou` |
/// | [`create_table`](Self::create_table) | `true` |
/// | [`busy_timeout`](Self::busy_timeout) | 5 s |
/// | [`max_connections`](Self::max_connections) | 4 (files only) |
pub struct SqliteStoreBuilder {
    database: Option<Connections>,
    table_name: String,
    create_table: bool,
    busy_timeout: Duration,
    max_connections: usize,
}

/// Where the store's statements will run.
enum Connections {
    /// Connections the store opens, or the caller's rusqlite connection.
    Own(Database),
    /// The application's sqlx pool.
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::SqlitePool),
}

enum Database {
    Path(PathBuf),
    Memory,
    Connection(Connection),
}

impl Default for SqliteStoreBuilder {
    fn default() -> Self {
        SqliteStoreBuilder {
            database: None,
            table_name: "verrou".to_owned(),
            create_table: true,
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
        }
    }
}

impl SqliteStoreBuilder {
    /// The database file, created if it does not exist. Every process that
    /// opens the same file shares the same locks. The file must be on a local
    /// filesystem (SQLite's locking does not work over NFS or SMB). A plain
    /// path: `file:` URIs are not interpreted, and `""` or `":memory:"` are
    /// refused (see [`in_memory`](Self::in_memory)).
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.database = Some(Connections::Own(Database::Path(path.as_ref().to_owned())));
        self
    }

    /// A private in-memory database: locks shared only by the clones of this
    /// store, in this process. Useful in tests; operations run one at a time.
    pub fn in_memory(mut self) -> Self {
        self.database = Some(Connections::Own(Database::Memory));
        self
    }

    /// Uses an existing connection, as configured by the caller (set its
    /// `busy_timeout` if other connections write to the same database: the
    /// builder's [`busy_timeout`](Self::busy_timeout) only bounds the set-up
    /// in [`build`](Self::build)). Operations then run one at a time on it;
    /// prefer [`path`](Self::path) for a file shared by many tasks or
    /// processes. [`SqliteStore::from_connection`] starts a builder with it.
    pub fn connection(mut self, connection: Connection) -> Self {
        self.database = Some(Connections::Own(Database::Connection(connection)));
        self
    }

    /// Runs the store on your sqlx pool (feature `sqlx`), as configured by
    /// you: its busy timeout, journal mode (set WAL if other processes share
    /// the file), size and acquire timeout. The builder's
    /// [`busy_timeout`](Self::busy_timeout) only bounds the retries of the
    /// set-up in [`build`](Self::build), and
    /// [`max_connections`](Self::max_connections) does not apply.
    /// `SqliteStore::from_sqlx` starts a builder with it.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(mut self, pool: sqlx::SqlitePool) -> Self {
        self.database = Some(Connections::Sqlx(pool));
        self
    }

    /// The table holding the locks (default `verrou`). It must match
    /// `[A-Za-z_][A-Za-z0-9_]{0,62}`; anything else fails `build` with
    /// [`LockError::InvalidConfig`].
    pub fn table_name(mut self, table_name: impl Into<String>) -> Self {
        self.table_name = table_name.into();
        self
    }

    /// Whether `build` creates the table if it is missing (default `true`).
    /// With `false`, a missing table fails `build` with
    /// [`LockError::InvalidConfig`] naming the table.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// How long a statement waits for another connection's write to finish
    /// before failing with a `Store` error (default 5 s). Writes are single
    /// short statements, so contention clears in microseconds.
    ///
    /// This is SQLite's own setting, under SQLite's own name
    /// (`PRAGMA busy_timeout`), rather than the `operation_timeout` of the
    /// server stores: it bounds only the wait for the database's write lock.
    /// There is no network to hang on, and a statement is never cut off
    /// once it runs (it runs to its end on a blocking thread, even if the
    /// caller stops waiting), so there is nothing else to bound.
    ///
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`] (SQLite counts whole milliseconds, and a
    /// zero wait would fail every contended write at once). `Duration::MAX`,
    /// or anything beyond SQLite's own limit of 2^31 − 1 ms (about 24.8
    /// days), means no limit.
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// How many connections (and blocking threads) the store uses at most at
    /// once (default 4; `0` fails [`build`](Self::build) with
    /// [`LockError::InvalidConfig`]). Ignored for [`in_memory`](Self::in_memory)
    /// and [`connection`](Self::connection), which have one, and for a sqlx
    /// pool, which has its own size.
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Opens the database, switches a file to WAL mode, creates the table if
    /// asked to and checks that it can hold the store's locks (column
    /// affinities and collations, nullability, the unique index on the key;
    /// see the schema in the crate documentation).
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] for a bad table name, busy timeout or
    /// pool size, no database given, or a missing table or one that cannot
    /// hold the locks (the message names each column and what is wrong with
    /// it); [`LockError::Store`] if the database cannot be opened or set up.
    pub async fn build(self) -> Result<SqliteStore, LockError> {
        let table = TableName::new("sqlite", &self.table_name)?;
        let busy_timeout = busy_limit(self.busy_timeout)?;
        if self.max_connections == 0 {
            return Err(LockError::invalid_config(
                "sqlite",
                "max_connections must be at least 1",
            ));
        }
        let Some(connections) = self.database else {
            return Err(LockError::invalid_config(
                "sqlite",
                "no database given: call path, in_memory or connection on the builder",
            ));
        };
        let create = self.create_table;
        let sql = Statements::new(&table);
        // Without the `sqlx` feature, the only kind of connections.
        #[cfg_attr(not(feature = "sqlx"), allow(clippy::infallible_destructuring_match))]
        let database = match connections {
            Connections::Own(database) => database,
            #[cfg(feature = "sqlx")]
            Connections::Sqlx(pool) => {
                let pool = SqlxPool::set_up(pool, &table, &sql, create, busy_timeout).await?;
                return Ok(SqliteStore::new(Backend::Sqlx(pool), sql, table));
            }
        };
        if let Database::Path(path) = &database {
            // SQLite gives both a special meaning: a private database that
            // no other connection, let alone process, can see.
            if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
                return Err(LockError::invalid_config(
                    "sqlite",
                    format!(
                        "path {path:?} is not a database file; use in_memory() for a private database"
                    ),
                ));
            }
        }
        let max_connections = self.max_connections;
        tokio::task::spawn_blocking(move || {
            let (source, conn) = match database {
                Database::Path(path) => {
                    let conn = open_file(&path, busy_timeout, true)
                        .map_err(|e| LockError::store("sqlite", e))?;
                    // Later connections reopen the same file even if the
                    // process changes its working directory.
                    let path =
                        std::fs::canonicalize(&path).map_err(|e| LockError::store("sqlite", e))?;
                    (Source::File { path, busy_timeout }, conn)
                }
                Database::Memory => {
                    let conn =
                        Connection::open_in_memory().map_err(|e| LockError::store("sqlite", e))?;
                    (
                        Source::Single {
                            description: "in-memory",
                        },
                        conn,
                    )
                }
                Database::Connection(conn) => (
                    Source::Single {
                        description: "caller's",
                    },
                    conn,
                ),
            };
            set_up(&conn, &source, &table, &sql, create, busy_timeout)?;
            let pool = Pool::new(source, conn, max_connections)?;
            Ok(SqliteStore::new(
                Backend::Native(Arc::new(pool)),
                sql,
                table,
            ))
        })
        .await
        .map_err(|join| LockError::store("sqlite", join))?
    }
}

/// The busy timeout as SQLite can take it (see
/// [`SqliteStoreBuilder::busy_timeout`]), `None` for no limit: SQLite reads
/// a sub-millisecond wait as none at all, and rusqlite panics beyond
/// `i32::MAX` milliseconds.
fn busy_limit(timeout: Duration) -> Result<Option<Duration>, LockError> {
    const SQLITE_MAX: Duration = Duration::from_millis(i32::MAX as u64);
    if timeout < Duration::from_millis(1) {
        return Err(LockError::invalid_config(
            "sqlite",
            format!("busy_timeout must be at least 1ms, got {timeout:?}"),
        ));
    }
    Ok(Some(timeout).filter(|timeout| *timeout <= SQLITE_MAX))
}

/// WAL mode, the table, and a check of its shape.
fn set_up(
    conn: &Connection,
    source: &Source,
    table: &TableName,
    sql: &Statements,
    create: bool,
    busy_timeout: Option<Duration>,
) -> Result<(), LockError> {
    let store_error = |e| LockError::store("sqlite", e);
    if let Source::File { .. } = source {
        // WAL lets readers (`exists`) run while a writer commits, and is a
        // property of the file: set once, every later connection uses it.
        // Many processes opening a new file at once can see SQLITE_BUSY
        // while one of them converts it, so retry for the busy timeout.
        retry_while_busy(busy_timeout, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
                row.get::<_, String>(0)
            })
        })
        .map_err(store_error)?;
    }
    if create {
        retry_while_busy(busy_timeout, || {
            conn.execute_batch(&schema::create_table(table))
        })
        .map_err(store_error)?;
    }
    let exists: bool = retry_while_busy(busy_timeout, || {
        conn.query_row(schema::TABLE_EXISTS, [table.as_str()], |row| row.get(0))
    })
    .map_err(store_error)?;
    if !exists {
        return Err(schema::missing_table(table));
    }
    retry_while_busy(busy_timeout, || shape::check_table(conn, table)).map_err(store_error)??;
    // The shape check covers what we know can go wrong; preparing every
    // statement turns anything it missed into an error now rather than at
    // the first lock.
    for statement in sql.all() {
        if let Err(e) = retry_while_busy(busy_timeout, || conn.prepare(statement).map(drop)) {
            return Err(schema::does_not_fit(table, e));
        }
    }
    Ok(())
}

/// Runs `step` again while SQLite answers BUSY or LOCKED, up to `timeout`
/// (`None`: no limit).
pub(crate) fn retry_while_busy<T>(
    timeout: Option<Duration>,
    mut step: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    // A deadline beyond the clock's range is no deadline.
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    loop {
        match step() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && deadline.is_none_or(|deadline| Instant::now() < deadline) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            outcome => return outcome,
        }
    }
}

impl fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let database = match &self.database {
            None => "none".to_owned(),
            Some(Connections::Own(Database::Path(path))) => path.display().to_string(),
            Some(Connections::Own(Database::Memory)) => ":memory:".to_owned(),
            Some(Connections::Own(Database::Connection(_))) => "caller's connection".to_owned(),
            #[cfg(feature = "sqlx")]
            Some(Connections::Sqlx(_)) => "caller's sqlx pool".to_owned(),
        };
        f.debug_struct("SqliteStoreBuilder")
            .field("database", &database)
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("busy_timeout", &self.busy_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}
