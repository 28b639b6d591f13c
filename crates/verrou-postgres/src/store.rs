//! `PostgresStore`: the lock store on a pool of PostgreSQL connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use verrou_core::store::{AutoPrune, TableName};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

use crate::announcements::Announcements;
use crate::backend::{Backend, Param};
use crate::builder::PostgresStoreBuilder;
use crate::error::STORE;
use crate::shape::Shape;
use crate::statements::{Statements, ttl_millis};

/// A lock store in a PostgreSQL table, one row per key.
///
/// Every operation is one SQL statement, expiry is judged by the server's
/// clock, and acquisitions return fencing tokens. Clones share the pool.
/// Build one with [`PostgresStore::connect`], [`PostgresStore::builder`],
/// [`PostgresStore::from_pool`] or, with the `sqlx` feature,
/// `PostgresStore::from_sqlx`.
///
/// ```rust,no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// let store = verrou_postgres::PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    table: TableName,
    sql: Statements,
    /// What the table's key column holds (see `shape`).
    max_key_bytes: usize,
    operation_timeout: Option<Duration>,
    auto_prune: Arc<AutoPrune>,
    /// `None` when announcements are off or the store has no connection
    /// settings to open the listening session with (a `deadpool` pool given
    /// by the application).
    announcements: Option<Announcements>,
}

impl PostgresStore {
    /// A store on the server at `url` with every other option at its
    /// default: `builder().url(url).build()`.
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_postgres::PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`PostgresStoreBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder().url(url).build().await
    }

    /// Starts configuring a store that opens its own connections (give it
    /// [`url`](PostgresStoreBuilder::url) or
    /// [`config`](PostgresStoreBuilder::config)).
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::new()
    }

    /// Starts configuring a store on a pool you already have (one built with
    /// a TLS connector, for example). The other options of the builder still
    /// apply; finish with [`build`](PostgresStoreBuilder::build).
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_postgres::deadpool_postgres::{Manager, Pool};
    /// use verrou_postgres::tokio_postgres::{Config, NoTls};
    ///
    /// let config: Config = "postgres://postgres@127.0.0.1/test".parse()?;
    /// let pool = Pool::builder(Manager::new(config, NoTls)).max_size(4).build()?;
    /// let store = verrou_postgres::PostgresStore::from_pool(pool)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_pool(pool: Pool) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new().pool(pool)
    }

    /// Starts configuring a store on your sqlx pool (feature `sqlx`): the
    /// same statements, table checks, fencing tokens, timeouts and release
    /// announcements (waiters are woken through one extra session opened
    /// with the pool's connect options). The other options of the builder
    /// still apply; finish with [`build`](PostgresStoreBuilder::build). See
    /// "Using your sqlx pool" in the crate documentation for what it costs.
    ///
    /// ```rust,no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_postgres::sqlx::PgPool;
    ///
    /// let pool = PgPool::connect("postgres://postgres@127.0.0.1/test").await?;
    /// let store = verrou_postgres::PostgresStore::from_sqlx(pool)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "sqlx")]
    pub fn from_sqlx(pool: sqlx::PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new().sqlx_pool(pool)
    }

    pub(crate) fn new(
        backend: Backend,
        table: TableName,
        sql: Statements,
        shape: Shape,
        operation_timeout: Option<Duration>,
        announcements: Option<Announcements>,
    ) -> Self {
        PostgresStore {
            inner: Arc::new(Inner {
                backend,
                table,
                sql,
                max_key_bytes: shape.max_key_bytes,
                operation_timeout,
                auto_prune: Arc::default(),
                announcements,
            }),
        }
    }

    /// The statements this store runs on its table, exactly as sent.
    pub fn statements(&self) -> &Statements {
        &self.inner.sql
    }

