//! Every store the bench knows: how to open it, its same-work floor and its
//! round-trip reference.
//!
//! - The **same-work floor** is the store's own acquire and release (the
//!   very scripts or statements the store sends), issued bare on the store's
//!   driver with the store's client settings. It is what an acquire +
//!   release costs with no client code of ours around it, so ours ÷ floor
//!   is the share of the physical floor verrou reaches. A store plugs one in
//!   by implementing [`Lane`] for its driver and building a
//!   [`SameWorkFloor`] in [`open`]; Redis, Valkey and Redis Cluster (their
//!   Lua scripts by `EVALSHA` on fred), PostgreSQL and MariaDB (their
//!   `statements()` on the store's own pool) and DynamoDB (its
//!   `acquire_request` and `release_request` on the store's SDK client)
//!   have one. A single Redis or Valkey server's floor also runs the same
//!   scripts on the `redis` crate's (redis-rs) multiplexed connection, to
//!   tell what the driver costs (a comparison, not a floor).
//! - The **round-trip reference** is the store's cheapest request on the
//!   store's own client (`PING`, `SELECT 1` on a connection kept from the
//!   store's pool, `GetItem`): a reference line, not a target. Memory has no
//!   server: its floor is an uncontended `tokio::sync::Mutex` lock + unlock.
//!
//! Stores connect to the local services (`cargo xtask services up`) through
//! `verrou-testkit`, with the same addresses, environment variables and
//! connect timeout as their tests.

use std::sync::Arc;

use verrou_core::store::AutoPrune;
use verrou_core::{BoxError, Expiry, LockStore, async_trait};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
use verrou_memory::MemoryStore;
use verrou_mysql::MysqlStore;
use verrou_mysql::mysql_async::prelude::Queryable;
use verrou_mysql::mysql_async::{Conn, Params, Pool as MysqlPool, Value as MysqlValue};
use verrou_postgres::PostgresStore;
use verrou_postgres::deadpool_postgres::{Object, Pool as PostgresPool};
use verrou_redis::RedisStore;
use verrou_redis::fred::clients::Client;
use verrou_redis::fred::interfaces::{ClientLike, LuaInterface};
use verrou_redis::fred::types::config::Options;
use verrou_redis::fred::types::{ClusterHash, CustomCommand, Value};
use verrou_redis::fred::util::{redis_keyslot, sha1_hash};
use verrou_testkit::{Service, StoreKind};

use crate::workloads::{CONCURRENT_TASKS, TTL};

/// Every store the bench runs, in report order: those with a round trip
/// below. (SQLite has none yet: its round trip is a file, not a server.)
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
/// An unknown name, or a store the bench has no round trip for.
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
/// Our pools get one more, kept by the round trip.
pub const POOL: usize = 16;

/// The SQL stores' third same-work floor runs this many tasks on the
/// store's pool: verrou's default pool size (`max_connections`), the
/// concurrency a pool of verrou's own serves without queueing. The bench's
/// pool has [`POOL`] connections, so these tasks never wait for one.
pub const SQL_DEFAULT_POOL_TASKS: usize = 8;

/// The server-bound Redis floor: this many connections of its own ...
pub const REDIS_SERVER_BOUND_CONNECTIONS: usize = 4;
/// ... with this many acquire + release loops in flight on each (fred
/// pipelines them), enough to keep a single-threaded server busy.
pub const REDIS_SERVER_BOUND_IN_FLIGHT: usize = 32;

/// A store under test.
pub struct Subject {
    /// Which store.
    pub kind: StoreKind,
    /// The store, shared by every lock of the run.
    pub store: Arc<dyn LockStore>,
    /// Its round-trip reference (memory: its mutex floor).
    pub round_trip: Arc<RoundTrip>,
    /// Its same-work floor, when the store has one.
    pub same_work: Option<Arc<SameWorkFloor>>,
    /// What opening it has to say in the report (a comparison not run).
    pub notes: Vec<String>,
}

impl Subject {
    /// The workloads this store runs, in order: the same-work floors only
    /// where there is one.
    pub fn workloads(&self) -> Vec<crate::sample::Workload> {
        crate::sample::Workload::ALL
            .into_iter()
            .filter(|&w| match &self.same_work {
                None => !w.is_floor(),
                // A store without a third floor (DynamoDB) skips it, one
                // without a driver comparison (all but single Redis and
                // Valkey servers) skips those.
                Some(floor) if w == crate::sample::Workload::FloorServerBound => {
                    !floor.third.is_empty()
                }
                Some(floor) if w.is_driver_comparison() => floor.driver_comparison.is_some(),
                Some(_) => true,
            })
            .collect()
    }
}

