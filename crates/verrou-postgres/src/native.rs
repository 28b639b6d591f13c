//! The statements on a `deadpool-postgres` pool of `tokio-postgres`
//! connections: the store's own pool, or one the application passed to
//! `from_pool`.

use std::fmt;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSqlOwned, ToSql};
use verrou_core::store::within;
use verrou_core::{LockError, async_trait};

use crate::backend::{Param, Refusal, Setup};
use crate::error::{STORE, connection_is_reusable, pool_error, store_error};
use crate::shape::{Column, UniqueIndex};
use crate::tls::MakeTls;

/// How long a timed-out call waits for its statement's cancel request.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// A `deadpool-postgres` pool and the store's operation timeout.
pub(crate) struct NativePool {
    pool: Pool,
    operation_timeout: Option<Duration>,
    /// What cancel requests connect with: the TLS of the store's own pool,
    /// or none for a pool of yours (whose connector the store cannot see).
    cancel_tls: MakeTls,
}

impl NativePool {
    pub(crate) fn new(
        pool: Pool,
        operation_timeout: Option<Duration>,
        cancel_tls: MakeTls,
    ) -> Self {
        NativePool {
            pool,
            operation_timeout,
            cancel_tls,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs one statement on a pooled connection, bounded by the operation
    /// timeout.
    ///
    /// A connection that failed in a way that may have broken it (or that
    /// timed out mid-statement, perhaps on a dead network) is taken out of
    /// the pool instead of being returned, so the next call opens a fresh one.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, LockError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let started = Instant::now();
        // The connection lives out here, not in the bounded future, so that
        // a call that runs out of time can still cancel its statement and
        // retire the connection (dropping it would return it to the pool).
        let mut checked_out: Option<Object> = None;
        // The only error of the bounded future itself is failing to get a
        // connection; the statement's outcome is passed through as it is, so
        // that an `Err` after a checkout can only be the timeout.
        let outcome = within(STORE, self.operation_timeout, "operation", async {
            let client = checked_out.insert(self.pool.get().await.map_err(pool_error)?);
            Ok(async {
                let statement = client.prepare_cached(sql).await?;
                client.query(&statement, &params).await
            }
            .await)
        })
        .await;
        match outcome {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => {
                if !connection_is_reusable(&error)
                    && let Some(client) = checked_out
                {
                    self.discard(client, started);
                }
                Err(store_error(error))
            }
            Err(error) => {
                // Out of time, or no connection to be had; only a checked-out
                // connection has a statement in flight to cancel.
                if let Some(client) = checked_out {
                    let cancel = client.cancel_token();
                    self.discard(client, started);
                    // Closing the socket does not stop the statement: the
                    // server only notices when it next talks to us, and
                    // meanwhile the statement (often waiting on a row lock)
                    // could still take effect after the caller's clean-up.
                    // Cancel it, best effort, with the store's TLS if it has
                    // some (on a pool of yours whose connections use TLS
                    // the store has no connector, the cancel fails, and the
                    // statement then runs its course).
                    let tls = self.cancel_tls.clone();
                    let _ = tokio::time::timeout(CANCEL_WAIT, cancel.cancel_query(tls)).await;
                }
                Err(error)
            }
        }
    }

    /// Runs one statement; returns the first column of its first row.
    pub(crate) async fn first<T: FromSqlOwned>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<T>, LockError> {
        let rows = self.query(sql, params).await?;
        rows.first()
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(store_error)
    }

    /// Drops a broken connection for good instead of returning it to the
    /// pool, and with it every idle connection that was open before this
    /// call began.
    ///
    /// A session rarely dies alone: a restart, a failover or an
    /// administrator's `pg_terminate_backend` kill them all, and an idle
    /// connection only shows that it is closed once its background task has
    /// read the server's goodbye, which may not have happened yet. Without
    /// this, each following call could draw another dead connection and
    /// fail in turn; with it, the next call gets a fresh one.
    fn discard(&self, client: Object, call_started: Instant) {
        drop(Object::take(client));
        let retired = self
            .pool
            .retain(|_, metrics| metrics.created > call_started);
        drop(retired);
    }

    pub(crate) async fn setup_session(&self) -> Result<Box<dyn Setup>, LockError> {
        Ok(Box::new(self.pool.get().await.map_err(pool_error)?))
    }

    pub(crate) fn describe(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        let status = self.pool.status();
        f.field("connections", &status.size)
            .field("max_connections", &status.max_size);
    }
}

#[async_trait]
impl Setup for Object {
    async fn query_bool(&mut self, sql: &str, text: &str) -> Result<bool, LockError> {
        let row = self.query_one(sql, &[&text]).await.map_err(store_error)?;
        row.try_get(0).map_err(store_error)
    }

    async fn batch(&mut self, batch: &str) -> Result<Result<(), Refusal>, LockError> {
        refused_or_failed(self.batch_execute(batch).await)
    }

    async fn columns(&mut self, sql: &str, table: &str) -> Result<Vec<Column>, LockError> {
        let rows = self.query(sql, &[&table]).await.map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(Column {
                    name: row.try_get(0)?,
                    type_oid: row.try_get(1)?,
                    type_name: row.try_get(2)?,
                    typmod: row.try_get(3)?,
                    not_null: row.try_get(4)?,
                    collation: row.try_get(5)?,
                    deterministic: row.try_get(6)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(store_error)
    }

    async fn unique_indexes(
        &mut self,
        sql: &str,
        table: &str,
    ) -> Result<Vec<UniqueIndex>, LockError> {
        let rows = self.query(sql, &[&table]).await.map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(UniqueIndex {
                    name: row.try_get(0)?,
                    arbiter: row.try_get(1)?,
                    covers_key: row.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(store_error)
    }

    async fn prepare(&mut self, sql: &str) -> Result<Result<(), Refusal>, LockError> {
        refused_or_failed(self.prepare_cached(sql).await.map(drop))
    }
}

/// The server refusing a statement is an inner [`Refusal`]; anything else
/// (a lost connection) is the outer error.
fn refused_or_failed(
    outcome: Result<(), tokio_postgres::Error>,
) -> Result<Result<(), Refusal>, LockError> {
    match outcome {
        Ok(()) => Ok(Ok(())),
        Err(error) => match error.as_db_error() {
            Some(refused) => Ok(Err(Refusal {
                code: refused.code().code().to_owned(),
                message: refused.message().to_owned(),
                detail: refused.detail().map(str::to_owned),
            })),
            None => Err(store_error(error)),
        },
    }
}
