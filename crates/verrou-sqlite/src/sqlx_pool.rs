//! A store on an application's sqlx pool (feature `sqlx`): the statements
//! of `schema` run on the pool's connections, as the application configured
//! them (busy timeout, journal mode, size).
//!
//! Linking works because rusqlite and sqlx's SQLite driver use the same
//! `libsqlite3-sys`: one SQLite library in the process, which also lets the
//! build-time table check read the pool's database with rusqlite.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use sqlx::error::DatabaseError;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqlitePool};
use sqlx::{AssertSqlSafe, Executor, Row, SqlSafeStr};
use verrou_core::LockError;
use verrou_core::store::TableName;

use crate::backend::Param;
use crate::builder::retry_while_busy;
use crate::pool::FileIdentity;
use crate::schema::{self, Statements};
use crate::shape;

const STORE: &str = "sqlite";

/// The file behind the pool's `main` database, as SQLite itself reports it:
/// an absolute path, or `""` for an in-memory database.
const MAIN_FILE: &str = "SELECT file FROM pragma_database_list WHERE name = 'main'";

/// SQLite's primary result codes for "someone else holds the lock"; sqlx
/// reports extended codes, whose low byte is the primary one.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// The application's pool and the file its database lives in.
pub(crate) struct SqlxPool {
    pool: SqlitePool,
    /// `None` for an in-memory database.
    file: Option<WatchedFile>,
}

/// The database file and which file it was when the store was built.
struct WatchedFile {
    path: PathBuf,
    identity: FileIdentity,
}

impl SqlxPool {
    /// Creates the table if asked to and checks it, as `build` does on the
    /// store's own connections (see `builder::set_up`), except that the
    /// database is used as the pool configured it: no switch to WAL mode.
    ///
    /// The shape check needs `sqlite3_table_column_metadata`, which sqlx
    /// does not expose; it runs on a read-only rusqlite connection to the
    /// same file, or, for an in-memory database (which no other connection
    /// can open), on a private copy of it.
    pub(crate) async fn set_up(
        pool: SqlitePool,
        table: &TableName,
        sql: &Statements,
        create: bool,
        busy_timeout: Option<Duration>,
    ) -> Result<Self, LockError> {
        // A deadline beyond the clock's range is no deadline.
        let deadline = busy_timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let main: String = while_busy(deadline, || sqlx::query_scalar(MAIN_FILE).fetch_one(&pool))
            .await
            .map_err(store_error)?;
        if create {
            let create = schema::create_table(table);
            while_busy(deadline, || {
                sqlx::query(AssertSqlSafe(create.as_str())).execute(&pool)
            })
            .await
            .map_err(store_error)?;
        }
        let exists: i64 = while_busy(deadline, || {
            sqlx::query_scalar(schema::TABLE_EXISTS)
                .bind(table.as_str())
                .fetch_one(&pool)
        })
        .await
        .map_err(store_error)?;
        if exists == 0 {
            return Err(schema::missing_table(table));
        }
        let file = (!main.is_empty()).then(|| PathBuf::from(main));
        check_shape(&pool, file.as_deref(), table, busy_timeout).await?;
        for statement in sql.all() {
            let prepared = while_busy(deadline, || {
                (&pool).prepare(AssertSqlSafe(statement).into_sql_str())
            })
            .await;
            if let Err(refusal) = prepared {
                return Err(match refusal {
                    sqlx::Error::Database(refusal) => schema::does_not_fit(table, refusal),
                    other => store_error(other),
                });
            }
        }
        let file = file
            .map(|path| FileIdentity::of(&path).map(|identity| WatchedFile { path, identity }))
            .transpose()?;
        Ok(SqlxPool { pool, file })
    }

    /// Runs `sql`; returns how many rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: &Arc<str>,
        params: Vec<Param>,
    ) -> Result<u64, LockError> {
        self.check_file()?;
        let done = statement(sql, params)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    /// Runs `sql`; returns the first column of its first row, if any.
    pub(crate) async fn first_int(
        &self,
        sql: &Arc<str>,
        params: Vec<Param>,
    ) -> Result<Option<i64>, LockError> {
        self.check_file()?;
        let row = statement(sql, params)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(store_error)
    }

    /// Refuses to run on a database file that was deleted or replaced since
    /// the store was built.
    ///
    /// The store's own connections reopen a replaced file (see `pool`); the
    /// pool's cannot be told to, and some of them would go on locking in the
    /// old file while new ones lock in the new file, where other processes
    /// do. Failing every call is the safe answer: build a new pool.
    fn check_file(&self) -> Result<(), LockError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if FileIdentity::of(&file.path)? != file.identity {
            return Err(LockError::store(
                STORE,
                format!(
                    "database file {} was replaced since the store was built; the pool's \
                     connections may still use the old one (build a new pool and store)",
                    file.path.display()
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SqlxPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.path.display()),
            None => f.write_str("in-memory"),
        }
    }
}

/// `sql` with `params` bound, in order.
fn statement(sql: &Arc<str>, params: Vec<Param>) -> Query<'static, Sqlite, SqliteArguments> {
    params.into_iter().fold(
        sqlx::query(AssertSqlSafe(sql.clone())),
        |query, param| match param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        },
    )
}

/// Checks the table's shape (see `shape`) with rusqlite, which can read a
/// column's collation: on the database file, or on a copy of an in-memory
/// database.
async fn check_shape(
    pool: &SqlitePool,
    file: Option<&Path>,
    table: &TableName,
    busy_timeout: Option<Duration>,
) -> Result<(), LockError> {
    let copy = match file {
        Some(_) => None,
        None => {
            let mut conn = pool.acquire().await.map_err(store_error)?;
            Some(conn.serialize(None).await.map_err(store_error)?)
        }
    };
    let file = file.map(Path::to_owned);
    let table = table.clone();
    tokio::task::spawn_blocking(move || {
        let store_error = |e| LockError::store(STORE, e);
        let conn = match (file, copy) {
            (Some(path), _) => {
                // Read-only and a plain path: this connection only reads the
                // schema, of exactly the file the pool's connections opened.
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(store_error)?;
                if let Some(timeout) = busy_timeout {
                    conn.busy_timeout(timeout).map_err(store_error)?;
                }
                conn
            }
            (None, copy) => {
                let bytes = copy.as_ref().map_or(&[][..], |copy| copy.as_ref());
                let mut conn = Connection::open_in_memory().map_err(store_error)?;
                conn.deserialize_read_exact("main", bytes, bytes.len(), true)
                    .map_err(store_error)?;
                conn
            }
        };
        retry_while_busy(busy_timeout, || shape::check_table(&conn, &table)).map_err(store_error)?
    })
    .await
    .map_err(|join| LockError::store(STORE, join))?
}

/// Runs `step` again while SQLite answers BUSY or LOCKED, until `deadline`
/// (`None`: no limit), as `builder::retry_while_busy` does for rusqlite: the
/// pool's busy timeout covers most waits, but not all (a schema change by
/// another process, a WAL file being recovered).
async fn while_busy<T, F, Fut>(deadline: Option<Instant>, mut step: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    loop {
        match step().await {
            Err(sqlx::Error::Database(ref e))
                if is_busy(e.as_ref())
                    && deadline.is_none_or(|deadline| Instant::now() < deadline) =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            outcome => return outcome,
        }
    }
}

fn is_busy(error: &dyn DatabaseError) -> bool {
    let code = error.code().and_then(|code| code.parse::<i64>().ok());
    code.is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

fn store_error(error: sqlx::Error) -> LockError {
    LockError::store(STORE, error)
}