/// One connection (or pool) of a store's driver on which a same-work floor
/// sends the store's own acquire and release, exactly as the store sends
/// them, with nothing of verrou's in between.
#[async_trait]
pub trait Lane: Send + Sync {
    /// Readies the lane before a measured window (loads scripts, prepares
    /// statements); not timed.
    async fn prepare(&self) -> Result<(), BoxError>;
    /// The store's acquire of the free `key` for `owner`; an error unless it
    /// took the lock.
    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError>;
    /// The store's release of `key` held by `owner`; an error unless it
    /// released the lock.
    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError>;
}

/// A store's same-work floor: where its statements go at each concurrency.
pub struct SameWorkFloor {
    /// What it sends, for the report.
    pub label: String,
    /// The store's own connection or pool, as the store's own sequential
    /// and concurrent workloads use it.
    pub shared: Arc<dyn Lane>,
    /// What `shared` is, for the report: `the store's connection`, `the
    /// store's pool`.
    pub shared_is: &'static str,
    /// The third floor's lanes, each with how many tasks run on it: Redis,
    /// server-bound on connections of its own with many operations in
    /// flight; SQL, verrou's default pool size on the store's pool;
    /// DynamoDB, none (empty).
    pub third: Vec<(Arc<dyn Lane>, usize)>,
    /// The third floor's shape, for the report: `server-bound (4
    /// connections × 32 in flight)`; `None` without a third floor.
    pub third_shape: Option<String>,
    /// The same work on another driver, run at 1 task and at
    /// [`CONCURRENT_TASKS`] tasks beside the shared lane: a single Redis or
    /// Valkey server's scripts on one redis-rs multiplexed connection.
    /// Reported, never a floor a target divides by; `None` elsewhere.
    pub driver_comparison: Option<Arc<dyn Lane>>,
}

impl SameWorkFloor {
    /// What the report says of these floors.
    pub fn labels(&self) -> crate::FloorLabels {
        crate::FloorLabels {
            what: self.label.clone(),
            shared: self.shared_is.to_owned(),
            third: self.third_shape.clone(),
            driver_comparison: self.driver_comparison.is_some(),
        }
    }

    /// The tasks of the concurrent floor: [`CONCURRENT_TASKS`] on the
    /// store's connection or pool, like the store's concurrent workload.
    pub fn concurrent_lanes(&self) -> Vec<(Arc<dyn Lane>, usize)> {
        vec![(self.shared.clone(), CONCURRENT_TASKS)]
    }

    /// The tasks of the third floor.
    pub fn third_lanes(&self) -> Vec<(Arc<dyn Lane>, usize)> {
        self.third.clone()
    }
}

/// The store's cheapest request on the store's own client: a round-trip
/// reference (memory: its floor).
pub enum RoundTrip {
    /// Memory has no server: an uncontended `tokio::sync::Mutex` lock + unlock.
    Memory(tokio::sync::Mutex<()>),
    /// `PING` on the store's connection (one node of a Cluster).
    Redis(RedisStore, &'static str),
    /// `SELECT 1`, prepared once, on a connection kept from the store's pool.
    Postgres(Box<Kept<PostgresStore, Object>>),
    /// `SELECT 1` (prepared once: mysql_async caches statements per
    /// connection) on a connection kept from the store's pool.
    Mysql(Box<Kept<MysqlStore, Conn>>),
    /// A strongly consistent `GetItem` on the lock table (the store's reads
    /// are strongly consistent too).
    DynamoDb(DynamoDbStore),
}

impl RoundTrip {
    /// What it measures, for the report.
    pub fn label(&self) -> &'static str {
        match self {
            RoundTrip::Memory(_) => "tokio::sync::Mutex lock+unlock",
            RoundTrip::Redis(_, label) => label,
            RoundTrip::Postgres(_) => "Postgres SELECT 1",
            RoundTrip::Mysql(_) => "MariaDB SELECT 1",
            RoundTrip::DynamoDb(_) => "DynamoDB GetItem",
        }
    }

