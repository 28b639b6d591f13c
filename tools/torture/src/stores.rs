//! Every store the torture run knows: how a worker connects to it, and how the
//! runner sets it up, cuts its connections and restarts it.
//!
//! Adding a store is one arm in [`connect`] and one in [`StoreSetup::start`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use verrou_core::{Acquisition, LeasePolicy, LockError, LockFactory, LockStore, async_trait};
use verrou_dynamodb::DynamoDbStore;
use verrou_memory::MemoryStore;
use verrou_mysql::MysqlStore;
use verrou_postgres::PostgresStore;
use verrou_redis::RedisStore;
use verrou_sqlite::SqliteStore;

use super::servers::{
    PrivateDynalite, PrivateMariadb, PrivatePostgres, PrivateRedis, PrivateRedisCluster, sh,
};

/// Stores in the order a run visits them (`redis-volatile` is asked for by
/// name: it demonstrates a failure). Each
/// also has a renewal run, `<store>-renewal` (see [`mode`](super::mode)).
pub const ALL: &[&str] = &[
    "memory",
    "sqlite",
    "postgres",
    "mysql",
    "redis",
    "redis-cluster",
    "dynamodb",
];

/// The table (or key prefix) the torture uses, apart from the tests' own.
const TABLE: &str = "verrou_torture_locks";
/// How PostgreSQL and MariaDB connections of the workers are recognised when
/// the runner cuts them.
const PG_APP: &str = "verrou_torture";
const MYSQL_DB: &str = "verrou_torture";
const DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";
const REDIS_CLUSTER_URL: &str = "redis-cluster://127.0.0.1:7000";

/// Connects a worker to the store `name` at `url`; a renewal run's name
/// (`redis-renewal`) connects to its store with renewing leases.
///
/// # Errors
/// An unknown store or a failed connection, displayed.
pub async fn connect(name: &str, url: &str) -> Result<LockFactory, String> {
    let (name, renewing) = super::mode::parse(name);
    let locks = connect_store(name, url).await?;
    Ok(if renewing {
        locks.with_lease(LeasePolicy::renewing())
    } else {
        locks
    })
}

async fn connect_store(name: &str, url: &str) -> Result<LockFactory, String> {
    let failed = |e: LockError| format!("{name}: {}", super::worker::error_chain(&e));
    let locks = match name {
        "memory" => LockFactory::new(MemoryStore::new()),
        "broken" => LockFactory::new(BrokenStore::default()),
        "sqlite" => LockFactory::new(
            SqliteStore::builder()
                .path(url)
                .table_name(TABLE)
                .busy_timeout(Duration::from_secs(10))
                .build()
                .await
                .map_err(failed)?,
        ),
        "postgres" => LockFactory::new(
            PostgresStore::builder()
                .url(url)
                .table_name(TABLE)
                .max_connections(2)
                .build()
                .await
                .map_err(failed)?,
        ),
        "mysql" => LockFactory::new(
            MysqlStore::builder()
                .url(url)
                .table_name(TABLE)
                .max_connections(2)
                .build()
                .await
                .map_err(failed)?,
        ),
        "redis" | "redis-volatile" | "redis-cluster" => LockFactory::new(
            RedisStore::builder()
                .url(url)
                .prefix("verrou-torture:")
                .build()
                .await
                .map_err(failed)?,
        ),
        "dynamodb" => LockFactory::new(
            // No clock-skew margin: the store's takeover rule (a lease seen
            // unchanged for its whole length) does not compare clocks, and
            // half the workers' clocks run ahead to prove it.
            DynamoDbStore::builder()
                .endpoint(url)
                .region("us-east-1")
                .credentials("torture", "torture")
                .table_name(TABLE)
                .build()
                .await
                .map_err(failed)?,
        ),
        other => return Err(format!("unknown store `{other}`")),
    };
    Ok(locks)
}

