//! A Redis Cluster of the run's own, so that failing it over disturbs nobody.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, log_tail, sh, wait_ready};
use crate::torture::worker::Rng;

const NODES: usize = 6;
const WAIT: Duration = Duration::from_secs(60);

/// Six redis-servers on free ports (three primaries, three replicas), each
/// with `appendonly yes` and `appendfsync always`, data in a temporary
/// directory.
#[derive(Debug)]
pub(in crate::torture) struct PrivateRedisCluster {
    pub(in crate::torture) ports: Vec<u16>,
    dir: PathBuf,
    nodes: Vec<Child>,
    rng: Rng,
}

/// The cluster as every node sees it, once they all agree.
#[derive(Debug, PartialEq, Eq)]
struct Topology {
    /// Ports of the primaries that serve slots, sorted.
    primaries: Vec<u16>,
    /// `(replica, its primary)` ports, sorted.
    replicas: Vec<(u16, u16)>,
}

impl PrivateRedisCluster {
    pub(in crate::torture) fn start() -> Result<Self, String> {
        // Cluster bus ports are set too: the default (port + 10000) may be
        // taken or past 65535.
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 2 * NODES {
            let port = free_port()?;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let bus_ports = ports.split_off(NODES);
        let dir = std::env::temp_dir().join(format!("verrou-torture-redis-cluster-{}", ports[0]));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = PrivateRedisCluster {
            ports,
            dir,
            nodes: Vec::new(),
            rng: Rng::seeded(),
        };
        for (&port, bus_port) in cluster.ports.iter().zip(bus_ports) {
            let node_dir = cluster.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| format!("{}: {e}", node_dir.display()))?;
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(&node_dir)
                .arg("--logfile")
                .arg(node_dir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            let ready = wait_ready(
                &format!("redis-server (cluster node) on port {port}"),
                &mut child,
                WAIT,
                || redis(port, &["PING"]).is_some_and(|out| out.contains("PONG")),
            );
            cluster.nodes.push(child);
            ready.map_err(|e| format!("{e}; log: {}", log_tail(&node_dir.join("redis.log"))))?;
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let d = cluster.dir.display();
        sh(&format!(
            "redis-cli --cluster create {} --cluster-replicas 1 --cluster-yes >{d}/create.log 2>&1 || {{ tail -5 {d}/create.log >&2; false; }}",
            nodes.join(" ")
        ))?;
        cluster.wait_for(|_| true, "the new cluster")?;
        Ok(cluster)
    }

    /// Cuts every client connection of every node (`CLIENT KILL TYPE
    /// normal`; replication links and the cluster bus stay up).
    pub(in crate::torture) fn kill_connections(&self) -> Result<(), String> {
        for &port in &self.ports {
            redis(port, &["CLIENT", "KILL", "TYPE", "normal"])
                .ok_or_else(|| format!("CLIENT KILL on port {port} failed"))?;
        }
        Ok(())
    }

    /// A manual `CLUSTER FAILOVER` of a replica chosen at random, without
    /// FORCE or TAKEOVER: its primary stops accepting writes until the
    /// replica has caught up, so nothing acknowledged is lost. Returns once
    /// every node sees the replica as a primary and the cluster is ok.
    pub(in crate::torture) fn failover(&mut self) -> Result<(), String> {
        let topology = self.wait_for(|_| true, "the cluster before a failover")?;
        let (replica, primary) =
            topology.replicas[self.rng.below(topology.replicas.len() as u64) as usize];
        let answer = redis(replica, &["CLUSTER", "FAILOVER"]).unwrap_or_default();
        if answer.trim() != "OK" {
            return Err(format!(
                "CLUSTER FAILOVER on replica {replica}: {}",
                answer.trim()
            ));
        }
        self.wait_for(
            |t| t.primaries.contains(&replica) && t.replicas.contains(&(primary, replica)),
            &format!("replica {replica} to take over from primary {primary}"),
        )?;
        Ok(())
    }

    /// Waits until every node agrees on a healthy topology that `wanted`
    /// accepts: `cluster_state:ok`, three primaries with slots, each with a
    /// replica whose replication link is up.
    fn wait_for(&self, wanted: impl Fn(&Topology) -> bool, what: &str) -> Result<Topology, String> {
        let started = Instant::now();
        loop {
            match self.topology() {
                Ok(t) if wanted(&t) => return Ok(t),
                Ok(t) if started.elapsed() > WAIT => {
                    return Err(format!("waited {WAIT:?} for {what}; the cluster is {t:?}"));
                }
                Err(e) if started.elapsed() > WAIT => {
                    return Err(format!("waited {WAIT:?} for {what}: {e}"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The topology every node agrees on, or why there is none.
    fn topology(&self) -> Result<Topology, String> {
        let mut agreed: Option<Topology> = None;
        for &port in &self.ports {
            let info = redis(port, &["CLUSTER", "INFO"]).unwrap_or_default();
            if !info.contains("cluster_state:ok") {
                return Err(format!("node {port} is not cluster_state:ok"));
            }
            let seen = view(port)?;
            match &agreed {
                Some(t) if *t != seen => {
                    return Err(format!("node {port} sees {seen:?}, another {t:?}"));
                }
                Some(_) => {}
                None => agreed = Some(seen),
            }
        }
        let topology = agreed.ok_or("no nodes")?;
        for &(replica, _) in &topology.replicas {
            let info = redis(replica, &["INFO", "replication"]).unwrap_or_default();
            if !info.contains("master_link_status:up") {
                return Err(format!("replica {replica}: replication link not up"));
            }
        }
        Ok(topology)
    }
}

/// The topology node `port` reports in `CLUSTER NODES`, if it is whole:
/// every node connected and none failing, three primaries with slots, three
/// replicas.
fn view(port: u16) -> Result<Topology, String> {
    let nodes = redis(port, &["CLUSTER", "NODES"]).ok_or(format!("node {port} down"))?;
    // id → (port, primary id or "-", serves slots)
    let mut known = Vec::new();
    for line in nodes.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return Err(format!("node {port}: cannot read `{line}`"));
        }
        let flags = fields[2];
        if fields[7] != "connected"
            || flags
                .split(',')
                .any(|f| matches!(f, "fail" | "fail?" | "handshake" | "noaddr"))
        {
            return Err(format!("node {port} sees `{line}`"));
        }
        let node_port = fields[1]
            .split(['@', ','])
            .next()
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or(format!("node {port}: no port in `{line}`"))?;
        let primary = flags.split(',').any(|f| f == "master");
        known.push((fields[0], node_port, primary, fields[3], fields.len() > 8));
    }
    let mut primaries: Vec<u16> = known.iter().filter(|n| n.2 && n.4).map(|n| n.1).collect();
    let mut replicas = Vec::new();
    for &(_, replica, is_primary, primary_id, _) in &known {
        if is_primary {
            continue;
        }
        let primary = known
            .iter()
            .find(|n| n.0 == primary_id)
            .map(|n| n.1)
            .ok_or(format!("node {port}: replica {replica} of an unknown node"))?;
        replicas.push((replica, primary));
    }
    primaries.sort_unstable();
    replicas.sort_unstable();
    let whole = primaries.len() == NODES / 2
        && replicas.len() == NODES / 2
        && primaries
            .iter()
            .all(|p| replicas.iter().filter(|(_, of)| of == p).count() == 1);
    if whole {
        Ok(Topology {
            primaries,
            replicas,
        })
    } else {
        Err(format!(
            "node {port} sees primaries {primaries:?}, replicas {replicas:?}"
        ))
    }
}

/// `redis-cli -p port args...`: its output, if it ran.
fn redis(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for node in self.nodes.drain(..) {
            super::crash(Some(node));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