    /// One bare round trip.
    pub async fn run(&self) -> Result<(), BoxError> {
        match self {
            RoundTrip::Memory(mutex) => drop(mutex.lock().await),
            RoundTrip::Redis(store, _) => {
                let _: String = store.client().ping(None).await?;
            }
            RoundTrip::Postgres(kept) => {
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
            RoundTrip::Mysql(kept) => {
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
                let _: Option<MysqlValue> = conn.exec_first("SELECT 1", ()).await?;
                *slot = Some(conn);
            }
            RoundTrip::DynamoDb(store) => {
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

/// A connection taken from a store's pool once and kept for the round trip.
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

    /// The store whose pool the connection came from.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// Where a Redis lane sends: the store's own client (the next of its pool,
/// as the store picks it) or a connection of the lane's own.
enum RedisConnection {
    Store(RedisStore),
    Own(Client),
}

/// The store's default counter retention (one hour) in milliseconds, as it
/// sends it to the acquire script.
const RETENTION_MS: &str = "3600000";

/// The lock's name (`p{k}`) as the store names it: the bench's keys and
/// prefixes have none of the characters the store escapes, so the name
/// needs no escaping.
fn redis_lock_name(prefix: &str, key: &str) -> Result<String, BoxError> {
    let special = |s: &str| s.contains(['{', '}', '\\']);
    if special(prefix) || special(key) {
        return Err(format!("the Redis floor does not escape `{prefix}{key}`").into());
    }
    Ok(format!("{prefix}{{{key}}}"))
}

/// [`verrou_redis::scripts::ACQUIRE`] and [`verrou_redis::scripts::RELEASE`]
/// by `EVALSHA` on fred, with the keys, arguments and per-command options
/// the store uses (at most one send, the store's default operation timeout),
/// sent the way the store sends them (a custom command routed by the first
/// key's slot) but without its `NOSCRIPT` fallback: the scripts are loaded
/// before each measured window.
struct RedisLane {
    connection: RedisConnection,
    options: Options,
    prefix: String,
    acquire_sha: Value,
    release_sha: Value,
    /// The lock TTL the workloads use, in milliseconds, as the store sends it.
    ttl_ms: Value,
    /// The store's default counter retention (one hour), as it sends it.
    retention_ms: Value,
}

impl RedisLane {
    fn new(connection: RedisConnection, prefix: &str) -> RedisLane {
        RedisLane {
            connection,
            options: Options {
                // The store's per-command options (`RedisStore::new`): never
                // resend, bounded by the default operation timeout (5 s).
                max_attempts: Some(1),
                timeout: Some(std::time::Duration::from_secs(5)),
                ..Options::default()
            },
            prefix: prefix.to_owned(),
            acquire_sha: Value::from(sha1_hash(verrou_redis::scripts::ACQUIRE)),
            release_sha: Value::from(sha1_hash(verrou_redis::scripts::RELEASE)),
            ttl_ms: Value::from(TTL.as_millis().to_string()),
            retention_ms: Value::from(RETENTION_MS),
        }
    }

    fn client(&self) -> &Client {
        match &self.connection {
            RedisConnection::Store(store) => store.client(),
            RedisConnection::Own(client) => client,
        }
    }

    fn lock_name(&self, key: &str) -> Result<String, BoxError> {
        redis_lock_name(&self.prefix, key)
    }

    /// `EVALSHA sha nkeys keys... args...`, routed by the first key's slot.
    async fn evalsha(
        &self,
        sha: &Value,
        keys: &[&str],
        args: Vec<Value>,
    ) -> Result<Value, BoxError> {
        let mut line = Vec::with_capacity(2 + keys.len() + args.len());
        line.push(sha.clone());
        line.push(Value::Integer(i64::try_from(keys.len())?));
        line.extend(keys.iter().map(|&key| Value::from(key)));
        line.extend(args);
        let slot = keys.first().map_or(ClusterHash::Random, |key| {
            ClusterHash::Custom(redis_keyslot(key.as_bytes()))
        });
        let command = CustomCommand::new_static("EVALSHA", slot, false);
        let client = self.client().with_options(&self.options);
        Ok(client.custom::<Value, Value>(command, line).await?)
    }
}

#[async_trait]
impl Lane for RedisLane {
    async fn prepare(&self) -> Result<(), BoxError> {
        // Loaded on every primary of a Cluster; SCRIPT LOAD is idempotent,
        // and again before each window in case the server restarted.
        for lua in [
            verrou_redis::scripts::ACQUIRE,
            verrou_redis::scripts::RELEASE,
        ] {
            if self.client().is_clustered() {
                self.client().script_load_cluster::<(), _>(lua).await?;
            } else {
                let _: String = self.client().script_load(lua).await?;
            }
        }
        Ok(())
    }

    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let lock = self.lock_name(key)?;
        let fence = format!("{lock}:fence");
        let reply = self
            .evalsha(
                &self.acquire_sha,
                &[&lock, &fence],
                vec![
                    Value::from(owner),
                    self.ttl_ms.clone(),
                    self.retention_ms.clone(),
                ],
            )
            .await?;
        match reply {
            Value::Integer(token) if token > 0 => Ok(()),
            other => Err(format!("the acquire script answered {other:?} on a fresh key").into()),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let lock = self.lock_name(key)?;
        let channel = format!("{lock}:released");
        let reply = self
            .evalsha(
                &self.release_sha,
                &[&lock],
                vec![Value::from(owner), Value::from(channel)],
            )
            .await?;
        match reply {
            Value::Integer(1) => Ok(()),
            other => Err(format!("the release script answered {other:?} for its holder").into()),
        }
    }
}

/// The same `EVALSHA`s as [`RedisLane`] (scripts, keys, arguments, reply
/// checks) on the `redis` crate's (redis-rs) multiplexed async connection:
/// one connection, cloned for each command as redis-rs means it to be (the
/// clones share its one socket and pipeline whatever is in flight). Its
/// response timeout is the store's operation timeout (5 s), and it never
/// resends. Single servers only: no cluster routing. It tells what fred
/// costs, if anything, against another driver doing the same work.
struct RedisRsLane {
    connection: redis::aio::MultiplexedConnection,
    prefix: String,
    acquire_sha: String,
    release_sha: String,
    ttl_ms: String,
}

impl RedisRsLane {
    /// Connects to the server at `url` (a `redis://` URL: this build of
    /// redis-rs has no TLS).
    async fn connect(url: &str, prefix: &str) -> Result<RedisRsLane, BoxError> {
        let timeout = Some(std::time::Duration::from_secs(5));
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let connection = redis::Client::open(url)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(RedisRsLane {
            connection,
            prefix: prefix.to_owned(),
            acquire_sha: sha1_hash(verrou_redis::scripts::ACQUIRE),
            release_sha: sha1_hash(verrou_redis::scripts::RELEASE),
            ttl_ms: TTL.as_millis().to_string(),
        })
    }

    /// `EVALSHA sha nkeys keys... args...` on a clone of the connection.
    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        args: &[&str],
    ) -> Result<redis::Value, BoxError> {
        let mut command = redis::cmd("EVALSHA");
        command.arg(sha).arg(keys.len()).arg(keys).arg(args);
        let mut connection = self.connection.clone();
        Ok(command.query_async(&mut connection).await?)
    }
}

#[async_trait]
impl Lane for RedisRsLane {
    async fn prepare(&self) -> Result<(), BoxError> {
        // As on fred: loaded again before each window; the server must name
        // them by the digests the lane sends.
        for (lua, sha) in [
            (verrou_redis::scripts::ACQUIRE, &self.acquire_sha),
            (verrou_redis::scripts::RELEASE, &self.release_sha),
        ] {
            let mut connection = self.connection.clone();
            let loaded: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(lua)
                .query_async(&mut connection)
                .await?;
            if loaded != *sha {
                return Err(format!("SCRIPT LOAD answered {loaded}, not {sha}").into());
            }
        }
        Ok(())
    }

    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let lock = redis_lock_name(&self.prefix, key)?;
        let fence = format!("{lock}:fence");
        let reply = self
            .evalsha(
                &self.acquire_sha,
                &[&lock, &fence],
                &[owner, &self.ttl_ms, RETENTION_MS],
            )
            .await?;
        match reply {
            redis::Value::Int(token) if token > 0 => Ok(()),
            other => Err(format!("the acquire script answered {other:?} on a fresh key").into()),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let lock = redis_lock_name(&self.prefix, key)?;
        let channel = format!("{lock}:released");
        let reply = self
            .evalsha(&self.release_sha, &[&lock], &[owner, &channel])
            .await?;
        match reply {
            redis::Value::Int(1) => Ok(()),
            other => Err(format!("the release script answered {other:?} for its holder").into()),
        }
    }
}

/// Why a Redis store's floor has no redis-rs comparison, when it has none.
const NO_DRIVER_COMPARISON_ON_CLUSTER: &str = "fred vs redis-rs not run: the comparison runs on single Redis and Valkey servers only (redis-rs's cluster client is another connection model)";

/// The Redis same-work floor of `store` on `service`: its own client for
/// the sequential and concurrent floors, [`REDIS_SERVER_BOUND_CONNECTIONS`]
/// clients made from the same configuration (as the store makes its
/// subscriber), and on a single server a redis-rs connection to the same
/// URL for the driver comparison.
async fn redis_same_work(
    store: &RedisStore,
    service: Service,
    server: &str,
) -> Result<SameWorkFloor, String> {
    let shared = RedisLane::new(RedisConnection::Store(store.clone()), store.prefix());
    let commands = store.client();
    let mut server_bound: Vec<Arc<dyn Lane>> = Vec::new();
    for _ in 0..REDIS_SERVER_BOUND_CONNECTIONS {
        let client = Client::new(
            commands.client_config(),
            Some(commands.perf_config()),
            Some(commands.connection_config().clone()),
            commands.client_reconnect_policy(),
        );
        let connect = async {
            client.init().await?;
            Ok::<_, verrou_redis::fred::error::Error>(())
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), connect)
            .await
            .map_err(|_| "the floor's own connection timed out".to_owned())?
            .map_err(|e| format!("the floor's own connection: {e}"))?;
        server_bound.push(Arc::new(RedisLane::new(
            RedisConnection::Own(client),
            store.prefix(),
        )));
    }
    let driver_comparison: Option<Arc<dyn Lane>> = if service == Service::RedisCluster {
        None
    } else {
        let lane = RedisRsLane::connect(&service.url(), store.prefix())
            .await
            .map_err(|e| {
                format!(
                    "the redis-rs connection: {}",
                    crate::workloads::describe(e.as_ref())
                )
            })?;
        Some(Arc::new(lane))
    };
    Ok(SameWorkFloor {
        label: format!("{server} acquire + release scripts (EVALSHA on fred)"),
        shared: Arc::new(shared),
        shared_is: "the store's connection",
        third_shape: Some(format!(
            "server-bound ({} connections × {REDIS_SERVER_BOUND_IN_FLIGHT} in flight)",
            server_bound.len()
        )),
        third: server_bound
            .into_iter()
            .map(|lane| (lane, REDIS_SERVER_BOUND_IN_FLIGHT))
            .collect(),
        driver_comparison,
    })
}

/// The lock TTL the workloads use, in whole milliseconds, as the SQL
/// stores send it (`$3`, `?`): 30 s is a whole number of them, so the
/// stores' rounding up does not apply.
fn ttl_millis() -> Option<i64> {
    i64::try_from(TTL.as_millis()).ok()
}

/// The same-work floor of a SQL store on its own pool: `lane` shared by 1,
/// [`CONCURRENT_TASKS`] and [`SQL_DEFAULT_POOL_TASKS`] tasks.
fn sql_same_work(label: String, lane: Arc<dyn Lane>) -> SameWorkFloor {
    SameWorkFloor {
        label,
        shared: lane.clone(),
        shared_is: "the store's pool",
        third_shape: Some(format!(
            "{SQL_DEFAULT_POOL_TASKS} tasks on the store's pool (verrou's default pool size)"
        )),
        third: vec![(lane, SQL_DEFAULT_POOL_TASKS)],
        driver_comparison: None,
    }
}

/// [`verrou_postgres::Statements`]' `acquire` and `release`, as the store
/// runs them: each statement on a connection checked out of the store's
/// own `deadpool-postgres` pool (its TLS and session settings), prepared
/// once per connection by `prepare_cached` (the cache the store's own calls
/// fill, keyed by the same SQL), sent by `query` with the store's
/// parameters. Without the store's operation timeout, its cancel-on-timeout
/// and its background prune every [`AutoPrune::EVERY`] acquisitions.
struct PostgresLane {
    pool: PostgresPool,
    acquire: String,
    release: String,
    ttl_ms: Option<i64>,
}

impl PostgresLane {
    fn new(store: &PostgresStore) -> Result<PostgresLane, String> {
        let sql = store.statements();
        Ok(PostgresLane {
            pool: store
                .pool()
                .ok_or("the store has no deadpool-postgres pool")?
                .clone(),
            acquire: sql.acquire.clone(),
            release: sql.release.clone(),
            ttl_ms: ttl_millis(),
        })
    }
}

#[async_trait]
impl Lane for PostgresLane {
    async fn prepare(&self) -> Result<(), BoxError> {
        // On the connection the pool hands out now; the others prepare on
        // their first statement (the warm-up round's, or the store's own:
        // the cache is per connection and keyed by the SQL, shared with the
        // store).
        let client = self.pool.get().await?;
        client.prepare_cached(&self.acquire).await?;
        client.prepare_cached(&self.release).await?;
        Ok(())
    }

    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.acquire).await?;
        let rows = client
            .query(&statement, &[&key, &owner, &self.ttl_ms])
            .await?;
        let token: Option<i64> = rows.first().map(|row| row.try_get(0)).transpose()?;
        match token {
            Some(token) if token > 0 => Ok(()),
            other => Err(format!("the acquire statement answered {other:?} on a fresh key").into()),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.release).await?;
        let rows = client.query(&statement, &[&key, &owner]).await?;
        match rows.len() {
            1 => Ok(()),
            n => Err(format!("the release statement answered {n} rows for its holder").into()),
        }
    }
}

/// [`verrou_mysql::Statements`]' `acquire` and `release`, as the store runs
/// them: each statement on a connection checked out of the store's own
/// `mysql_async` pool (its TLS and session settings), by `exec_first` with
/// the store's parameters (key and owner as bytes, the TTL in
/// milliseconds), which prepares it once per connection (mysql_async's
/// statement cache, keyed by the SQL, shared with the store). The token is
/// the last insert id; a release affects one row. Without the store's
/// timeouts, its kill-on-abandon guard, its deadlock retry and its
/// background prune every [`AutoPrune::EVERY`] acquisitions.
struct MysqlLane {
    pool: MysqlPool,
    acquire: String,
    release: String,
    ttl_ms: MysqlValue,
}

impl MysqlLane {
    fn new(store: &MysqlStore) -> Result<MysqlLane, String> {
        let sql = store.statements();
        Ok(MysqlLane {
            pool: store
                .pool()
                .ok_or("the store has no mysql_async pool")?
                .clone(),
            acquire: sql.acquire.clone(),
            release: sql.release.clone(),
            ttl_ms: ttl_millis().map_or(MysqlValue::NULL, MysqlValue::Int),
        })
    }
}

#[async_trait]
impl Lane for MysqlLane {
    async fn prepare(&self) -> Result<(), BoxError> {
        // As for PostgreSQL: this connection now, the others on first use.
        let mut conn = self.pool.get_conn().await?;
        conn.prep(&self.acquire).await?;
        conn.prep(&self.release).await?;
        Ok(())
    }

    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let mut conn = self.pool.get_conn().await?;
        let key = MysqlValue::Bytes(key.as_bytes().to_vec());
        let owner = MysqlValue::Bytes(owner.as_bytes().to_vec());
        let params = Params::Positional(vec![
            key,
            owner.clone(),
            self.ttl_ms.clone(),
            owner,
            self.ttl_ms.clone(),
        ]);
        let _: Option<MysqlValue> = conn.exec_first(&self.acquire, params).await?;
        match conn.last_insert_id().unwrap_or(0) {
            0 => Err("the acquire statement found a fresh key held".into()),
            _ => Ok(()),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let mut conn = self.pool.get_conn().await?;
        let params = Params::Positional(vec![
            MysqlValue::Bytes(key.as_bytes().to_vec()),
            MysqlValue::Bytes(owner.as_bytes().to_vec()),
        ]);
        let _: Option<MysqlValue> = conn.exec_first(&self.release, params).await?;
        match conn.affected_rows() {
            1 => Ok(()),
            n => Err(format!("the release statement affected {n} rows for its holder").into()),
        }
    }
}

/// [`DynamoDbStore::acquire_request`] and
/// [`DynamoDbStore::release_request`]: the store's own conditional
/// `UpdateItem`s (its expressions, names, values, return values and
/// retries turned off), sent bare on the store's SDK client. The acquire is
/// the store's common path, a free key (no takeover of a lease it watched
/// expire), with the workloads' TTL; the token must come back. Without the
/// store's operation timeout and its bookkeeping of leases it sees.
struct DynamoDbLane {
    store: DynamoDbStore,
}

#[async_trait]
impl Lane for DynamoDbLane {
    async fn prepare(&self) -> Result<(), BoxError> {
        // Nothing to load: the SDK client connects on first use (the round
        // trip's `GetItem` already did).
        Ok(())
    }

