//! `PostgresStore`: the lock store on a pool of PostgreSQL connections.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use verrou_core::store::{AutoPrune, TableName, within};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

use crate::announcements::Announcements;
use crate::builder::PostgresStoreBuilder;
use crate::error::{STORE, connection_is_reusable, pool_error, store_error};
use crate::shape::Shape;
use crate::statements::{Statements, ttl_millis};

/// How long a timed-out call waits for its statement's cancel request.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// A lock store in a PostgreSQL table, one row per key.
///
/// Every operation is one SQL statement, expiry is judged by the server's
/// clock, and acquisitions return fencing tokens. Clones share the pool.
/// Build one with [`PostgresStore::connect`], [`PostgresStore::builder`] or
/// [`PostgresStore::from_pool`].
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
    pool: Pool,
    table: TableName,
    sql: Statements,
    /// What the table's key column holds (see `shape`).
    max_key_bytes: usize,
    operation_timeout: Option<Duration>,
    auto_prune: Arc<AutoPrune>,
    /// `None` when announcements are off or the store has no connection
    /// settings of its own to open the listening session with.
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

    pub(crate) fn new(
        pool: Pool,
        table: TableName,
        sql: Statements,
        shape: Shape,
        operation_timeout: Option<Duration>,
        announcements: Option<Announcements>,
    ) -> Self {
        PostgresStore {
            inner: Arc::new(Inner {
                pool,
                table,
                sql,
                max_key_bytes: shape.max_key_bytes,
                operation_timeout,
                auto_prune: Arc::default(),
                announcements,
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

    /// Runs one statement on a pooled connection, bounded by the operation
    /// timeout.
    ///
    /// A connection that failed in a way that may have broken it (or that
    /// timed out mid-statement, perhaps on a dead network) is taken out of
    /// the pool instead of being returned, so the next call opens a fresh one.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, LockError> {
        let started = Instant::now();
        // The connection lives out here, not in the bounded future, so that
        // a call that runs out of time can still cancel its statement and
        // retire the connection (dropping it would return it to the pool).
        let mut checked_out: Option<Object> = None;
        // The only error of the bounded future itself is failing to get a
        // connection; the statement's outcome is passed through as it is, so
        // that an `Err` after a checkout can only be the timeout.
        let outcome = within(STORE, self.inner.operation_timeout, "operation", async {
            let client = checked_out.insert(self.inner.pool.get().await.map_err(pool_error)?);
            Ok(async {
                let statement = client.prepare_cached(sql).await?;
                client.query(&statement, params).await
            }
            .await)
        })
        .await;
        match outcome {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => {
                if !connection_is_reusable(&error) {
                    if let Some(client) = checked_out {
                        self.discard(client, started);
                    }
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
                    // Cancel it, best effort (a server reached over TLS
                    // refuses this plain request; the statement then runs
                    // its course).
                    let _ = tokio::time::timeout(CANCEL_WAIT, cancel.cancel_query(NoTls)).await;
                }
                Err(error)
            }
        }
    }

    /// Deletes at most `limit` prunable rows (`None`: all of them) in one
    /// statement; returns how many.
    async fn prune_rows(&self, limit: Option<i64>) -> Result<u64, LockError> {
        let rows = self.query(&self.inner.sql.prune, &[&limit]).await?;
        let row = rows
            .first()
            .ok_or_else(|| LockError::store(STORE, "count(*) returned no row"))?;
        let pruned: i64 = row.try_get(0).map_err(store_error)?;
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
            .inner
            .pool
            .retain(|_, metrics| metrics.created > call_started);
        drop(retired);
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
        let ttl = ttl_millis(expiry.duration());
        let rows = self
            .query(&self.inner.sql.acquire, &[&key, &owner, &ttl])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(Acquisition::Held);
        };
        let token: i64 = row.try_get(0).map_err(store_error)?;
        self.prune_in_background_if_due();
        Ok(Acquisition::Acquired {
            // Tokens are at least the server clock in microseconds (or count
            // up from 1 on tables of older versions): never negative.
            fencing_token: Some(token.unsigned_abs()),
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let rows = self.query(&self.inner.sql.release, &[&key, &owner]).await?;
        if rows.is_empty() {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.query(&self.inner.sql.force_release, &[&key]).await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let rows = self.query(&self.inner.sql.exists, &[&key]).await?;
        let row = rows
            .first()
            .ok_or_else(|| LockError::store(STORE, "EXISTS returned no row"))?;
        row.try_get(0).map_err(store_error)
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let ttl = ttl_millis(expiry.duration());
        let rows = self
            .query(&self.inner.sql.extend, &[&key, &owner, &ttl])
            .await?;
        if rows.is_empty() {
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
        let status = self.inner.pool.status();
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.table)
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .field("operation_timeout", &self.inner.operation_timeout)
            .field("release_announcements", &self.inner.announcements.is_some())
            .finish()
    }
}
