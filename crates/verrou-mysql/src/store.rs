//! `MysqlStore`: the lock store on a pool of MySQL / MariaDB connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Pool, Value};
use verrou_core::store::{AutoPrune, TableName, within};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, async_trait};

use crate::builder::MysqlStoreBuilder;
use crate::cancel::KillOnDrop;
use crate::error::{STORE, is_deadlock, store_error};
use crate::schema::{MAX_KEY_BYTES, MAX_OWNER_BYTES};
use crate::statements::{Statements, ttl_millis};

/// How many times a statement InnoDB rolled back as a deadlock victim is run
/// again before the error reaches the caller.
const DEADLOCK_ATTEMPTS: u32 = 5;

/// A lock store in a MySQL or MariaDB (InnoDB) table, one row per key.
///
/// Every operation is one SQL statement, expiry is judged by the server's
/// clock, and acquisitions return fencing tokens. Clones share the pool.
/// Build one with [`MysqlStore::connect`], [`MysqlStore::builder`] or
/// [`MysqlStore::from_pool`].
///
/// ```rust,no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// let store = verrou_mysql::MysqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MysqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    table: TableName,
    sql: Statements,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
    auto_prune: Arc<AutoPrune>,
}

/// What the server said about one statement.
struct Reply {
    /// The statement returned at least one row.
    row: bool,
    affected_rows: u64,
    /// 0 when the statement did not call `LAST_INSERT_ID(expr)`.
    last_insert_id: u64,
}

impl MysqlStore {
    /// A store on the server at `url` with every other option at its
    /// default: `builder().url(url).build()`.
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_mysql::MysqlStore::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`MysqlStoreBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder().url(url).build().await
    }

    /// Starts configuring a store that opens its own connections (give it
    /// [`url`](MysqlStoreBuilder::url) or [`config`](MysqlStoreBuilder::config)).
    pub fn builder() -> MysqlStoreBuilder {
        MysqlStoreBuilder::new()
    }

    /// Starts configuring a store on a pool you already have (one with TLS
    /// options, for example). The other options of the builder still apply;
    /// finish with [`build`](MysqlStoreBuilder::build).
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_mysql::mysql_async::Pool;
    ///
    /// let pool = Pool::new("mysql://root@127.0.0.1:3306/test");
    /// let store = verrou_mysql::MysqlStore::from_pool(pool)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pool(pool: Pool) -> MysqlStoreBuilder {
        MysqlStoreBuilder::new().pool(pool)
    }

    pub(crate) fn new(
        pool: Pool,
        table: TableName,
        sql: Statements,
        connect_timeout: Duration,
        operation_timeout: Option<Duration>,
    ) -> Self {
        MysqlStore {
            inner: Arc::new(Inner {
                pool,
                table,
                sql,
                connect_timeout,
                operation_timeout,
                auto_prune: Arc::default(),
            }),
        }
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The name of the lock table.
    pub fn table_name(&self) -> &str {
        self.inner.table.as_str()
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
    async fn run(&self, sql: &str, params: Vec<Value>) -> Result<Reply, LockError> {
        let inner = &self.inner;
        within(STORE, inner.operation_timeout, "mysql operation", async {
            let mut conn = within(
                STORE,
                Some(inner.connect_timeout),
                "getting a connection",
                async { inner.pool.get_conn().await.map_err(store_error) },
            )
            .await?;
            let params = Params::Positional(params);
            let mut attempt = 1;
            let running = KillOnDrop::new(&inner.pool, conn.id(), inner.connect_timeout);
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
}

impl MysqlStore {
    /// Deletes at most `limit` prunable rows in one statement; returns how
    /// many.
    async fn prune_rows(&self, limit: u64) -> Result<u64, LockError> {
        let reply = self
            .run(&self.inner.sql.prune, vec![Value::UInt(limit)])
            .await?;
        // A DELETE counts the rows it deleted, with or without found-rows.
        Ok(reply.affected_rows)
    }

    /// Every [`AutoPrune::EVERY`] acquisitions, prunes one batch in a
    /// background task, so that the caller's acquire never waits for it.
    fn prune_in_background_if_due(&self) {
        let store = self.clone();
        self.inner
            .auto_prune
            .after_acquire(STORE, move || async move {
                store.prune_rows(u64::from(AutoPrune::BATCH)).await
            });
    }
}

/// Keys arrive checked against [`MAX_KEY_BYTES`] by the handle (see the
/// `LockStore` contract), so they always fit the column.
fn key_value(key: &str) -> Value {
    Value::Bytes(key.as_bytes().to_vec())
}

/// Owners longer than the column would be cut (or refused, in strict mode):
/// two owners sharing a prefix must never match, so they are refused here.
fn owner_value(owner: &str) -> Result<Value, LockError> {
    if owner.len() > MAX_OWNER_BYTES {
        return Err(LockError::invalid_key(format!(
            "invalid owner: {} bytes, at most {MAX_OWNER_BYTES} are allowed",
            owner.len()
        )));
    }
    Ok(Value::Bytes(owner.as_bytes().to_vec()))
}

fn ttl_value(ttl: Option<Duration>) -> Value {
    ttl_millis(ttl).map_or(Value::NULL, Value::Int)
}

#[async_trait]
impl LockStore for MysqlStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let ttl = expiry.duration();
        let key = key_value(key);
        let owner = owner_value(owner)?;
        let ttl = ttl_value(ttl);
        let reply = self
            .run(
                &self.inner.sql.acquire,
                vec![key, owner.clone(), ttl.clone(), owner, ttl],
            )
            .await?;
        Ok(match reply.last_insert_id {
            0 => Acquisition::Held,
            token => {
                self.prune_in_background_if_due();
                Acquisition::Acquired {
                    fencing_token: Some(token),
                }
            }
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let params = vec![key_value(key), owner_value(owner)?];
        let reply = self.run(&self.inner.sql.release, params).await?;
        if reply.affected_rows == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let params = vec![key_value(key)];
        self.run(&self.inner.sql.force_release, params).await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let params = vec![key_value(key)];
        Ok(self.run(&self.inner.sql.exists, params).await?.row)
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let ttl = expiry.duration();
        let params = vec![ttl_value(ttl), key_value(key), owner_value(owner)?];
        let reply = self.run(&self.inner.sql.extend, params).await?;
        if reply.last_insert_id == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    /// Deletes, in one statement, every row of a free (released or expired)
    /// lock whose fencing token is more than a second behind the server's
    /// clock. A later acquisition of such a key starts a new row with a
    /// token of at least the clock, so tokens keep rising across prunes.
    /// The store also prunes on its own, a batch every 1024 acquisitions.
    async fn prune(&self) -> Result<u64, LockError> {
        self.prune_rows(u64::MAX).await
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        STORE
    }
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool: the driver's `Debug` of its options prints the
        // password.
        f.debug_struct("MysqlStore")
            .field("table", &self.inner.table)
            .field("connect_timeout", &self.inner.connect_timeout)
            .field("operation_timeout", &self.inner.operation_timeout)
            .finish_non_exhaustive()
    }
}