    async fn acquire(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        let output = self
            .store
            .acquire_request(key, owner, Expiry::After(TTL))?
            .send()
            .await?;
        match output.attributes().and_then(|a| a.get("fencing_token")) {
            Some(_) => Ok(()),
            None => Err("the acquire answered without a fencing token".into()),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), BoxError> {
        self.store.release_request(key, owner).send().await?;
        Ok(())
    }
}

/// Runs a SQL store's own prune statement bare, [`AutoPrune::BATCH`] rows
/// at a time (as its background prune does, so that no statement holds
/// many row locks while other suites share the server), until a batch
/// comes back short: deletes the free rows this run left whose tokens are
/// more than a second behind the server's clock (and any other free rows
/// that old, which the store's own prune would delete too). Returns how
/// many rows it deleted; `None` for a store without rows.
///
/// # Errors
/// The server failed a statement.
pub async fn sql_prune(round_trip: &RoundTrip) -> Option<Result<u64, BoxError>> {
    /// More batches than this would mean others keep filling the table.
    const MAX_BATCHES: u32 = 1000;
    if !matches!(round_trip, RoundTrip::Postgres(_) | RoundTrip::Mysql(_)) {
        return None;
    }
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        let n = match prune_batch(round_trip).await {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        deleted += n;
        if n < u64::from(AutoPrune::BATCH) {
            break;
        }
    }
    Some(Ok(deleted))
}

/// One batch of [`sql_prune`]: the store's prune statement with a limit of
/// [`AutoPrune::BATCH`] rows, on a connection of its pool.
async fn prune_batch(round_trip: &RoundTrip) -> Result<u64, BoxError> {
    match round_trip {
        RoundTrip::Postgres(kept) => {
            let store = kept.store();
            let client = store.pool().ok_or("no deadpool pool")?.get().await?;
            // `$1`: the most rows to delete; one row: how many were.
            let limit = Some(i64::from(AutoPrune::BATCH));
            let row = client
                .query_one(&store.statements().prune, &[&limit])
                .await?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?)?)
        }
        RoundTrip::Mysql(kept) => {
            let store = kept.store();
            let mut conn = store
                .pool()
                .ok_or("no mysql_async pool")?
                .get_conn()
                .await?;
            // The most rows to delete; affected rows: how many were.
            conn.exec_drop(&store.statements().prune, (u64::from(AutoPrune::BATCH),))
                .await?;
            Ok(conn.affected_rows())
        }
        _ => Err("not a SQL store".into()),
    }
}

