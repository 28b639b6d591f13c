//! Any store on its local service, with the same defaults for every tool.
//!
//! Each store has a function returning its builder already pointed at the
//! service (and failing fast when it is down), so a caller can add its own
//! options; [`open`] builds any of them behind `dyn LockStore`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use verrou_core::{LockError, LockStore};
use verrou_dynamodb::{DynamoDbStore, DynamoDbStoreBuilder};
use verrou_memory::MemoryStore;
use verrou_mysql::{MysqlStore, MysqlStoreBuilder};
use verrou_postgres::{PostgresStore, PostgresStoreBuilder};
use verrou_redis::{RedisStore, RedisStoreBuilder};
use verrou_sqlite::{SqliteStore, SqliteStoreBuilder};

use crate::{Service, StoreKind};

/// How long a tool waits for a server that is down before saying so.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis store builder on `service` (Redis, Redis Cluster or Valkey).
pub fn redis(service: Service) -> RedisStoreBuilder {
    RedisStore::builder()
        .url(service.url())
        .connect_timeout(CONNECT_TIMEOUT)
}

/// A PostgreSQL store builder on [`Service::Postgres`].
pub fn postgres() -> PostgresStoreBuilder {
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .connect_timeout(CONNECT_TIMEOUT)
}

/// A MySQL/MariaDB store builder on [`Service::Mysql`].
pub fn mysql() -> MysqlStoreBuilder {
    MysqlStore::builder()
        .url(&Service::Mysql.url())
        .connect_timeout(CONNECT_TIMEOUT)
}

/// A DynamoDB store builder on the emulator ([`Service::DynamoDb`]), with
/// the dummy credentials an emulator accepts.
pub fn dynamodb() -> DynamoDbStoreBuilder {
    DynamoDbStore::builder()
        .endpoint(Service::DynamoDb.url())
        .region("us-east-1")
        .credentials("verrou-test", "verrou-test-secret")
        .connect_timeout(CONNECT_TIMEOUT)
}

/// A SQLite store builder on the database file `path`.
pub fn sqlite(path: &Path) -> SqliteStoreBuilder {
    SqliteStore::builder().path(path)
}

/// The store `kind` on its local service, with its default options. SQLite
/// opens a fresh file in the system's temporary directory.
///
/// # Errors
/// What the store's `build` returns: the service is down, refuses us, or has
/// a lock table of another shape.
pub async fn open(kind: StoreKind) -> Result<Arc<dyn LockStore>, LockError> {
    Ok(match kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Redis => Arc::new(redis(Service::Redis).build().await?),
        StoreKind::RedisCluster => Arc::new(redis(Service::RedisCluster).build().await?),
        StoreKind::Valkey => Arc::new(redis(Service::Valkey).build().await?),
        StoreKind::Postgres => Arc::new(postgres().build().await?),
        StoreKind::Mysql => Arc::new(mysql().build().await?),
        StoreKind::Sqlite => {
            let path = std::env::temp_dir().join(format!("{}.db", crate::unique("verrou")));
            Arc::new(sqlite(&path).build().await?)
        }
        StoreKind::DynamoDb => Arc::new(dynamodb().build().await?),
    })
}
