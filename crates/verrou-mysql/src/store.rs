//! `MysqlStore`: the lock store on a pool of MySQL / MariaDB connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::Pool;
use verrou_core::store::{AutoPrune, TableName};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, async_trait};

use crate::backend::{Backend, Param, Read, Reply};
use crate::builder::MysqlStoreBuilder;
use crate::error::STORE;
use crate::schema::{MAX_KEY_BYTES, MAX_OWNER_BYTES};
use crate::statements::{Statements, ttl_millis};

/// A lock store in a MySQL or MariaDB (InnoDB) table, one row per key.
///
/// Every operation is one SQL statement, expiry is judged by the server's
/// clock, and acquisitions return fencing tokens. Clones share the pool.
/// Build one with [`MysqlStore::connect`], [`MysqlStore::builder`],
/// [`MysqlStore::from_pool`] or, with the `sqlx` feature,
/// `MysqlStore::from_sqlx`.
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
    backend: Backend,
    table: TableName,
    sql: Statements,
    connect_timeout: Duration,
    operation_timeout: Option<Duration>,
    auto_prune: Arc<AutoPrune>,
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

    /// Starts configuring a store on a pool you already have: its settings,
    /// TLS included, stay yours (see [`pool`](MysqlStoreBuilder::pool)). The
    /// other options of the builder still apply; finish with
    /// [`build`](MysqlStoreBuilder::build).
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

    /// Starts configuring a store on your sqlx pool (feature `sqlx`): the
    /// same statements, table checks, fencing tokens and timeouts, and a
    /// statement abandoned half-way is killed on the server as on the
    /// store's own pool. The other options of the builder still apply;
    /// finish with [`build`](MysqlStoreBuilder::build). See "Using your sqlx
    /// pool" in the crate documentation for what it costs.
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_mysql::sqlx::MySqlPool;
    ///
    /// let pool = MySqlPool::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// let store = verrou_mysql::MysqlStore::from_sqlx(pool)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "sqlx")]
    pub fn from_sqlx(pool: sqlx::MySqlPool) -> MysqlStoreBuilder {
        MysqlStoreBuilder::new().sqlx_pool(pool)
    }

    pub(crate) fn new(
        backend: Backend,
        table: TableName,
        sql: Statements,
        connect_timeout: Duration,
        operation_timeout: Option<Duration>,
    ) -> Self {
        MysqlStore {
            inner: Arc::new(Inner {
                backend,
                table,
                sql,
                connect_timeout,
                operation_timeout,
                auto_prune: Arc::default(),
            }),
        }
    }

    /// The statements this store runs on its table, exactly as sent.
    pub fn statements(&self) -> &Statements {
        &self.inner.sql
    }

    /// The `mysql_async` pool the store runs on: its own, or the one given
    /// to [`from_pool`](Self::from_pool). `None` for a store on a sqlx pool
    /// (feature `sqlx`; see `sqlx_pool`).
    pub fn pool(&self) -> Option<&Pool> {
        match &self.inner.backend {
            Backend::Native(pool) => Some(pool.pool()),
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(_) => None,
        }
    }

    /// The sqlx pool the store runs on (feature `sqlx`), `None` for a store
    /// on a `mysql_async` pool.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(&self) -> Option<&sqlx::MySqlPool> {
        match &self.inner.backend {
            Backend::Native(_) => None,
            Backend::Sqlx(pool) => Some(pool.pool()),
        }
    }

    /// The name of the lock table.
    pub fn table_name(&self) -> &str {
        self.inner.table.as_str()
    }
}

impl MysqlStore {
    /// Deletes at most `limit` prunable rows in one statement; returns how
    /// many.
    async fn prune_rows(&self, limit: u64) -> Result<u64, LockError> {
        let reply = self
            .run(&self.inner.sql.prune, &[Param::UInt(limit)], Read::Status)
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

    async fn run(&self, sql: &str, params: &[Param<'_>], read: Read) -> Result<Reply, LockError> {
        self.inner.backend.run(sql, params, read).await
    }
}

/// Keys arrive checked against [`MAX_KEY_BYTES`] by the handle (see the
/// `LockStore` contract), so they always fit the column.
fn key_param(key: &str) -> Param<'_> {
    Param::Bytes(key.as_bytes())
}

/// Owners longer than the column would be cut (or refused, in strict mode):
/// two owners sharing a prefix must never match, so they are refused here.
fn owner_param(owner: &str) -> Result<Param<'_>, LockError> {
    if owner.len() > MAX_OWNER_BYTES {
        return Err(LockError::invalid_key(format!(
            "invalid owner: {} bytes, at most {MAX_OWNER_BYTES} are allowed",
            owner.len()
        )));
    }
    Ok(Param::Bytes(owner.as_bytes()))
}

fn ttl_param(ttl: Option<Duration>) -> Param<'static> {
    Param::Int(ttl_millis(ttl))
}

#[async_trait]
impl LockStore for MysqlStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let owner = owner_param(owner)?;
        let ttl = ttl_param(expiry.duration());
        let params = [key_param(key), owner, ttl, owner, ttl];
        let reply = self
            .run(&self.inner.sql.acquire, &params, Read::Status)
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
        let params = [key_param(key), owner_param(owner)?];
        let reply = self
            .run(&self.inner.sql.release, &params, Read::Status)
            .await?;
        if reply.affected_rows == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let params = [key_param(key)];
        self.run(&self.inner.sql.force_release, &params, Read::Status)
            .await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let params = [key_param(key)];
        Ok(self
            .run(&self.inner.sql.exists, &params, Read::Row)
            .await?
            .row)
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let params = [
            ttl_param(expiry.duration()),
            key_param(key),
            owner_param(owner)?,
        ];
        let reply = self
            .run(&self.inner.sql.extend, &params, Read::Status)
            .await?;
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
