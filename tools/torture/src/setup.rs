//! How the runner prepares each target: the server (a private one where the
//! run restarts or fails it over, from `verrou_testkit::servers`), what the
//! workers connect to, the faults that apply, and what the report says about
//! the store's promises.
//!
//! Adding a store is one arm in [`StoreSetup::start`] and one in
//! [`connect`](crate::stores::connect).

use std::path::Path;
use std::process::Command;

use verrou_testkit::servers::{
    Dynalite, Mariadb, Persistence, Postgres, RedisCluster, RedisServer,
};
use verrou_testkit::{Service, StoreKind};

use crate::case::Target;
use crate::fault::Fault;

/// How PostgreSQL and MariaDB connections of the workers are recognised when
/// the runner cuts them.
const PG_APP: &str = "verrou_torture";
const MYSQL_DB: &str = "verrou_torture";

/// What the runner knows about the target under test.
#[derive(Debug)]
pub struct StoreSetup {
    /// What is tortured.
    pub target: Target,
    /// What workers get as `url`.
    pub url: String,
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
    /// The faults this run injects, in turn: worker faults (processes or
    /// threads) then the store's own.
    faults: Vec<Fault>,
    /// The run's own server, which the run may restart or fail over.
    private: Option<Private>,
    /// Where the workers' SQL connections are cut: `(host, port)`.
    sql_server: Option<(String, u16)>,
}

/// A server the run started for itself; dropping it stops it.
#[derive(Debug)]
enum Private {
    Redis(RedisServer),
    Postgres(Postgres),
    Mariadb(Mariadb),
    RedisCluster(RedisCluster),
    Dynalite(Dynalite),
}

/// What a worker process suffers whatever the store.
const PROCESS_FAULTS: [Fault; 2] = [Fault::Kill9, Fault::Stop];
/// What a worker thread suffers (the memory store lives in one process).
const THREAD_FAULTS: [Fault; 2] = [Fault::Stall, Fault::Crash];

impl StoreSetup {
    fn new(target: Target, url: String, notes: &[&str]) -> Self {
        let worker_faults = if target.threads() {
            THREAD_FAULTS
        } else {
            PROCESS_FAULTS
        };
        StoreSetup {
            target,
            url,
            expect_violations: false,
            notes: notes.iter().map(|n| (*n).to_owned()).collect(),
            max_ops: None,
            ops_factor: 1,
            faults: worker_faults.to_vec(),
            private: None,
            sql_server: None,
        }
    }

    /// Prepares `target` (starting a private server where the run restarts
    /// it). `full` enables the slow faults, on private servers.
    ///
    /// # Errors
    /// When the target's server cannot be prepared.
    pub fn start(target: Target, full: bool, work_dir: &Path) -> Result<Self, String> {
        match target {
            Target::Broken => Ok(broken()),
            Target::VolatileRedis => redis(target, work_dir, Persistence::None),
            Target::Store(kind) => match kind {
                StoreKind::Memory => Ok(memory()),
                StoreKind::Sqlite => Ok(sqlite(work_dir)),
                StoreKind::Postgres if full => private_postgres(),
                StoreKind::Postgres => Ok(shared_postgres()),
                StoreKind::Mysql if full => private_mysql(),
                StoreKind::Mysql => shared_mysql(),
                StoreKind::Redis => redis(target, work_dir, Persistence::AppendFsyncAlways),
                StoreKind::RedisCluster if full => private_redis_cluster(),
                StoreKind::RedisCluster => Ok(shared_redis_cluster()),
                StoreKind::DynamoDb if full => private_dynamodb(),
                StoreKind::DynamoDb => Ok(shared_dynamodb()),
                other => Err(format!("the torture does not run {other}")),
            },
        }
    }

    /// Whether the workers are threads sharing one store value rather than
    /// processes.
    pub fn threads(&self) -> bool {
        self.target.threads()
    }

    /// The faults this store's run injects, in turn.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Injects one of the store's own faults (cut connections, a restart, a
    /// failover; the runner injects the worker faults itself).
    ///
    /// # Errors
    /// When the fault does not apply to this store or could not be injected.
    pub fn inject(&mut self, fault: Fault) -> Result<(), String> {
        let sql = self.sql_server.as_ref();
        match (fault, self.target, &mut self.private) {
            (Fault::KillConnections, Target::Store(StoreKind::Postgres), _) => {
                let (host, port) = sql.ok_or("no PostgreSQL server")?;
                sh(&format!(
                    "psql -h {host} -p {port} -U postgres -d postgres -Atqc \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{PG_APP}'\" >/dev/null"
                ))
            }
            (Fault::KillConnections, Target::Store(StoreKind::Mysql), _) => {
                let (host, port) = sql.ok_or("no MariaDB server")?;
                let client = format!("mariadb -uroot -h{host} -P{port}");
                sh(&format!(
                    "for id in $({client} -N -e \"SELECT id FROM information_schema.processlist WHERE db = '{MYSQL_DB}' AND id <> CONNECTION_ID()\"); do {client} -e \"KILL $id\" 2>/dev/null; done; true"
                ))
            }
            (Fault::KillConnections, _, Some(Private::Redis(server))) => server.kill_connections(),
            (Fault::KillConnections, _, Some(Private::RedisCluster(cluster))) => {
                cluster.kill_connections()
            }
            (Fault::Restart, _, Some(Private::Redis(server))) => server.restart(),
            (Fault::Restart, _, Some(Private::Postgres(pg))) => pg.restart(),
            (Fault::Restart, _, Some(Private::Mariadb(server))) => server.restart(),
            (Fault::Restart, _, Some(Private::Dynalite(emulator))) => emulator.restart(),
            (Fault::Failover, _, Some(Private::RedisCluster(cluster))) => cluster.failover(),
            _ => Err(format!("{}: no fault `{fault}`", self.target)),
        }
    }