    /// The `deadpool-postgres` pool the store runs on: its own, or the one
    /// given to [`from_pool`](Self::from_pool). `None` for a store on a sqlx
    /// pool (feature `sqlx`; see `sqlx_pool`).
    pub fn pool(&self) -> Option<&Pool> {
        match &self.inner.backend {
            Backend::Native(pool) => Some(pool.pool()),
            #[cfg(feature = "sqlx")]
            Backend::Sqlx(_) => None,
        }
    }

    /// The sqlx pool the store runs on (feature `sqlx`), `None` for a store
    /// on a `deadpool-postgres` pool.
    #[cfg(feature = "sqlx")]
    pub fn sqlx_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.inner.backend {
            Backend::Native(_) => None,
            Backend::Sqlx(pool) => Some(pool.pool()),
        }
    }

    /// The name of the lock table.
    pub fn table_name(&self) -> &str {
        self.inner.table.as_str()
    }

    /// Deletes at most `limit` prunable rows (`None`: all of them) in one
    /// statement; returns how many.
    async fn prune_rows(&self, limit: Option<i64>) -> Result<u64, LockError> {
        let inner = &self.inner;
        let pruned = inner
            .backend
            .first_int(&inner.sql.prune, &[Param::Int(limit)])
            .await?
            .ok_or_else(|| LockError::store(STORE, "count(*) returned no row"))?;
        Ok(pruned.unsigned_abs())
    }

    /// Every [`AutoPrune::EVERY`] acquisitions, prunes one batch in a
    /// background task, so that the caller's acquire never waits for it.
    fn prune_in_background_if_due(&self) {
        let store = self.clone();
        self.inner
            .auto_prune
            .after_acquire(STORE, move || async move {
                store.prune_rows(Some(i64::from(AutoPrune::BATCH))).await
            });
    }
}

#[async_trait]
impl LockStore for PostgresStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let inner = &self.inner;
        let params = [
            Param::Text(key),
            Param::Text(owner),
            Param::Int(ttl_millis(expiry.duration())),
        ];
        let Some(token) = inner.backend.first_int(&inner.sql.acquire, &params).await? else {
            return Ok(Acquisition::Held);
        };
        self.prune_in_background_if_due();
        Ok(Acquisition::Acquired {
            // Tokens are at least the server clock in microseconds (or count
            // up from 1 on tables of older versions): never negative.
            fencing_token: Some(token.unsigned_abs()),
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = [Param::Text(key), Param::Text(owner)];
        if inner.backend.rows(&inner.sql.release, &params).await? == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = [Param::Text(key)];
        inner
            .backend
            .rows(&inner.sql.force_release, &params)
            .await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let inner = &self.inner;
        let params = [Param::Text(key)];
        inner
            .backend
            .first_bool(&inner.sql.exists, &params)
            .await?
            .ok_or_else(|| LockError::store(STORE, "EXISTS returned no row"))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = [
            Param::Text(key),
            Param::Text(owner),
            Param::Int(ttl_millis(expiry.duration())),
        ];
        if inner.backend.rows(&inner.sql.extend, &params).await? == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        Ok(self
            .inner
            .announcements
            .as_ref()
            .and_then(|announcements| announcements.watch(key)))
    }

    /// Deletes, in one statement, every row of a free (released or expired)
    /// lock whose fencing token is more than a second behind the server's
    /// clock. A later acquisition of such a key starts a new row with a
    /// token of at least the clock, so tokens keep rising across prunes.
    /// The store also prunes on its own, a batch every 1024 acquisitions.
    async fn prune(&self) -> Result<u64, LockError> {
        self.prune_rows(None).await
    }

    fn max_key_bytes(&self) -> usize {
        self.inner.max_key_bytes
    }

    fn name(&self) -> &'static str {
        STORE
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the table and pool sizes: the pool's configuration can hold a
        // password.
        let mut s = f.debug_struct("PostgresStore");
        s.field("table", &self.inner.table);
        self.inner.backend.describe(&mut s);
        s.field("operation_timeout", &self.inner.operation_timeout)
            .field("release_announcements", &self.inner.announcements.is_some())
            .finish()
    }
}
