//! Where the statements run: the store's own rusqlite connections, or (with
//! the `sqlx` feature) an application's sqlx pool.
//!
//! This is the whole seam between the store and a driver. The store decides
//! what to run (the text in `schema::Statements`, the same for both) and what
//! the answer means; a backend only runs one statement and hands back the
//! part of the answer the store reads: how many rows it changed, or the
//! first column of its first row.

use std::sync::Arc;

use rusqlite::types::ToSqlOutput;
use rusqlite::{OptionalExtension, ToSql, params_from_iter};
use verrou_core::LockError;

use crate::pool::{Pool, Source};
#[cfg(feature = "sqlx")]
use crate::sqlx_pool::SqlxPool;

/// One statement parameter, in order (`?1`, `?2`, ...): keys and owners are
/// text, TTLs and limits integers (`None` is SQL `NULL`).
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Int(Option<i64>),
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Text(text) => text.to_sql(),
            Param::Int(int) => int.to_sql(),
        }
    }
}

/// The connections a store runs its statements on.
pub(crate) enum Backend {
    /// The store's own connections, each used on a blocking thread.
    Native(Arc<Pool>),
    /// The application's sqlx pool.
    #[cfg(feature = "sqlx")]
    Sqlx(SqlxPool),
}

impl Backend {
    /// Runs `sql`; returns how many rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: &Arc<str>,
        params: Vec<Param>,
    ) -> Result<u64, LockError> {
        match self {
            Backend::Native(pool) => {
                let sql = sql.clone();
                let changed = pool
                    .run(move |conn| conn.prepare_cached(&sql)?.execute(params_from_iter(params)))
                    .await?;
                Ok(changed as u64)
            }
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.execute(sql, params).await,
        }
    }

    /// Runs `sql`; returns the first column of its first row as an integer,
    /// `None` when it returned no row.
    pub(crate) async fn first_int(
        &self,
        sql: &Arc<str>,
        params: Vec<Param>,
    ) -> Result<Option<i64>, LockError> {
        match self {
            Backend::Native(pool) => {
                let sql = sql.clone();
                pool.run(move |conn| {
                    conn.prepare_cached(&sql)?
                        .query_row(params_from_iter(params), |row| row.get(0))
                        .optional()
                })
                .await
            }
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => pool.first_int(sql, params).await,
        }
    }

    /// For `Debug`: where the connections come from (never a password:
    /// SQLite has none).
    pub(crate) fn describe(&self, f: &mut std::fmt::DebugStruct<'_, '_>) {
        match self {
            Backend::Native(pool) => match pool.source() {
                Source::File { path, .. } => f.field("path", path),
                Source::Single { description } => f.field("connection", description),
            },
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(pool) => f.field("sqlx_pool", pool),
        };
    }
}
