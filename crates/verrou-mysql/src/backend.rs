//! Where the statements run: a `mysql_async` pool (the store's own or the
//! application's), or, with the `sqlx` feature, the application's sqlx pool.
//!
//! This is the whole seam between the store and a driver. The SQL text lives
//! once, in `statements` and `schema`; the store decides what to run and what
//! the answer means. A backend runs one statement under the operation
//! timeout, kills it on the server when it is abandoned, runs it again when
//! InnoDB rolled it back as a deadlock victim, and reports what the server
//! said. At `build`, a [`Setup`] session answers `schema`'s questions.

use verrou_core::{LockError, async_trait};

use crate::native::NativePool;
use crate::schema::{Column, IndexPart};
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;

/// How many times a statement InnoDB rolled back as a deadlock victim is run
/// again before the error reaches the caller.
pub(crate) const DEADLOCK_ATTEMPTS: u32 = 5;

/// One statement parameter, in order: keys and owners are bytes (the
/// columns are `VARBINARY`), TTLs signed integers (`None` is SQL `NULL`),
/// limits unsigned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Bytes(&'a [u8]),
    Int(Option<i64>),
    UInt(u64),
}

/// Which part of the answer the store reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Whether the statement returned a row (`exists`).
    Row,
    /// The OK packet: affected rows and last insert id (every write).
    Status,
}

/// What the server said about one statement.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// The statement returned at least one row.
    pub(crate) row: bool,
    pub(crate) affected_rows: u64,
    /// 0 when the statement did not call `LAST_INSERT_ID(expr)`.
    pub(crate) last_insert_id: u64,
}

/// The connections a store runs its statements on.
pub(crate) enum Backend {
    /// A `mysql_async` pool, the store's own or the application's.
    Native(NativePool),
    /// The application's sqlx pool.
    #[cfg(feature = "sqlx")]
    Sqlx(SqlxPool),
}

impl Backend {
    /// Runs one statement; see the module documentation.
    pub(crate) async fn run(
        &self,
        sql: &str,
        params: &[Param<'_>],
        read: Read,
    ) -> Result<Reply, LockError> {
        match self {
            Backend::Native(pool) => pool.run(sql, params).await,
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.run(sql, params, read).await,
        }
        .map(|reply| match read {
            // Only what was asked for, whatever the driver filled in.
            Read::Row => Reply {
                row: reply.row,
                ..Reply::default()
            },
            Read::Status => Reply {
                row: false,
                ..reply
            },
        })
    }

    /// A connection for `build`'s set-up, unbounded (the caller bounds it).
    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        match self {
            Backend::Native(pool) => pool.setup_session().await,
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.setup_session().await,
        }
    }
}

/// One connection during `build`: the questions `schema` asks, each with
/// the SQL text it owns. Every method's error is the connection failing,
/// except [`prepare`](Setup::prepare)'s inner one: the server's message
/// refusing the statement.
#[async_trait]
pub(crate) trait Setup: Send {
    /// The connection's default database (`SELECT DATABASE()`).
    async fn database(&mut self) -> Result<Option<String>, LockError>;

    /// `schema::COLUMNS`, with the table name bound twice.
    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError>;

    /// `schema::UNIQUE_INDEX_PARTS`, with the table name bound twice.
    async fn unique_index_parts(
        &mut self,
        sql: &str,
        table: &str,
    ) -> Result<Vec<IndexPart>, LockError>;

    /// Runs `sql` (no parameters, no rows).
    async fn execute(&mut self, sql: &str) -> Result<(), LockError>;

    /// Prepares `sql`; `Ok(Err(message))` when the server refuses it.
    async fn prepare(&mut self, sql: &str) -> Result<Result<(), String>, LockError>;
}
