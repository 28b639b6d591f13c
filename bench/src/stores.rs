//! Every store the bench knows: how to open it, and its "floor" — the bare
//! round trip that one acquire + release must make twice at least.
//!
//! Stores connect to the local services (`cargo xtask services up`) through
//! `verrou-testkit`, with the same addresses, environment variables and
//! connect timeout as their tests. The floor runs on the store's own client:
//! for the SQL stores, on one connection taken from the store's pool and
//! kept, so the floor is the bare round trip and any pool overhead of the
//! store counts against the store.

use std::sync::Arc;

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
use verrou_testkit::{Service, StoreKind};

/// Every store the bench runs, in report order: those with a floor below.
/// (SQLite has none yet: its round trip is a file, not a server.)
pub const BENCHED: [StoreKind; 7] = [
    StoreKind::Memory,
    StoreKind::Redis,
    StoreKind::RedisCluster,
    StoreKind::Valkey,
    StoreKind::Postgres,
    StoreKind::Mysql,
    StoreKind::DynamoDb,
];

/// Whether `bench/node/peer.mjs` wires up a Node Verrou driver for `kind`.
pub fn has_peer(kind: StoreKind) -> bool {
    matches!(
        kind,
        StoreKind::Memory
            | StoreKind::Redis
            | StoreKind::Postgres
            | StoreKind::Mysql
            | StoreKind::DynamoDb
    )
}

/// The store called `name`, if the bench runs it.
///
/// # Errors
/// An unknown name, or a store the bench has no floor for.
pub fn parse(name: &str) -> Result<StoreKind, String> {
    let kind: StoreKind = name.parse()?;
    if BENCHED.contains(&kind) {
        Ok(kind)
    } else {
        let known: Vec<_> = BENCHED.iter().map(|k| k.name()).collect();
        Err(format!(
            "the bench does not run `{name}` (it runs: {})",
            known.join(", ")
        ))
    }
}

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
    /// The same on Valkey.
    Valkey(RedisStore),
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
            Floor::Valkey(_) => "Valkey PING",
            Floor::Postgres(_) => "Postgres SELECT 1",
            Floor::Mysql(_) => "MariaDB SELECT 1",
            Floor::DynamoDb(_) => "DynamoDB GetItem",
        }
    }

    /// One bare round trip.
    pub async fn round_trip(&self) -> Result<(), BoxError> {
        match self {
            Floor::Memory(mutex) => drop(mutex.lock().await),
            Floor::Redis(store) | Floor::Valkey(store) => {
                let _: String = store.client().ping(None).await?;
            }
            Floor::Postgres(kept) => {
                let mut slot = kept.conn.lock().await;
                let client = match slot.take() {
                    Some(client) => client,
                    None => kept.store.pool().ok_or("no deadpool pool")?.get().await?,
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
                    None => {
                        kept.store
                            .pool()
                            .ok_or("no mysql_async pool")?
                            .get_conn()
                            .await?
                    }
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

/// Opens the store `kind` on its local service.
///
/// # Errors
/// A store the bench does not run, or the service cannot be reached.
pub async fn open(kind: StoreKind) -> Result<Subject, String> {
    let describe = |e: verrou_core::LockError| crate::workloads::describe(&e);
    let (store, floor): (Arc<dyn LockStore>, Floor) = match kind {
        StoreKind::Memory => (
            Arc::new(MemoryStore::new()),
            Floor::Memory(tokio::sync::Mutex::new(())),
        ),
        StoreKind::Redis | StoreKind::RedisCluster | StoreKind::Valkey => {
            let service = kind.service().ok_or("a Redis store without a server")?;
            let store = verrou_testkit::redis(service)
                .build()
                .await
                .map_err(describe)?;
            let floor = if service == Service::Valkey {
                Floor::Valkey(store.clone())
            } else {
                Floor::Redis(store.clone())
            };
            (Arc::new(store), floor)
        }
        StoreKind::Postgres => {
            let store = verrou_testkit::postgres()
                .max_connections(POOL + 1)
                .build()
                .await
                .map_err(describe)?;
            (
                Arc::new(store.clone()),
                Floor::Postgres(Box::new(Kept::new(store))),
            )
        }
        StoreKind::Mysql => {
            let store = verrou_testkit::mysql()
                .max_connections(POOL + 1)
                .build()
                .await
                .map_err(describe)?;
            (
                Arc::new(store.clone()),
                Floor::Mysql(Box::new(Kept::new(store))),
            )
        }
        StoreKind::DynamoDb => {
            let store = verrou_testkit::dynamodb().build().await.map_err(describe)?;
            (Arc::new(store.clone()), Floor::DynamoDb(store))
        }
        other => return Err(format!("the bench has no floor for `{other}`")),
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
