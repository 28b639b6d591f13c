//! A local Redis Cluster for the `verrou-redis` tests: three primaries and
//! three replicas on 127.0.0.1:7000-7005, data under
//! `target/services/redis-cluster`, no persistence.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Service;
use crate::process::{port_open, run, wait_for_port};

const PORTS: [u16; 6] = [7000, 7001, 7002, 7003, 7004, 7005];
const WAIT: Duration = Duration::from_secs(60);

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
    let dir = data_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot wipe {}: {e}", dir.display()))?;
    }
    for port in PORTS {
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir)
            .map_err(|e| format!("cannot create {}: {e}", node_dir.display()))?;
        let node_dir = node_dir.display().to_string();
        let port = port.to_string();
        let settings = [
            ("--port", port.as_str()),
            ("--bind", "127.0.0.1"),
            ("--cluster-enabled", "yes"),
            ("--cluster-config-file", "nodes.conf"),
            ("--cluster-node-timeout", "5000"),
            ("--dir", node_dir.as_str()),
            ("--logfile", "redis.log"),
            ("--daemonize", "yes"),
            ("--save", ""),
            ("--appendonly", "no"),
        ];
        let args: Vec<&str> = settings.iter().flat_map(|(k, v)| [*k, *v]).collect();
        run("redis-server", &args)?;
    }
    for port in PORTS {
        wait_for_port("redis-cluster node", port, WAIT)?;
    }
    let nodes: Vec<String> = PORTS.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
    run("redis-cli", &args)?;
    let started = Instant::now();
    while !cluster_ok() {
        if started.elapsed() > WAIT {
            return Err(format!(
                "cluster_state is not ok on every node after {WAIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Shuts every node down (without saving) and waits until their ports close.
fn stop() -> Result<(), String> {
    for port in PORTS {
        if port_open(port) {
            let _ = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "shutdown", "nosave"])
                .output();
        }
    }
    let started = Instant::now();
    while PORTS.iter().any(|&p| port_open(p)) {
        if started.elapsed() > WAIT {
            return Err(format!("redis-cluster nodes still answer after {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether every node answers and says `cluster_state:ok`.
fn cluster_ok() -> bool {
    PORTS.iter().all(|&port| {
        port_open(port)
            && Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
    })
}

fn data_dir() -> PathBuf {
    // xtask lives in `<workspace>/xtask`.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("target/services/redis-cluster"))
        .unwrap_or_else(|| std::env::temp_dir().join("verrou-redis-cluster"))
}
