//! A private `redis-server` for tests that kill connections or restart the
//! server, so the shared one on 6379 is never disturbed.

#![allow(dead_code)] // each test binary uses a part of it

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on a free port, in its own temp dir.
/// Dropping it kills the server and removes the dir, even when the test
/// panicked.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server, or says why it cannot (no `redis-server` binary).
    pub fn start() -> Result<Self, String> {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("verrou-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut server = PrivateRedis {
            port,
            dir,
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn restart(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        let started = Instant::now();
        while self.cli(&["ping"]).trim() != "PONG" {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!(
                    "private redis-server on port {} did not answer",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `SHUTDOWN NOSAVE`, then waits for the process to exit.
    pub fn shutdown(&mut self) {
        self.cli(&["shutdown", "nosave"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The `CLIENT LIST` lines of connections named `name`.
    pub fn clients_named(&self, name: &str) -> Vec<String> {
        let needle = format!(" name={name} ");
        self.cli(&["client", "list"])
            .lines()
            .filter(|line| line.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    /// Kills every connection named `name`; returns how many.
    pub fn kill_clients_named(&self, name: &str) -> usize {
        let ids: Vec<String> = self
            .clients_named(name)
            .iter()
            .filter_map(|line| {
                line.strip_prefix("id=")?
                    .split(' ')
                    .next()
                    .map(str::to_owned)
            })
            .collect();
        for id in &ids {
            self.cli(&["client", "kill", "id", id]);
        }
        ids.len()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `condition` every 20 ms; panics after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
