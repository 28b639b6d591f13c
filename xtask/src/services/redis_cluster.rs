//! A local Redis Cluster for the `verrou-redis` tests: three primaries and
//! three replicas on 127.0.0.1:7000-7005, data under
//! `target/services/redis-cluster`, no persistence. Started by
//! `verrou_testkit::servers::RedisCluster`, the bootstrap the torture tool
//! uses for its private clusters, daemonized so it outlives xtask.

use verrou_testkit::servers::RedisCluster;

use super::{Service, services_dir};

pub(super) const PORTS: [u16; 6] = [7000, 7001, 7002, 7003, 7004, 7005];

pub fn service() -> Service {
    Service {
        name: "redis-cluster",
        port: PORTS[0],
        start,
        stop,
        healthy: Some(cluster_ok),
    }
}

/// Starts the six nodes and creates the cluster. A healthy cluster is left
/// alone; leftovers of a broken one (some nodes up, stale node files) are
/// killed and wiped first, because a node that remembers an old cluster
/// refuses to join a new one.
fn start() -> Result<(), String> {
    if cluster_ok() {
        eprintln!("redis-cluster: already healthy");
        return Ok(());
    }
    stop()?;
    let dir = services_dir().join("redis-cluster");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot wipe {}: {e}", dir.display()))?;
    }
    RedisCluster::builder()
        .ports(PORTS)
        .dir(dir)
        .daemonize()
        .start()
        .map(drop)
}

/// Shuts every node down (without saving) and waits until their ports close.
fn stop() -> Result<(), String> {
    RedisCluster::shut_down(&PORTS)
}

/// Whether every node answers and says `cluster_state:ok`.
fn cluster_ok() -> bool {
    RedisCluster::is_ok(&PORTS)
}
