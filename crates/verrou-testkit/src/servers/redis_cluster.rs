//! A Redis Cluster: three primaries and three replicas on 127.0.0.1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Persistence;
use super::process::{
    answers_ping, crash, free_port, log_tail, poll_until, port_open, redis_cli as redis, sh,
    wait_ready,
};

const NODES: usize = 6;
const WAIT: Duration = Duration::from_secs(60);

/// Six redis-servers (three primaries, three replicas), by default children
/// of this process on free ports with their data in a temporary directory:
/// dropping the handle kills them (SIGKILL) and removes it. `start` returns
/// once every node agrees on the topology, says `cluster_state:ok`, and
/// every replica's link to its primary is up.
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    dir: PathBuf,
    remove_dir: bool,
    daemonized: bool,
    nodes: Vec<Child>,
}

/// Options of a [`RedisCluster`]; [`start`](Self::start) starts it.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisClusterBuilder {
    ports: Option<[u16; NODES]>,
    dir: Option<PathBuf>,
    persistence: Persistence,
    daemonize: bool,
}

/// The cluster as every node sees it, once they all agree.
#[derive(Debug, PartialEq, Eq)]
struct Topology {
    /// Ports of the primaries that serve slots, sorted.
    primaries: Vec<u16>,
    /// `(replica, its primary)` ports, sorted.
    replicas: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// A cluster on free ports, without persistence, in a fresh temporary
    /// directory.
    ///
    /// # Errors
    /// `redis-server` is not installed, a node did not start, or the cluster
    /// did not form within 60 s.
    pub fn start() -> Result<Self, String> {
        Self::builder().start()
    }

    /// Options: the ports, the directory, persistence, daemonizing.
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder {
            ports: None,
            dir: None,
            persistence: Persistence::None,
            daemonize: false,
        }
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis-cluster://127.0.0.1:<first port>`.
    pub fn url(&self) -> String {
        format!("redis-cluster://127.0.0.1:{}", self.ports[0])
    }