    /// Stops anything [`start`](Self::start) started.
    pub fn stop(&mut self) {
        self.private = None;
    }
}

fn broken() -> StoreSetup {
    StoreSetup::new(
        Target::Broken,
        String::new(),
        &["a deliberately broken store that grants every acquire: the run must fail"],
    )
}

fn memory() -> StoreSetup {
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::Memory),
        String::new(),
        &[
            "workers are threads of one process (a memory store cannot be shared by processes); `kill -9` is simulated by abandoning the held lock, `SIGSTOP` by stalling inside the critical section",
        ],
    );
    s.ops_factor = 4;
    s
}

fn sqlite(work_dir: &Path) -> StoreSetup {
    StoreSetup::new(
        Target::Store(StoreKind::Sqlite),
        work_dir.join("locks.sqlite").display().to_string(),
        &[
            "all worker processes open one database file; expiry is judged by each process's clock (one machine here)",
        ],
    )
}

fn private_postgres() -> Result<StoreSetup, String> {
    let pg = Postgres::start()?;
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::Postgres),
        format!("{}?application_name={PG_APP}", pg.url()),
        &[
            "a private PostgreSQL server (initdb, fsync on) on a free port: the workers' connections are cut with `pg_terminate_backend`, and the server is restarted with `pg_ctl restart -m immediate` (a crash: no shutdown checkpoint, WAL recovery on start)",
        ],
    );
    s.sql_server = Some(("127.0.0.1".into(), pg.port()));
    s.private = Some(Private::Postgres(pg));
    s.faults.extend([Fault::KillConnections, Fault::Restart]);
    Ok(s)
}

fn shared_postgres() -> StoreSetup {
    let url = Service::Postgres.url();
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::Postgres),
        with_query(&url, &format!("application_name={PG_APP}")),
        &[
            "the workers' connections are cut with `pg_terminate_backend`; the shared server is not restarted in the short run (other tests use it; the full run restarts a private server)",
        ],
    );
    s.sql_server = host_port(&url);
    s.faults.push(Fault::KillConnections);
    s
}

fn private_mysql() -> Result<StoreSetup, String> {
    let server = Mariadb::start()?;
    server.create_database(MYSQL_DB)?;
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::Mysql),
        server.url(MYSQL_DB),
        &[
            "a private MariaDB server (`mariadb-install-db`, InnoDB with its default `innodb_flush_log_at_trx_commit=1`) on a free port: the workers' connections are cut with `KILL`, and the server is killed with SIGKILL and started again on the same data directory (a crash: InnoDB crash recovery on start)",
        ],
    );
    s.sql_server = Some(("127.0.0.1".into(), server.port()));
    s.private = Some(Private::Mariadb(server));
    s.faults.extend([Fault::KillConnections, Fault::Restart]);
    Ok(s)
}

fn shared_mysql() -> Result<StoreSetup, String> {
    let url = Service::Mysql.url();
    let (host, port) = host_port(&url).ok_or_else(|| format!("no host:port in {url}"))?;
    sh(&format!(
        "mariadb -uroot -h{host} -P{port} -e 'CREATE DATABASE IF NOT EXISTS {MYSQL_DB}'"
    ))?;
    // The shared server's URL, on the torture's own database.
    let server = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(server, _)| server);
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::Mysql),
        format!("{server}/{MYSQL_DB}"),
        &[
            "MariaDB; the workers' connections are cut with `KILL`; the shared server is not restarted in the short run (other tests use it; the full run restarts a private server)",
        ],
    );
    s.sql_server = Some((host, port));
    s.faults.push(Fault::KillConnections);
    Ok(s)
}

