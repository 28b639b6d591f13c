//! The statements on an application's sqlx pool (feature `sqlx`).
//!
//! The same text as on the store's own pool, with the same guarantees:
//! one statement per operation under the operation timeout, and a statement
//! that runs out of time is cancelled on the server so that it cannot take
//! effect after the caller's clean-up. sqlx keeps each session's cancel key
//! to itself, so the store asks the server which session it got
//! (`pg_backend_pid()`, one extra round trip per operation while an
//! operation timeout is set) and cancels with `pg_cancel_backend` from a
//! separate session opened with the pool's connect options.

use std::fmt;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{
    PgArguments, PgConnection, PgDatabaseError, PgPool, PgRow, PgSeverity, Postgres,
};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, Decode, Executor, Row, SqlSafeStr, Type};
use verrou_core::store::within;
use verrou_core::{LockError, async_trait};

use crate::backend::{Param, Refusal, Setup};
use crate::error::STORE;
use crate::shape::{Column, UniqueIndex};

/// How long a timed-out call waits for its statement's cancellation.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// The application's pool and the store's operation timeout.
pub(crate) struct SqlxPool {
    pool: PgPool,
    operation_timeout: Option<Duration>,
}

impl SqlxPool {
    pub(crate) fn new(pool: PgPool, operation_timeout: Option<Duration>) -> Self {
        SqlxPool {
            pool,
            operation_timeout,
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs one statement on a pooled connection, bounded by the operation
    /// timeout; see the module documentation for the cancellation.
    ///
    /// A connection that failed in a way that may have broken it, or that
    /// ran out of time mid-statement, is closed instead of being returned
    /// to the pool.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<PgRow>, LockError> {
        // Out here, not in the bounded future, so that a call that runs out
        // of time can still cancel its statement and close the connection
        // (dropping it would return it to the pool).
        let mut checked_out: Option<PoolConnection<Postgres>> = None;
        let mut session: Option<i32> = None;
        // The bounded future's own errors are failing to get a connection or
        // its session id; the statement's outcome is passed through as it is.
        let outcome = within(STORE, self.operation_timeout, "operation", async {
            let conn = checked_out.insert(self.pool.acquire().await.map_err(store_error)?);
            if self.operation_timeout.is_some() {
                let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut **conn)
                    .await
                    .map_err(store_error)?;
                session = Some(pid);
            }
            Ok(statement(sql, params).fetch_all(&mut **conn).await)
        })
        .await;
        match outcome {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => {
                if !connection_is_reusable(&error)
                    && let Some(conn) = checked_out
                {
                    close(conn);
                }
                Err(store_error(error))
            }
            Err(error) => {
                if let Some(conn) = checked_out {
                    // Cancel first, while this connection is still open: its
                    // session id cannot have passed to another session.
                    if let Some(pid) = session {
                        self.cancel(pid).await;
                    }
                    close(conn);
                }
                Err(error)
            }
        }
    }

    /// Runs one statement; returns the first column of its first row.
    pub(crate) async fn first<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<T>, LockError>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        let rows = self.query(sql, params).await?;
        rows.first()
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(store_error)
    }

    /// Cancels whatever session `pid` is running, from a session of its
    /// own, best effort within [`CANCEL_WAIT`].
    ///
    /// Closing the socket does not stop a statement: the server only
    /// notices when it next talks to the client, and meanwhile the statement
    /// (often waiting on a row lock) could still take effect after the
    /// caller's clean-up. A session of its own rather than one of the
    /// pool's: the pool may be exhausted, which is no reason to let the
    /// statement run on.
    async fn cancel(&self, pid: i32) {
        let options = self.pool.connect_options();
        let cancelled = tokio::time::timeout(CANCEL_WAIT, async {
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(pid)
                .execute(&mut conn)
                .await?;
            conn.close().await
        })
        .await;
        if !matches!(cancelled, Ok(Ok(()))) {
            tracing::debug!(pid, "could not cancel a timed-out statement");
        }
    }

    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        Ok(Box::new(self.pool.acquire().await.map_err(store_error)?))
    }

    pub(crate) fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        f.field("connections", &self.pool.size()).field(
            "max_connections",
            &self.pool.options().get_max_connections(),
        );
    }
}

/// `sql` with `params` bound, in order.
fn statement<'q>(sql: &str, params: &[Param<'q>]) -> Query<'q, Postgres, PgArguments> {
    params.iter().fold(
        sqlx::query(AssertSqlSafe(sql)),
        |query, param| match *param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
        },
    )
}

/// Closes a connection for good instead of returning it to the pool, which
/// opens a fresh one when it needs one.
fn close(conn: PoolConnection<Postgres>) {
    drop(conn.detach());
}

/// Whether the connection that produced `error` may be reused: as for the
/// store's own connections (see `error::connection_is_reusable`), only after
/// an ordinary statement error (severity `ERROR`) other than "cached plan
/// must not change result type" (`0A000`, after the table was recreated
/// under a statement this connection has prepared).
fn connection_is_reusable(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    error
        .try_downcast_ref::<PgDatabaseError>()
        .is_some_and(|error| error.severity() == PgSeverity::Error && error.code() != "0A000")
}

fn store_error(error: sqlx::Error) -> LockError {
    LockError::store(STORE, error)
}

#[async_trait]
impl Setup for PoolConnection<Postgres> {
    async fn query_bool(&mut self, sql: &str, text: &str) -> Result<bool, LockError> {
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(text)
            .fetch_one(&mut **self)
            .await
            .map_err(store_error)
    }

    async fn batch(&mut self, batch: &str) -> Result<Result<(), Refusal>, LockError> {
        // `raw_sql` sends one simple query, as the store's own driver does.
        refused_or_failed(
            sqlx::raw_sql(AssertSqlSafe(batch))
                .execute(&mut **self)
                .await,
        )
    }

    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError> {
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(table)
            .fetch_all(&mut **self)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(Column {
                    name: row.try_get(0)?,
                    type_oid: row.try_get::<sqlx::postgres::types::Oid, _>(1)?.0,
                    type_name: row.try_get(2)?,
                    typmod: row.try_get(3)?,
                    not_null: row.try_get(4)?,
                    collation: row.try_get(5)?,
                    deterministic: row.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    async fn unique_indexes(
        &mut self,
        sql: &str,
        table: &str,
    ) -> Result<Vec<UniqueIndex>, LockError> {
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(table)
            .fetch_all(&mut **self)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(UniqueIndex {
                    name: row.try_get(0)?,
                    arbiter: row.try_get(1)?,
                    covers_key: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    async fn prepare(&mut self, sql: &str) -> Result<Result<(), Refusal>, LockError> {
        let prepared = (&mut **self)
            .prepare(AssertSqlSafe(sql).into_sql_str())
            .await;
        refused_or_failed(prepared.map(drop))
    }
}

/// The server refusing a statement is an inner [`Refusal`]; anything else
/// (a lost connection) is the outer error.
fn refused_or_failed<T>(outcome: Result<T, sqlx::Error>) -> Result<Result<(), Refusal>, LockError> {
    match outcome {
        Ok(_) => Ok(Ok(())),
        Err(sqlx::Error::Database(refused)) => {
            match refused.try_downcast_ref::<PgDatabaseError>() {
                Some(refused) => Ok(Err(Refusal {
                    code: refused.code().to_owned(),
                    message: refused.message().to_owned(),
                    detail: refused.detail().map(str::to_owned),
                })),
                None => Err(store_error(sqlx::Error::Database(refused))),
            }
        }
        Err(other) => Err(store_error(other)),
    }
}