    /// Whether every node on `ports` answers and says `cluster_state:ok`
    /// (a cluster this process did not start, such as the shared one).
    pub fn is_ok(ports: &[u16]) -> bool {
        ports.iter().all(|&port| {
            port_open(port)
                && redis(port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
        })
    }

    /// Shuts the nodes on `ports` down (`SHUTDOWN NOSAVE`) and waits until
    /// their ports close: how a daemonized cluster is stopped.
    ///
    /// # Errors
    /// A node still answers after 60 s.
    pub fn shut_down(ports: &[u16]) -> Result<(), String> {
        for &port in ports {
            if port_open(port) {
                let _ = redis(port, &["SHUTDOWN", "NOSAVE"]);
            }
        }
        poll_until("the cluster's nodes to stop", WAIT, || {
            !ports.iter().any(|&port| port_open(port))
        })
    }

    /// Cuts every client connection of every node (`CLIENT KILL TYPE
    /// normal`; replication links and the cluster bus stay up).
    ///
    /// # Errors
    /// `redis-cli` failed on a node.
    pub fn kill_connections(&self) -> Result<(), String> {
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
    ///
    /// # Errors
    /// The failover was refused, or the cluster did not settle within 60 s.
    pub fn failover(&mut self) -> Result<(), String> {
        let topology = self.wait_for(|_| true, "the cluster before a failover")?;
        let pick = getrandom::u64().map_err(|e| format!("no randomness: {e}"))?;
        let (replica, primary) =
            topology.replicas[(pick % topology.replicas.len() as u64) as usize];
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

impl Drop for RedisCluster {
    fn drop(&mut self) {
        if self.daemonized {
            return;
        }
        for node in self.nodes.drain(..) {
            crash(Some(node));
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl RedisClusterBuilder {
    /// The six nodes' ports (default: free ports); their cluster bus ports
    /// are then the default, each port + 10000.
    pub fn ports(mut self, ports: [u16; NODES]) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Keep the nodes' files in `dir`, one directory per port, created if
    /// missing and left behind (default: a fresh temporary directory, removed
    /// on drop).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// How every node keeps its data (default: [`Persistence::None`]).
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Daemonize every node (`--daemonize yes`): the cluster outlives this
    /// process and dropping the handle leaves it running (`cargo xtask
    /// services`); [`RedisCluster::shut_down`] stops it.
    pub fn daemonize(mut self) -> Self {
        self.daemonize = true;
        self
    }

    /// Starts the nodes, creates the cluster (`redis-cli --cluster create`,
    /// one replica per primary) and waits until it is whole.
    ///
    /// # Errors
    /// A node did not start, the creation failed, or the cluster did not
    /// settle within 60 s (messages end with the log concerned).
    pub fn start(self) -> Result<RedisCluster, String> {
        // Free ports get free cluster bus ports too: the default (port +
        // 10000) may be taken or past 65535.
        let (ports, bus_ports) = match self.ports {
            Some(ports) => (ports.to_vec(), None),
            None => {
                let mut ports: Vec<u16> = Vec::new();
                while ports.len() < 2 * NODES {
                    let port = free_port()?;
                    if !ports.contains(&port) {
                        ports.push(port);
                    }
                }
                let bus = ports.split_off(NODES);
                (ports, Some(bus))
            }
        };
        let (dir, remove_dir) = match self.dir {
            Some(dir) => (dir, false),
            None => {
                let dir = std::env::temp_dir().join(format!("verrou-redis-cluster-{}", ports[0]));
                let _ = std::fs::remove_dir_all(&dir);
                (dir, true)
            }
        };
        let mut cluster = RedisCluster {
            ports,
            dir,
            remove_dir,
            daemonized: self.daemonize,
            nodes: Vec::new(),
        };
        for (i, &port) in cluster.ports.iter().enumerate() {
            let node_dir = cluster.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| format!("{}: {e}", node_dir.display()))?;
            let log = node_dir.join("redis.log");
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000"])
                .args(self.persistence.args())
                .arg("--dir")
                .arg(&node_dir)
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(bus) = &bus_ports {
                command.args(["--cluster-port", &bus[i].to_string()]);
            }
            let what = format!("redis-server (cluster node) on port {port}");
            let failed = |e: String| format!("{e}; log: {}", log_tail(&log));
            if self.daemonize {
                let status = command
                    .args(["--daemonize", "yes", "--pidfile"])
                    .arg(node_dir.join("redis.pid"))
                    .status()
                    .map_err(|e| format!("cannot start redis-server: {e}"))?;
                if !status.success() {
                    return Err(failed(format!("{what} exited ({status})")));
                }
                poll_until(&what, WAIT, || answers_ping(port)).map_err(failed)?;
            } else {
                let mut child = command
                    .spawn()
                    .map_err(|e| format!("cannot start redis-server: {e}"))?;
                let ready = wait_ready(&what, &mut child, WAIT, || answers_ping(port));
                cluster.nodes.push(child);
                ready.map_err(failed)?;
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_forms_fails_over_and_goes_away() {
        let Some(mut cluster) =
            crate::require_service("redis-server binary", RedisCluster::start())
        else {
            return;
        };
        let ports = cluster.ports().to_vec();
        assert!(RedisCluster::is_ok(&ports));
        let before = cluster.topology().unwrap();
        cluster.failover().unwrap();
        let after = cluster.topology().unwrap();
        assert_ne!(before.primaries, after.primaries);
        assert_eq!(after.primaries.len(), 3);
        cluster.kill_connections().unwrap();
        drop(cluster);
        assert!(ports.iter().all(|&port| !port_open(port)));
    }

    /// Six free ports whose default cluster bus ports (+10000) are free too,
    /// as 7000-7005 are for `cargo xtask services`.
    fn fixed_ports() -> [u16; NODES] {
        let mut ports = Vec::new();
        while ports.len() < NODES {
            let port = free_port().unwrap();
            let bus_free = port
                .checked_add(10_000)
                .is_some_and(|bus| std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok());
            if bus_free && !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports.try_into().unwrap()
    }

    #[test]
    fn a_daemonized_cluster_on_fixed_ports_outlives_its_handle_until_shut_down() {
        let ports = fixed_ports();
        let dir = std::env::temp_dir().join(crate::unique("verrou-cluster-daemon"));
        let started = RedisCluster::builder()
            .ports(ports)
            .dir(&dir)
            .daemonize()
            .start();
        let Some(cluster) = crate::require_service("redis-server binary", started) else {
            return;
        };
        assert_eq!(
            cluster.url(),
            format!("redis-cluster://127.0.0.1:{}", ports[0])
        );
        drop(cluster);
        assert!(RedisCluster::is_ok(&ports));
        RedisCluster::shut_down(&ports).unwrap();
        assert!(!RedisCluster::is_ok(&ports));
        let _ = std::fs::remove_dir_all(dir);
    }
}
