//! Where the statements run: the store's `deadpool-postgres` pool (or the
//! application's), or, with the `sqlx` feature, the application's sqlx pool.
//!
//! This is the whole seam between the store and a driver. The SQL text lives
//! once, in `statements`, `schema` and `shape`; the store decides what to run
//! and what the answer means. A backend runs one statement under the
//! operation timeout, cancels it on the server when it runs out of time, and
//! hands back the part of the answer the store reads. At `build`, a
//! [`Setup`] session answers the few catalog questions of `schema` and
//! `shape`.

use std::error::Error;
use std::fmt;

use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type};
use verrou_core::{LockError, async_trait};

use crate::native::NativePool;
use crate::shape::{Column, UniqueIndex};
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;

/// One statement parameter, in order (`$1`, `$2`, ...): keys and owners are
/// text, TTLs and limits integers (`None` is SQL `NULL`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    Int(Option<i64>),
}

/// Each variant is checked against the parameter's type as its own type
/// would be (`&str` for text, `Option<i64>` for integers).
impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Text(text) => text.to_sql(ty, out),
            Param::Int(int) => int.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty) || <Option<i64> as ToSql>::accepts(ty)
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Text(text) => text.to_sql_checked(ty, out),
            Param::Int(int) => int.to_sql_checked(ty, out),
        }
    }
}

/// The connections a store runs its statements on.
pub(crate) enum Backend {
    /// A `deadpool-postgres` pool, the store's own or the application's.
    Native(NativePool),
    /// The application's sqlx pool.
    #[cfg(feature = "sqlx")]
    Sqlx(SqlxPool),
}

impl Backend {
    /// Runs `sql`; returns how many rows it returned.
    pub(crate) async fn rows(&self, sql: &str, params: &[Param<'_>]) -> Result<usize, LockError> {
        match self {
            Backend::Native(pool) => Ok(pool.query(sql, params).await?.len()),
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => Ok(pool.query(sql, params).await?.len()),
        }
    }

    /// Runs `sql`; returns the first column of its first row as a `bigint`,
    /// `None` when it returned no row.
    pub(crate) async fn first_int(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<i64>, LockError> {
        match self {
            Backend::Native(pool) => pool.first(sql, params).await,
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.first(sql, params).await,
        }
    }

    /// Runs `sql`; returns the first column of its first row as a
    /// `boolean`, `None` when it returned no row.
    pub(crate) async fn first_bool(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<bool>, LockError> {
        match self {
            Backend::Native(pool) => pool.first(sql, params).await,
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.first(sql, params).await,
        }
    }

    /// A connection for `build`'s set-up, unbounded (the caller bounds it).
    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        match self {
            Backend::Native(pool) => pool.setup_session().await,
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.setup_session().await,
        }
    }

    /// For `Debug`: the pool's size, never its settings (they can hold a
    /// password).
    pub(crate) fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        match self {
            Backend::Native(pool) => pool.describe(f),
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.describe(f),
        }
    }
}

/// The server refusing a statement at `build`, in terms both drivers give.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// The SQLSTATE, `42P07` say.
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) detail: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl Error for Refusal {}

/// One connection during `build`: the questions `schema` and `shape` ask,
/// each answered with the SQL text they own.
///
/// Every method's outer error is the connection failing ([`LockError::Store`]);
/// an inner [`Refusal`] is the server refusing the statement.
#[async_trait]
pub(crate) trait Setup: Send {
    /// Runs `sql` with one text parameter, `$1`, and reads the boolean it
    /// returns (`schema`'s "does the table exist").
    async fn query_bool(&mut self, sql: &str, text: &str) -> Result<bool, LockError>;

    /// Runs `batch`, several statements, as one simple query (one implicit
    /// transaction).
    async fn batch(&mut self, batch: &str) -> Result<Result<(), Refusal>, LockError>;

    /// `shape::COLUMNS` for `table` (quoted, as `to_regclass` reads it).
    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError>;

    /// `shape::UNIQUE_INDEXES` for `table` (quoted).
    async fn unique_indexes(
        &mut self,
        sql: &str,
        table: &str,
    ) -> Result<Vec<UniqueIndex>, LockError>;

    /// Prepares `sql` (and keeps it in the connection's statement cache).
    async fn prepare(&mut self, sql: &str) -> Result<Result<(), Refusal>, LockError>;
}