/// What the runner knows about the store under test.
#[derive(Debug)]
pub struct StoreSetup {
    /// The store's name, as given to [`connect`].
    pub name: String,
    /// What workers get as `url`.
    pub url: String,
    /// Workers are threads sharing one store value (the memory store) rather
    /// than processes.
    pub threads: bool,
    /// The run demonstrates a misconfiguration: violations are expected and
    /// do not fail the run.
    pub expect_violations: bool,
    /// What the report should say about this store's promises.
    pub notes: Vec<String>,
    /// At most this many operations (a slow emulator).
    pub max_ops: Option<u64>,
    /// In the short run, this many times the asked-for operations (a fast
    /// store, so that it still lives through a fair number of faults).
    pub ops_factor: u64,
    faults: Vec<&'static str>,
    /// The run's own server, which the run may restart or fail over.
    private: Option<Private>,
    /// PostgreSQL's or MariaDB's port, where connections are cut.
    sql_port: u16,
}

/// A server the run started for itself; dropping it stops it.
#[derive(Debug)]
enum Private {
    Redis(PrivateRedis),
    Postgres(PrivatePostgres),
    Mariadb(PrivateMariadb),
    RedisCluster(PrivateRedisCluster),
    Dynalite(PrivateDynalite),
}

/// Creates the torture's database on the MariaDB server at `port`.
fn create_mysql_database(port: u16) -> Result<(), String> {
    sh(&format!(
        "mariadb -uroot -h127.0.0.1 -P{port} -e 'CREATE DATABASE IF NOT EXISTS {MYSQL_DB}'"
    ))
}

impl StoreSetup {
    fn new(name: &str, url: String, notes: &[&str]) -> Self {
        StoreSetup {
            name: name.into(),
            url,
            threads: false,
            expect_violations: false,
            notes: notes.iter().map(|n| (*n).to_owned()).collect(),
            max_ops: None,
            ops_factor: 1,
            faults: Vec::new(),
            private: None,
            sql_port: 0,
        }
    }

