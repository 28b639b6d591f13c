//! Every store the bench knows: how to open it, and its "floor" — the bare
//! round trip that one acquire + release must make twice at least.
//!
//! Stores connect to the local services (`cargo xtask services up`) with the
//! same defaults and environment variables as their tests. The floor runs on
//! the store's own client: for the SQL stores, on one connection taken from
//! the store's pool and kept, so the floor is the bare round trip and any
//! pool overhead of the store counts against the store.

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{BoxError, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
use verrou_memory::MemoryStore;
use verrou_mysql::MysqlStore;
use verrou_mysql::mysql_async::prelude::Queryable;
use verrou_mysql::mysql_async::{Conn, Value};
use verrou_postgres::PostgresStore;
use verrou_postgres::deadpool_postgres::Object;
use verrou_redis::RedisStore;
use verrou_redis::fred::interfaces::ClientLike;

/// Every store the bench can run, in report order.
pub const ALL: &[&str] = &[
    "memory",
    "redis",
    "redis-cluster",
    "postgres",
    "mysql",
    "dynamodb",
];

/// Stores for which `bench/node/peer.mjs` wires up a Node Verrou driver.
pub const PEER: &[&str] = &["memory", "redis", "postgres", "mysql", "dynamodb"];

/// Connections of the SQL stores' pools; `bench/node/peer.mjs` gives knex
/// the same number so that the 64 concurrent tasks queue on equal pools.
/// Our pools get one more, kept by the floor.
pub const POOL: usize = 16;

/// A store under test.
pub struct Subject {
    /// The store, shared by every lock of the run.
    pub store: Arc<dyn LockStore>,
    /// Its bare round trip.
    pub floor: Arc<Floor>,
}

/// The cheapest request to the store's server, on the store's own client.
pub enum Floor {
    /// Memory has no server: an uncontended `tokio::sync::Mutex` lock + unlock.
    Memory(tokio::sync::Mutex<()>),
    /// `PING` on the store's connection (one node of a Cluster).
    Redis(RedisStore),
    /// `SELECT 1`, prepared once, on a connection kept from the store's pool.
    Postgres(Box<Kept<PostgresStore, Object>>),
    /// `SELECT 1` (prepared once: mysql_async caches statements per
    /// connection) on a connection kept from the store's pool.
    Mysql(Box<Kept<MysqlStore, Conn>>),
    /// A strongly consistent `GetItem` on the lock table (the store's reads
    /// are strongly consistent too).
    DynamoDb(DynamoDbStore),
}

impl Floor {
    /// What the floor measures, for the report.
    pub fn label(&self) -> &'static str {
        match self {
            Floor::Memory(_) => "tokio::sync::Mutex lock+unlock",
            Floor::Redis(_) => "Redis PING",
            Floor::Postgres(_) => "Postgres SELECT 1",
            Floor::Mysql(_) => "MariaDB SELECT 1",
            Floor::DynamoDb(_) => "DynamoDB GetItem",
        }
    }

    /// One bare round trip.
    pub async fn round_trip(&self) -> Result<(), BoxError> {
        match self {
            Floor::Memory(mutex) => drop(mutex.lock().await),
            Floor::Redis(store) => {
                let _: String = store.client().ping(None).await?;
            }
            Floor::Postgres(kept) => {
                let mut slot = kept.conn.lock().await;
                let client = match slot.take() {
                    Some(client) => client,
                    None => kept.store.pool().get().await?,
                };
                let statement = client.prepare_cached("SELECT 1").await?;
                client.query_one(&statement, &[]).await?;
                // Kept only after a success: a connection that failed (killed
                // by the server, say) is replaced on the next call.
                *slot = Some(client);
            }
            Floor::Mysql(kept) => {
                let mut slot = kept.conn.lock().await;
                let mut conn = match slot.take() {
                    Some(conn) => conn,
                    None => kept.store.pool().get_conn().await?,
                };
                let _: Option<Value> = conn.exec_first("SELECT 1", ()).await?;
                *slot = Some(conn);
            }
            Floor::DynamoDb(store) => {
                store
                    .client()
                    .get_item()
                    .table_name(store.table_name())
                    .key("key", AttributeValue::S("bench:floor".into()))
                    .consistent_read(true)
                    .send()
                    .await?;
            }
        }
        Ok(())
    }
}

/// A connection taken from a store's pool once and kept for the floor.
pub struct Kept<S, C> {
    store: S,
    conn: tokio::sync::Mutex<Option<C>>,
}

impl<S, C> Kept<S, C> {
    fn new(store: S) -> Self {
        Kept {
            store,
            conn: tokio::sync::Mutex::new(None),
        }
    }
}

/// Opens the store called `name` on the local service.
///
/// # Errors
/// An unknown name, or the service cannot be reached.
pub async fn open(name: &str) -> Result<Subject, String> {
    let describe = |e: verrou_core::LockError| crate::workloads::describe(&e);
    let (store, floor): (Arc<dyn LockStore>, Floor) = match name {
        "memory" => (
            Arc::new(MemoryStore::new()),
            Floor::Memory(tokio::sync::Mutex::new(())),
        ),
        "redis" => {
            let store = RedisStore::builder()
                .url(env_or("VERROU_REDIS_URL", "redis://127.0.0.1:6379"))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .await
                .map_err(describe)?;
            (Arc::new(store.clone()), Floor::Redis(store))
        }
        "redis-cluster" => {
            let store = RedisStore::builder()
                .url(env_or(
                    "VERROU_REDIS_CLUSTER_URL",
                    "redis-cluster://127.0.0.1:7000",
                ))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .await
                .map_err(describe)?;
            (Arc::new(store.clone()), Floor::Redis(store))
        }
        "postgres" => {
            let store = PostgresStore::builder()
                .url(&env_or(
                    "VERROU_POSTGRES_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                ))
                .max_connections(POOL + 1)
                .connect_timeout(Duration::from_secs(2))
                .build()
                .await
                .map_err(describe)?;
            (
                Arc::new(store.clone()),
                Floor::Postgres(Box::new(Kept::new(store))),
            )
        }
        "mysql" => {
            let store = MysqlStore::builder()
                .url(&env_or(
                    "VERROU_MYSQL_URL",
                    "mysql://root@127.0.0.1:3306/test",
                ))
                .max_connections(POOL + 1)
                .connect_timeout(Duration::from_secs(2))
                .build()
                .await
                .map_err(describe)?;
            (
                Arc::new(store.clone()),
                Floor::Mysql(Box::new(Kept::new(store))),
            )
        }
        "dynamodb" => {
            let store = DynamoDbStore::builder()
                .endpoint(env_or("VERROU_DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"))
                .region("us-east-1")
                .credentials("verrou-bench", "verrou-bench-secret")
                .connect_timeout(Duration::from_secs(1))
                .build()
                .await
                .map_err(describe)?;
            (Arc::new(store.clone()), Floor::DynamoDb(store))
        }
        other => {
            return Err(format!(
                "unknown store `{other}` (known: {})",
                ALL.join(", ")
            ));
        }
    };
    let floor = Arc::new(floor);
    // One round trip now, so that a store whose server is down is reported
    // here, not as a failed workload.
    floor.round_trip().await.map_err(|e| {
        format!(
            "{}: {}",
            floor.label(),
            crate::workloads::describe(e.as_ref())
        )
    })?;
    Ok(Subject { store, floor })
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
