//! Servers of the run's own on free ports (Redis, Redis Cluster, PostgreSQL,
//! MariaDB, the DynamoDB emulator), so that restarting them or failing them
//! over disturbs no other test.

mod dynalite;
mod mariadb;
mod redis_cluster;

pub(super) use dynalite::PrivateDynalite;
pub(super) use mariadb::PrivateMariadb;
pub(super) use redis_cluster::PrivateRedisCluster;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server of the run's own on a free port, so restarting it disturbs
/// nobody else.
#[derive(Debug)]
pub(super) struct PrivateRedis {
    pub(super) port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(super) fn start(work_dir: &Path, persistent: bool) -> Result<Self, String> {
        let port = free_port()?;
        let dir = work_dir.join("redis");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut server = PrivateRedis {
            port,
            dir,
            persistent,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let persistence: &[&str] = if self.persistent {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let ping = Command::new("redis-cli")
                .args(["-p", &port, "PING"])
                .output()
                .map_err(|e| e.to_string())?;
            if String::from_utf8_lossy(&ping.stdout).contains("PONG") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("redis-server on port {port} did not answer"))
    }

    /// A crash (SIGKILL) and a start from whatever the server had on disk.
    pub(super) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    pub(super) fn kill(&mut self) {
        crash(self.child.take());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server of the run's own, so restarting it disturbs nobody.
#[derive(Debug)]
pub(super) struct PrivatePostgres {
    pub(super) port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub(super) fn start() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL binaries: {e}"))?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .ok_or("no initdb under /usr/lib/postgresql")?;
        let port = free_port()?;
        // Outside the checkout: the server runs as `postgres`, which must
        // own its data directory.
        let dir = std::env::temp_dir().join(format!("verrou-torture-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let pg = PrivatePostgres { port, dir, bin };
        let d = pg.dir.display();
        sh(&format!(
            "mkdir -p {d} && chown postgres {d} && su postgres -c '{}/initdb -D {d} -A trust -U postgres' >/dev/null",
            pg.bin.display()
        ))?;
        pg.ctl("start")?;
        Ok(pg)
    }

    fn ctl(&self, action: &str) -> Result<(), String> {
        let d = self.dir.display();
        sh(&format!(
            "su postgres -c \"{}/pg_ctl -D {d} -l {d}/log -w -m immediate -o '-p {} -k {d} -c listen_addresses=127.0.0.1' {action}\" >/dev/null",
            self.bin.display(),
            self.port
        ))
    }

    /// An immediate shutdown (no checkpoint, like a crash) and a start with
    /// WAL recovery.
    pub(super) fn restart(&self) -> Result<(), String> {
        self.ctl("restart")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port())
}

/// Polls `ready` until it holds, for at most `limit`; gives up at once if
/// `child` (the server being waited for) exits.
fn wait_ready(
    what: &str,
    child: &mut Child,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited ({status})"));
        }
        if started.elapsed() > limit {
            return Err(format!("{what} not ready after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the shell line succeeds, its output discarded.
fn quietly(line: &str) -> bool {
    Command::new("sh")
        .args(["-c", line])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The last lines of a server's log, for an error message.
/// SIGKILLs a server process (a crash, nothing flushed) and reaps it.
fn crash(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

pub(super) fn sh(line: &str) -> Result<(), String> {
    let status = Command::new("sh")
        .args(["-c", line])
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed: {status}"))
    }
}
