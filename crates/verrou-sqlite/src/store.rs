//! `SqliteStore`: locks in a table of an SQLite database.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use verrou_core::store::{AutoPrune, TableName};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, async_trait};

use crate::backend::{Backend, Param};
use crate::builder::SqliteStoreBuilder;
use crate::schema::Statements;

/// Keys are stored as given in a `TEXT` primary key (binary comparison: `a`
/// and `A`, `é` and `e`, `x` and `x ` are different locks). SQLite has no
/// small length limit; this bound keeps the index rows reasonable. The handle
/// checks keys against it (see the `LockStore` contract), so the store's
/// methods do not.
const MAX_KEY_BYTES: usize = 1024;

/// The longest TTL stored as such, in milliseconds (about 73 million years):
/// keeps `now + ttl` far from integer overflow. Longer TTLs are clamped.
const MAX_TTL_MS: i64 = i64::MAX / 4;

/// A lock store in an SQLite database. Processes on one machine that open
/// the same file share the same locks. Clones share the same connections.
///
/// Build one with [`SqliteStore::builder`] (or [`SqliteStore::from_connection`]
/// on a connection you have, `SqliteStore::from_sqlx` on a sqlx pool with the
/// `sqlx` feature); see the crate documentation for the schema, the fencing
/// tokens and the clock. Its methods run SQLite on Tokio's blocking threads
/// (or sqlx's worker threads), so they must be called inside a Tokio runtime.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    sql: Statements,
    table: TableName,
    auto_prune: Arc<AutoPrune>,
}

impl SqliteStore {
    /// A builder; give it a [`path`](SqliteStoreBuilder::path), then
    /// [`build`](SqliteStoreBuilder::build) it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_sqlite::SqliteStore::builder()
    ///     .path("locks.db")
    ///     .table_name("verrou")
    ///     .create_table(true)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// A store on a private in-memory database (table `verrou`): only the
    /// clones of this store see its locks. For tests.
    ///
    /// # Errors
    /// [`LockError::Store`] if SQLite cannot open it.
    pub async fn open_in_memory() -> Result<Self, LockError> {
        Self::builder().in_memory().build().await
    }

    /// Starts configuring a store on a connection you already have, as
    /// configured by you (set its `busy_timeout` if other connections write
    /// to the same database). Operations run one at a time on it. The other
    /// options of the builder still apply; finish with
    /// [`build`](SqliteStoreBuilder::build).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_sqlite::rusqlite::Connection;
    ///
    /// let conn = Connection::open("app.db")?;
    /// conn.busy_timeout(std::time::Duration::from_secs(5))?;
    /// let store = verrou_sqlite::SqliteStore::from_connection(conn)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_connection(connection: Connection) -> SqliteStoreBuilder {
        Self::builder().connection(connection)
    }

    /// Starts configuring a store on your sqlx pool (feature `sqlx`): the
    /// same statements, table checks and fencing tokens, run on the pool's
    /// connections as you configured them (busy timeout, journal mode, size).
    /// The other options of the builder still apply; finish with
    /// [`build`](SqliteStoreBuilder::build). See "Using your sqlx pool" in
    /// the crate documentation for what differs from a store's own
    /// connections.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use verrou_sqlite::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};
    ///
    /// let options = SqliteConnectOptions::new()
    ///     .filename("app.db")
    ///     .create_if_missing(true)
    ///     .journal_mode(SqliteJournalMode::Wal);
    /// let pool = SqlitePool::connect_with(options).await?;
    /// let store = verrou_sqlite::SqliteStore::from_sqlx(pool)
    ///     .table_name("app_locks")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlx")]
    pub fn from_sqlx(pool: sqlx::SqlitePool) -> SqliteStoreBuilder {
        Self::builder().sqlx_pool(pool)
    }

    pub(crate) fn new(backend: Backend, sql: Statements, table: TableName) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                backend,
                sql,
                table,
                auto_prune: Arc::default(),
            }),
        }
    }

    /// The table holding the locks.
    pub fn table_name(&self) -> &str {
        self.inner.table.as_str()
    }

    /// Deletes at most `limit` prunable rows (-1: all) in one statement;
    /// returns how many.
    async fn prune_rows(&self, limit: i64) -> Result<u64, LockError> {
        let inner = &self.inner;
        inner
            .backend
            .execute(&inner.sql.prune, vec![Param::Int(Some(limit))])
            .await
    }

    /// Every [`AutoPrune::EVERY`] acquisitions, prunes one batch in a
    /// background task, so that the caller's acquire never waits for it.
    fn prune_in_background_if_due(&self) {
        let store = self.clone();
        self.inner
            .auto_prune
            .after_acquire("sqlite", move || async move {
                store.prune_rows(i64::from(AutoPrune::BATCH)).await
            });
    }
}

