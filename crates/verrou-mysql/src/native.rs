//! The statements on a `mysql_async` pool: the store's own, or one the
//! application passed to `from_pool`.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Pool, Value};
use verrou_core::store::within;
use verrou_core::{LockError, async_trait};

use crate::backend::{DEADLOCK_ATTEMPTS, Param, Reply, Setup};
use crate::cancel::{KillOnDrop, Killer};
use crate::error::{STORE, is_deadlock, store_error};
use crate::schema::{Column, IndexPart};

/// A `mysql_async` pool and the store's timeouts.
pub(crate) struct NativePool {
    pool: Pool,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
}

impl NativePool {
    pub(crate) fn new(
        pool: Pool,
        connect_timeout: Duration,
        operation_timeout: Option<Duration>,
    ) -> Self {
        NativePool {
            pool,
            connect_timeout,
            operation_timeout,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs one prepared statement on a pooled connection, bounded by the
    /// operation timeout.
    ///
    /// A statement abandoned before its answer (timeout, or the caller
    /// dropping the future) is killed on the server. The driver takes a
    /// connection that failed mid-statement (killed by the server, a restart,
    /// an I/O error, an abandoned statement) out of the pool, and checks that
    /// an idle connection's socket is still open before handing it out, so
    /// the next call after such a failure gets a fresh connection.
    pub(crate) async fn run(&self, sql: &str, params: &[Param<'_>]) -> Result<Reply, LockError> {
        within(STORE, self.operation_timeout, "mysql operation", async {
            let mut conn = within(
                STORE,
                Some(self.connect_timeout),
                "getting a connection",
                async { self.pool.get_conn().await.map_err(store_error) },
            )
            .await?;
            let params = Params::Positional(params.iter().map(|param| value(*param)).collect());
            let mut attempt = 1;
            let running = KillOnDrop::new(
                Killer::Native(&self.pool),
                u64::from(conn.id()),
                self.connect_timeout,
            );
            let outcome = loop {
                match conn.exec_first::<Value, _, _>(sql, params.clone()).await {
                    Ok(row) => break Ok(row.is_some()),
                    Err(e) if is_deadlock(&e) && attempt < DEADLOCK_ATTEMPTS => attempt += 1,
                    Err(e) => break Err(store_error(e)),
                }
            };
            running.disarm();
            Ok(Reply {
                row: outcome?,
                affected_rows: conn.affected_rows(),
                last_insert_id: conn.last_insert_id().unwrap_or(0),
            })
        })
        .await
    }

    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        Ok(Box::new(self.pool.get_conn().await.map_err(store_error)?))
    }
}

fn value(param: Param<'_>) -> Value {
    match param {
        Param::Bytes(bytes) => Value::Bytes(bytes.to_vec()),
        Param::Int(int) => int.map_or(Value::NULL, Value::Int),
        Param::UInt(uint) => Value::UInt(uint),
    }
}

#[async_trait]
impl Setup for Conn {
    async fn database(&mut self) -> Result<Option<String>, LockError> {
        let database: Option<Option<String>> = self
            .query_first("SELECT DATABASE()")
            .await
            .map_err(store_error)?;
        Ok(database.flatten())
    }

    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError> {
        let rows: Vec<(String, String, String, Option<u64>, String, String)> =
            self.exec(sql, (table, table)).await.map_err(store_error)?;
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
        let rows: Vec<(String, Option<String>, Option<u64>)> =
            self.exec(sql, (table, table)).await.map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(index, column, prefix)| IndexPart::new(index, column, prefix))
            .collect())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), LockError> {
        self.query_drop(sql).await.map_err(store_error)
    }

    async fn prepare(&mut self, sql: &str) -> Result<Result<(), String>, LockError> {
        match self.prep(sql).await {
            Ok(_) => Ok(Ok(())),
            Err(mysql_async::Error::Server(refused)) => Ok(Err(refused.message)),
            Err(other) => Err(store_error(other)),
        }
    }
}
