//! The statements on an application's sqlx pool (feature `sqlx`).
//!
//! The same text as on the store's own pool, with the same guarantees: one
//! statement per operation under the operation timeout, deadlock victims run
//! again, and a statement abandoned half-way (timeout, or the caller dropping
//! the future) is killed on the server (see `cancel`). sqlx keeps each
//! connection's id to itself, so the store asks the server for it
//! (`CONNECTION_ID()`, one extra round trip per operation) before it runs
//! the statement.

use std::time::Duration;

use sqlx::mysql::{MySql, MySqlArguments, MySqlDatabaseError, MySqlPool};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Executor, SqlSafeStr};
use verrou_core::store::within;
use verrou_core::{LockError, async_trait};

use crate::backend::{DEADLOCK_ATTEMPTS, Param, Read, Reply, Setup};
use crate::cancel::{KillOnDrop, Killer};
use crate::error::{ER_LOCK_DEADLOCK, STORE};
use crate::schema::{Column, IndexPart};

/// The id `KILL` takes, as an unsigned integer whatever the server declares.
const CONNECTION_ID: &str = "SELECT CAST(CONNECTION_ID() AS UNSIGNED)";

/// The application's pool and the store's timeouts.
pub(crate) struct SqlxPool {
    pool: MySqlPool,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
}

impl SqlxPool {
    pub(crate) fn new(
        pool: MySqlPool,
        connect_timeout: Duration,
        operation_timeout: Option<Duration>,
    ) -> Self {
        SqlxPool {
            pool,
            connect_timeout,
            operation_timeout,
        }
    }

    pub(crate) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Runs one statement on a pooled connection, bounded by the operation
    /// timeout; see the module documentation. A connection left broken is
    /// closed by sqlx itself: it tests every connection it gets back.
    pub(crate) async fn run(
        &self,
        sql: &str,
        params: &[Param<'_>],
        read: Read,
    ) -> Result<Reply, LockError> {
        within(STORE, self.operation_timeout, "mysql operation", async {
            let mut conn = within(
                STORE,
                Some(self.connect_timeout),
                "getting a connection",
                async { self.pool.acquire().await.map_err(store_error) },
            )
            .await?;
            let id: u64 = sqlx::query_scalar(CONNECTION_ID)
                .fetch_one(&mut *conn)
                .await
                .map_err(store_error)?;
            let running = KillOnDrop::new(Killer::Sqlx(&self.pool), id, self.connect_timeout);
            let mut attempt = 1;
            let outcome = loop {
                match once(&mut conn, sql, params, read).await {
                    Ok(reply) => break Ok(reply),
                    Err(e) if is_deadlock(&e) && attempt < DEADLOCK_ATTEMPTS => attempt += 1,
                    Err(e) => break Err(store_error(e)),
                }
            };
            running.disarm();
            outcome
        })
        .await
    }

    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        Ok(Box::new(self.pool.acquire().await.map_err(store_error)?))
    }
}

/// One attempt: a row, or the OK packet.
async fn once(
    conn: &mut PoolConnection<MySql>,
    sql: &str,
    params: &[Param<'_>],
    read: Read,
) -> Result<Reply, sqlx::Error> {
    let query = statement(sql, params);
    Ok(match read {
        Read::Row => Reply {
            row: query.fetch_optional(&mut **conn).await?.is_some(),
            ..Reply::default()
        },
        Read::Status => {
            let done = query.execute(&mut **conn).await?;
            Reply {
                row: false,
                affected_rows: done.rows_affected(),
                last_insert_id: done.last_insert_id(),
            }
        }
    })
}

/// `sql` with `params` bound, in order.
fn statement<'q>(sql: &str, params: &[Param<'q>]) -> Query<'q, MySql, MySqlArguments> {
    params.iter().fold(
        sqlx::query(AssertSqlSafe(sql)),
        |query, param| match *param {
            Param::Bytes(bytes) => query.bind(bytes),
            Param::Int(int) => query.bind(int),
            Param::UInt(uint) => query.bind(uint),
        },
    )
}

/// See `error::is_deadlock`.
fn is_deadlock(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    error
        .try_downcast_ref::<MySqlDatabaseError>()
        .is_some_and(|error| error.number() == ER_LOCK_DEADLOCK)
}

fn store_error(error: sqlx::Error) -> LockError {
    LockError::store(STORE, error)
}

#[async_trait]
impl Setup for PoolConnection<MySql> {
    async fn database(&mut self) -> Result<Option<String>, LockError> {
        sqlx::query_scalar("SELECT DATABASE()")
            .fetch_one(&mut **self)
            .await
            .map_err(store_error)
    }

    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError> {
        let rows: Vec<(String, String, String, Option<u64>, String, String)> =
            sqlx::query_as(AssertSqlSafe(sql))
                .bind(table)
                .bind(table)
                .fetch_all(&mut **self)
                .await
                .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(
                |(name, data_type, column_type, octet_length, nullable, extra)| {
                    Column::new(
                        name,
                        data_type,
                        column_type,
                        octet_length,
                        &nullable,
                        &extra,
                    )
                },
            )
            .collect())
    }

    async fn unique_index_parts(
        &mut self,
        sql: &str,
        table: &str,
    ) -> Result<Vec<IndexPart>, LockError> {
        let rows: Vec<(String, Option<String>, Option<u64>)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(table)
            .bind(table)
            .fetch_all(&mut **self)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(index, column, prefix)| IndexPart::new(index, column, prefix))
            .collect())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), LockError> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut **self)
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn prepare(&mut self, sql: &str) -> Result<Result<(), String>, LockError> {
        match (&mut **self)
            .prepare(AssertSqlSafe(sql).into_sql_str())
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(sqlx::Error::Database(refused)) => Ok(Err(refused.message().to_owned())),
            Err(other) => Err(store_error(other)),
        }
    }
}