    /// Prepares the store `name` (starting a private server where the run
    /// restarts it). `full` enables the slow faults.
    ///
    /// # Errors
    /// When the store is unknown or its server cannot be prepared.
    pub fn start(name: &str, full: bool, work_dir: &Path) -> Result<Self, String> {
        let setup = match name {
            "broken" => {
                let mut s = StoreSetup::new(
                    name,
                    String::new(),
                    &["a deliberately broken store that grants every acquire: the run must fail"],
                );
                s.threads = true;
                s
            }
            "memory" => {
                let mut s = StoreSetup::new(
                    name,
                    String::new(),
                    &[
                        "workers are threads of one process (a memory store cannot be shared by processes); `kill -9` is simulated by abandoning the held lock, `SIGSTOP` by stalling inside the critical section",
                    ],
                );
                s.threads = true;
                s.ops_factor = 4;
                s
            }
            "sqlite" => {
                let path = work_dir.join("locks.sqlite");
                StoreSetup::new(
                    name,
                    path.display().to_string(),
                    &[
                        "all worker processes open one database file; expiry is judged by each process's clock (one machine here)",
                    ],
                )
            }
            "postgres" if full => {
                let pg = PrivatePostgres::start()?;
                let mut s = StoreSetup::new(
                    name,
                    format!(
                        "postgres://postgres@127.0.0.1:{}/postgres?application_name={PG_APP}",
                        pg.port
                    ),
                    &[
                        "a private PostgreSQL server (initdb, fsync on) on a free port: the workers' connections are cut with `pg_terminate_backend`, and the server is restarted with `pg_ctl restart -m immediate` (a crash: no shutdown checkpoint, WAL recovery on start)",
                    ],
                );
                s.sql_port = pg.port;
                s.private = Some(Private::Postgres(pg));
                s.faults.extend(["kill_connections", "restart"]);
                s
            }
            "postgres" => {
                let mut s = StoreSetup::new(
                    name,
                    format!("postgres://postgres@127.0.0.1:5432/test?application_name={PG_APP}"),
                    &[
                        "the workers' connections are cut with `pg_terminate_backend`; the shared server is not restarted in the short run (other tests use it; the full run restarts a private server)",
                    ],
                );
                s.sql_port = 5432;
                s.faults.push("kill_connections");
                s
            }
            "mysql" if full => {
                let server = PrivateMariadb::start()?;
                let mut s = StoreSetup::new(
                    name,
                    format!("mysql://root@127.0.0.1:{}/{MYSQL_DB}", server.port),
                    &[
                        "a private MariaDB server (`mariadb-install-db`, InnoDB with its default `innodb_flush_log_at_trx_commit=1`) on a free port: the workers' connections are cut with `KILL`, and the server is killed with SIGKILL and started again on the same data directory (a crash: InnoDB crash recovery on start)",
                    ],
                );
                s.sql_port = server.port;
                s.private = Some(Private::Mariadb(server));
                create_mysql_database(s.sql_port)?;
                s.faults.extend(["kill_connections", "restart"]);
                s
            }
            "mysql" => {
                create_mysql_database(3306)?;
                let mut s = StoreSetup::new(
                    name,
                    format!("mysql://root@127.0.0.1:3306/{MYSQL_DB}"),
                    &[
                        "MariaDB; the workers' connections are cut with `KILL`; the shared server is not restarted in the short run (other tests use it; the full run restarts a private server)",
                    ],
                );
                s.sql_port = 3306;
                s.faults.push("kill_connections");
                s
            }
            "redis" | "redis-volatile" => {
                let persistent = name == "redis";
                let server = PrivateRedis::start(work_dir, persistent)?;
                let mut s =
                    StoreSetup::new(name, format!("redis://127.0.0.1:{}", server.port), &[]);
                s.private = Some(Private::Redis(server));
                s.faults.extend(["kill_connections", "restart"]);
                if persistent {
                    s.notes.push("a private redis-server with `appendonly yes`, `appendfsync always`; connections cut with `CLIENT KILL TYPE normal`, the server killed with SIGKILL and restarted from its AOF".into());
                } else {
                    s.expect_violations = true;
                    s.notes.push("DEMONSTRATION: a private redis-server without persistence (`save \"\"`, `appendonly no`), killed and restarted. Every lock and every fencing counter is lost on restart, so a second holder gets a lock that is still held and tokens start again from 1. Violations are expected here; configure `appendonly yes` with `appendfsync always` (or `everysec` and accept up to a second of loss) for locks that survive a restart".into());
                }
                s
            }
            "redis-cluster" if full => {
                let cluster = PrivateRedisCluster::start()?;
                let mut s = StoreSetup::new(
                    name,
                    format!("redis-cluster://127.0.0.1:{}", cluster.ports[0]),
                    &[
                        "a private 6-node cluster (3 primaries, 3 replicas, each node with `appendonly yes`, `appendfsync always`) on free ports: connections cut with `CLIENT KILL TYPE normal` on every node, and a manual `CLUSTER FAILOVER` (no FORCE, no TAKEOVER) of a replica chosen at random: its primary stops taking writes until the replica has caught up, so nothing acknowledged is lost; the run goes on once every node sees the replica as the new primary and reports `cluster_state:ok`",
                        "not shown here: replication is asynchronous, so a failover after a primary crashes (automatic, or FORCE/TAKEOVER) can lose a lock that was just granted (Redis Cluster gives no stronger promise)",
                    ],
                );
                s.private = Some(Private::RedisCluster(cluster));
                s.faults.extend(["kill_connections", "failover"]);
                s
            }
            "redis-cluster" => StoreSetup::new(
                name,
                REDIS_CLUSTER_URL.into(),
                &[
                    "the shared 6-node cluster of `cargo xtask services` (127.0.0.1:7000-7005); no connection kills or failovers in the short run, because other tests use it (the full run fails a private cluster over). Replication is asynchronous: a failover after a primary crashes can lose a lock that was just granted (Redis Cluster gives no stronger promise)",
                ],
            ),
            "dynamodb" => {
                let mut s = StoreSetup::new(
                    name,
                    DYNAMODB_ENDPOINT.into(),
                    &[
                        "DynamoDB conditions have no server time, so no client compares another's lease end with its own clock: a lease is taken over only after it was seen unchanged for its whole length. Every other worker runs with its wall clock 500 ms ahead (libfaketime), more than the 400 ms TTL, with no clock-skew margin",
                    ],
                );
                if full {
                    let emulator = PrivateDynalite::start()?;
                    s.url = format!("http://127.0.0.1:{}", emulator.port);
                    s.notes.push("a private dynalite (as installed by `cargo xtask services`) on a free port, its tables in LevelDB on disk (`--path`): killed with SIGKILL and started again on the same files".into());
                    s.private = Some(Private::Dynalite(emulator));
                    s.faults.push("restart");
                } else {
                    s.notes.push("the shared emulator of `cargo xtask services`, not restarted in the short run (other tests use it; the full run restarts a private one); capped at 600 operations, the emulator (dynalite, Node) being the slowest store here".into());
                    s.max_ops = Some(600);
                }
                s
            }
            other => {
                return Err(format!(
                    "unknown store `{other}` (known: {})",
                    ALL.join(", ")
                ));
            }
        };
        Ok(setup)
    }