/// A private redis-server (persistent for the store's run, volatile for the
/// demonstration), restarted by the run in both.
fn redis(target: Target, work_dir: &Path, persistence: Persistence) -> Result<StoreSetup, String> {
    let server = RedisServer::builder()
        .dir(work_dir.join("redis"))
        .persistence(persistence)
        .start()?;
    let mut s = StoreSetup::new(target, server.url(), &[]);
    s.private = Some(Private::Redis(server));
    s.faults.extend([Fault::KillConnections, Fault::Restart]);
    if persistence == Persistence::None {
        s.expect_violations = true;
        s.notes.push("DEMONSTRATION: a private redis-server without persistence (`save \"\"`, `appendonly no`), killed and restarted. Every lock and every fencing counter is lost on restart, so a second holder gets a lock that is still held and tokens start again from 1. Violations are expected here; configure `appendonly yes` with `appendfsync always` (or `everysec` and accept up to a second of loss) for locks that survive a restart".into());
    } else {
        s.notes.push("a private redis-server with `appendonly yes`, `appendfsync always`; connections cut with `CLIENT KILL TYPE normal`, the server killed with SIGKILL and restarted from its AOF".into());
    }
    Ok(s)
}

fn private_redis_cluster() -> Result<StoreSetup, String> {
    let cluster = RedisCluster::builder()
        .persistence(Persistence::AppendFsyncAlways)
        .start()?;
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::RedisCluster),
        cluster.url(),
        &[
            "a private 6-node cluster (3 primaries, 3 replicas, each node with `appendonly yes`, `appendfsync always`) on free ports: connections cut with `CLIENT KILL TYPE normal` on every node, and a manual `CLUSTER FAILOVER` (no FORCE, no TAKEOVER) of a replica chosen at random: its primary stops taking writes until the replica has caught up, so nothing acknowledged is lost; the run goes on once every node sees the replica as the new primary and reports `cluster_state:ok`",
            "not shown here: replication is asynchronous, so a failover after a primary crashes (automatic, or FORCE/TAKEOVER) can lose a lock that was just granted (Redis Cluster gives no stronger promise)",
        ],
    );
    s.private = Some(Private::RedisCluster(cluster));
    s.faults.extend([Fault::KillConnections, Fault::Failover]);
    Ok(s)
}

fn shared_redis_cluster() -> StoreSetup {
    StoreSetup::new(
        Target::Store(StoreKind::RedisCluster),
        Service::RedisCluster.url(),
        &[
            "the shared 6-node cluster of `cargo xtask services` (127.0.0.1:7000-7005); no connection kills or failovers in the short run, because other tests use it (the full run fails a private cluster over). Replication is asynchronous: a failover after a primary crashes can lose a lock that was just granted (Redis Cluster gives no stronger promise)",
        ],
    )
}

const DYNAMODB_NOTE: &str = "DynamoDB conditions have no server time, so no client compares another's lease end with its own clock: a lease is taken over only after it was seen unchanged for its whole length. Every other worker runs with its wall clock 500 ms ahead (libfaketime), more than the 400 ms TTL, with no clock-skew margin";

fn private_dynamodb() -> Result<StoreSetup, String> {
    let emulator = Dynalite::start()?;
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::DynamoDb),
        emulator.url(),
        &[DYNAMODB_NOTE],
    );
    s.notes.push("a private dynalite (found through `VERROU_DYNALITE` or `PATH`, as installed by `cargo xtask services`) on a free port, its tables in LevelDB on disk (`--path`): killed with SIGKILL and started again on the same files".into());
    s.private = Some(Private::Dynalite(emulator));
    s.faults.push(Fault::Restart);
    Ok(s)
}

fn shared_dynamodb() -> StoreSetup {
    let mut s = StoreSetup::new(
        Target::Store(StoreKind::DynamoDb),
        Service::DynamoDb.url(),
        &[DYNAMODB_NOTE],
    );
    s.notes.push("the shared emulator of `cargo xtask services`, not restarted in the short run (other tests use it; the full run restarts a private one); capped at 600 operations, the emulator (dynalite, Node) being the slowest store here".into());
    s.max_ops = Some(600);
    s
}

/// `url` with `query` added to its query string.
fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}

/// The host and port of `scheme://[user@]host:port[/...]`, for the SQL
/// command-line clients that cut connections (they take no URL).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = host_port.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Runs a shell line (the SQL clients that cut connections); fails on a
/// non-zero exit.
fn sh(line: &str) -> Result<(), String> {
    let status = Command::new("sh")
        .args(["-c", line])
        .status()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_clients_find_the_server_in_a_url() {
        assert_eq!(
            host_port("mysql://root@127.0.0.1:3306/test"),
            Some(("127.0.0.1".into(), 3306))
        );
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(host_port("postgres://localhost/test"), None);
        assert_eq!(
            with_query("postgres://h:1/db", "application_name=x"),
            "postgres://h:1/db?application_name=x"
        );
        assert_eq!(with_query("p://h:1/d?a=b", "c=d"), "p://h:1/d?a=b&c=d");
    }

    #[test]
    fn each_worker_kind_gets_its_own_faults() {
        assert_eq!(memory().faults(), THREAD_FAULTS);
        assert_eq!(sqlite(Path::new("/tmp")).faults(), PROCESS_FAULTS);
        assert!(shared_postgres().faults().contains(&Fault::KillConnections));
        assert_eq!(shared_redis_cluster().faults(), PROCESS_FAULTS);
    }
}