/// The TTL in whole milliseconds by the one rule ([`Expiry::whole_millis`]:
/// rounded up, at least 1); `None` is "never", also for a TTL beyond
/// [`MAX_TTL_MS`].
fn ttl_ms(ttl: Option<Duration>) -> Option<i64> {
    let ms = ttl
        .map_or(Expiry::Never, Expiry::After)
        .whole_millis(MAX_TTL_MS.unsigned_abs())?;
    i64::try_from(ms).ok()
}

#[async_trait]
impl LockStore for SqliteStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let inner = &self.inner;
        let params = vec![
            Param::Text(key.to_owned()),
            Param::Text(owner.to_owned()),
            Param::Int(ttl_ms(expiry.duration())),
        ];
        let token = inner.backend.first_int(&inner.sql.save, params).await?;
        Ok(match token {
            Some(token) => {
                self.prune_in_background_if_due();
                Acquisition::Acquired {
                    // At least the clock in microseconds (or counting up from
                    // 1 on tables of older versions): never negative.
                    fencing_token: Some(token.unsigned_abs()),
                }
            }
            None => Acquisition::Held,
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = vec![Param::Text(key.to_owned()), Param::Text(owner.to_owned())];
        let changed = inner.backend.execute(&inner.sql.delete, params).await?;
        if changed == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = vec![Param::Text(key.to_owned())];
        inner
            .backend
            .execute(&inner.sql.force_delete, params)
            .await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let inner = &self.inner;
        let params = vec![Param::Text(key.to_owned())];
        let exists = inner.backend.first_int(&inner.sql.exists, params).await?;
        // `SELECT EXISTS (...)`: always one row, 1 or 0.
        Ok(exists.is_some_and(|held| held != 0))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let inner = &self.inner;
        let params = vec![
            Param::Text(key.to_owned()),
            Param::Text(owner.to_owned()),
            Param::Int(ttl_ms(expiry.duration())),
        ];
        let changed = inner.backend.execute(&inner.sql.extend, params).await?;
        if changed == 0 {
            return Err(LockError::not_owned(key));
        }
        Ok(())
    }

    /// Deletes, in one statement, every row of a free (released or expired)
    /// lock whose fencing token is more than a second behind the clock. A
    /// later acquisition of such a key starts a new row with a token of at
    /// least the clock, so tokens keep rising across prunes. The store also
    /// prunes on its own, a batch every 1024 acquisitions.
    async fn prune(&self) -> Result<u64, LockError> {
        self.prune_rows(-1).await
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SqliteStore");
        self.inner.backend.describe(&mut s);
        s.field("table", &self.inner.table).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_clamp() {
        assert_eq!(ttl_ms(None), None);
        assert_eq!(ttl_ms(Some(Duration::from_micros(1))), Some(1));
        assert_eq!(ttl_ms(Some(Duration::from_millis(250))), Some(250));
        assert_eq!(ttl_ms(Some(Duration::from_micros(250_001))), Some(251));
        assert_eq!(ttl_ms(Some(Duration::MAX)), None);
        assert_eq!(ttl_ms(Some(Duration::ZERO)), Some(1));
    }
}