/// Opens the store `kind` on its local service.
///
/// # Errors
/// A store the bench does not run, or the service cannot be reached.
pub async fn open(kind: StoreKind) -> Result<Subject, String> {
    let describe = |e: verrou_core::LockError| crate::workloads::describe(&e);
    let mut same_work = None;
    let mut notes = Vec::new();
    let (store, round_trip): (Arc<dyn LockStore>, RoundTrip) = match kind {
        StoreKind::Memory => (
            Arc::new(MemoryStore::new()),
            RoundTrip::Memory(tokio::sync::Mutex::new(())),
        ),
        StoreKind::Redis | StoreKind::RedisCluster | StoreKind::Valkey => {
            let service = kind.service().ok_or("a Redis store without a server")?;
            let store = verrou_testkit::redis(service)
                .build()
                .await
                .map_err(describe)?;
            let (server, ping) = match service {
                Service::Valkey => ("Valkey", "Valkey PING"),
                Service::RedisCluster => ("Redis Cluster", "Redis Cluster PING (one node)"),
                _ => ("Redis", "Redis PING"),
            };
            same_work = Some(Arc::new(redis_same_work(&store, service, server).await?));
            if service == Service::RedisCluster {
                notes.push(NO_DRIVER_COMPARISON_ON_CLUSTER.to_owned());
            }
            (Arc::new(store.clone()), RoundTrip::Redis(store, ping))
        }
        StoreKind::Postgres => {
            let store = verrou_testkit::postgres()
                .max_connections(POOL + 1)
                .build()
                .await
                .map_err(describe)?;
            same_work = Some(Arc::new(sql_same_work(
                "PostgreSQL acquire + release statements (prepared, tokio-postgres on the store's pool)".into(),
                Arc::new(PostgresLane::new(&store)?),
            )));
            (
                Arc::new(store.clone()),
                RoundTrip::Postgres(Box::new(Kept::new(store))),
            )
        }
        StoreKind::Mysql => {
            let store = verrou_testkit::mysql()
                .max_connections(POOL + 1)
                .build()
                .await
                .map_err(describe)?;
            same_work = Some(Arc::new(sql_same_work(
                "MariaDB acquire + release statements (prepared, mysql_async on the store's pool)"
                    .into(),
                Arc::new(MysqlLane::new(&store)?),
            )));
            (
                Arc::new(store.clone()),
                RoundTrip::Mysql(Box::new(Kept::new(store))),
            )
        }
        StoreKind::DynamoDb => {
            let store = verrou_testkit::dynamodb().build().await.map_err(describe)?;
            same_work = Some(Arc::new(SameWorkFloor {
                label:
                    "DynamoDB acquire + release UpdateItem (the store's requests on its SDK client)"
                        .into(),
                shared: Arc::new(DynamoDbLane {
                    store: store.clone(),
                }),
                shared_is: "the store's client",
                // No server-bound floor: the emulator is not DynamoDB, and
                // the store's client is the only one a lock would use.
                third_shape: None,
                third: Vec::new(),
                driver_comparison: None,
            }));
            (Arc::new(store.clone()), RoundTrip::DynamoDb(store))
        }
        other => return Err(format!("the bench has no round trip for `{other}`")),
    };
    let round_trip = Arc::new(round_trip);
    // One round trip now, so that a store whose server is down is reported
    // here, not as a failed workload.
    round_trip.run().await.map_err(|e| {
        format!(
            "{}: {}",
            round_trip.label(),
            crate::workloads::describe(e.as_ref())
        )
    })?;
    if let Some(floor) = &same_work {
        let lanes = std::iter::once(&floor.shared).chain(&floor.driver_comparison);
        for lane in lanes {
            lane.prepare().await.map_err(|e| {
                format!(
                    "{}: {}",
                    floor.label,
                    crate::workloads::describe(e.as_ref())
                )
            })?;
        }
    }
    Ok(Subject {
        kind,
        store,
        round_trip,
        same_work,
        notes,
    })
}