    /// Fault kinds this store supports besides killing and stopping workers.
    pub fn store_faults(&self) -> Vec<&'static str> {
        self.faults.clone()
    }

    /// Injects a store fault (`kill_connections`, `restart`, `failover`).
    ///
    /// # Errors
    /// When the fault could not be injected.
    pub fn inject(&mut self, kind: &str) -> Result<(), String> {
        match (kind, self.name.as_str(), self.private.as_mut()) {
            ("kill_connections", "postgres", _) => sh(&format!(
                "psql -h 127.0.0.1 -p {} -U postgres -d postgres -Atqc \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{PG_APP}'\" >/dev/null",
                self.sql_port
            )),
            ("kill_connections", "mysql", _) => {
                let client = format!("mariadb -uroot -h127.0.0.1 -P{}", self.sql_port);
                sh(&format!(
                    "for id in $({client} -N -e \"SELECT id FROM information_schema.processlist WHERE db = '{MYSQL_DB}' AND id <> CONNECTION_ID()\"); do {client} -e \"KILL $id\" 2>/dev/null; done; true"
                ))
            }
            ("kill_connections", _, Some(Private::Redis(server))) => sh(&format!(
                "redis-cli -p {} CLIENT KILL TYPE normal >/dev/null",
                server.port
            )),
            ("restart", _, Some(Private::Redis(server))) => server.restart(),
            ("restart", _, Some(Private::Postgres(pg))) => pg.restart(),
            ("restart", _, Some(Private::Mariadb(server))) => server.restart(),
            ("kill_connections", _, Some(Private::RedisCluster(cluster))) => {
                cluster.kill_connections()
            }
            ("failover", _, Some(Private::RedisCluster(cluster))) => cluster.failover(),
            ("restart", _, Some(Private::Dynalite(emulator))) => emulator.restart(),
            _ => Err(format!("{}: no fault `{kind}`", self.name)),
        }
    }

    /// Stops anything [`start`](Self::start) started.
    pub fn stop(&mut self) {
        self.private = None;
    }
}

/// A store that grants every acquire, held or not, with increasing tokens:
/// the harness's own test that it notices two holders.
#[derive(Debug, Default)]
pub struct BrokenStore {
    token: AtomicU64,
}

#[async_trait]
impl LockStore for BrokenStore {
    async fn acquire(
        &self,
        _: &str,
        _: &str,
        _: verrou_core::Expiry,
    ) -> Result<Acquisition, LockError> {
        Ok(Acquisition::Acquired {
            fencing_token: Some(self.token.fetch_add(1, Ordering::SeqCst) + 1),
        })
    }

    async fn release(&self, _: &str, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn force_release(&self, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn is_locked(&self, _: &str) -> Result<bool, LockError> {
        Ok(false)
    }

    async fn extend(&self, _: &str, _: &str, _: verrou_core::Expiry) -> Result<(), LockError> {
        Ok(())
    }
}