/// Deletes every key of a single Redis server whose name matches `pattern`
/// (`SCAN` + `UNLINK`, a page at a time), so that a run leaves none of its
/// counters behind. Returns how many it deleted.
///
/// # Errors
/// The server failed a command.
pub async fn redis_delete_matching(client: &Client, pattern: &str) -> Result<u64, BoxError> {
    let mut cursor = "0".to_owned();
    let mut deleted = 0u64;
    loop {
        let command = CustomCommand::new_static("SCAN", ClusterHash::Random, false);
        let page: Value = client
            .custom(
                command,
                vec![
                    Value::from(cursor.as_str()),
                    Value::from("MATCH"),
                    Value::from(pattern),
                    Value::from("COUNT"),
                    Value::from("10000"),
                ],
            )
            .await?;
        let Value::Array(mut page) = page else {
            return Err(format!("SCAN answered {page:?}").into());
        };
        if page.len() != 2 {
            return Err(format!("SCAN answered {page:?}").into());
        }
        let keys = page.pop().unwrap_or(Value::Null);
        cursor = page
            .pop()
            .and_then(|c| c.into_string())
            .ok_or("SCAN answered without a cursor")?;
        if let Value::Array(keys) = keys
            && !keys.is_empty()
        {
            let command = CustomCommand::new_static("UNLINK", ClusterHash::FirstKey, false);
            let n: i64 = client.custom(command, keys).await?;
            deleted += u64::try_from(n).unwrap_or(0);
        }
        if cursor == "0" {
            return Ok(deleted);
        }
    }
}
