//! One `redis-server` (or a server that speaks its protocol and takes its
//! options, such as `valkey-server`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{
    answers_ping, crash, free_port, log_tail, poll_until, port_open, redis_cli, wait_ready,
};

/// How long a starting server may take to answer `PING`.
const WAIT: Duration = Duration::from_secs(20);

/// How a Redis server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Persistence {
    /// Nothing on disk (`save ""`, `appendonly no`): a restart starts empty.
    #[default]
    None,
    /// Every write in the append-only file before it is acknowledged
    /// (`appendonly yes`, `appendfsync always`): a crash loses nothing
    /// acknowledged.
    AppendFsyncAlways,
}

impl Persistence {
    pub(super) fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::None => &["--save", "", "--appendonly", "no"],
            Persistence::AppendFsyncAlways => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
        }
    }
}

/// A Redis server on 127.0.0.1, by default a child of this process on a free
/// port with its files in a fresh temporary directory: dropping the handle
/// kills it (SIGKILL) and removes that directory, even when a test panicked.
///
/// ```no_run
/// # fn main() -> Result<(), String> {
/// use verrou_testkit::servers::RedisServer;
///
/// let mut server = RedisServer::start()?;
/// let url = server.url(); // redis://127.0.0.1:<port>
/// server.restart()?; // a crash and a start on the same port
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    program: PathBuf,
    dir: PathBuf,
    remove_dir: bool,
    log: PathBuf,
    persistence: Persistence,
    /// Daemonized (`--daemonize yes`) with this pid file: it outlives us.
    pid_file: Option<PathBuf>,
    child: Option<Child>,
}

/// Options of a [`RedisServer`]; [`start`](Self::start) starts it.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisServerBuilder {
    program: PathBuf,
    port: Option<u16>,
    dir: Option<PathBuf>,
    log: Option<PathBuf>,
    persistence: Persistence,
    pid_file: Option<PathBuf>,
}

impl RedisServer {
    /// A server on a free port, without persistence, in a fresh temporary
    /// directory.
    ///
    /// # Errors
    /// `redis-server` is not installed, or did not answer within 20 s.
    pub fn start() -> Result<Self, String> {
        Self::builder().start()
    }

    /// Options: the program, the port, the directory, persistence,
    /// daemonizing.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder {
            program: PathBuf::from("redis-server"),
            port: None,
            dir: None,
            log: None,
            persistence: Persistence::None,
            pid_file: None,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its data directory (`--dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A crash (SIGKILL; a daemonized server gets `SHUTDOWN NOSAVE`) if it
    /// runs, then a start on the same port from whatever it left on disk.
    ///
    /// # Errors
    /// The server did not come back within 20 s.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            crash(self.child.take());
        } else if self.pid_file.is_some() {
            self.shutdown();
        }
        self.spawn()
    }

    /// `SHUTDOWN NOSAVE`, then waits until the process has exited (or, when
    /// daemonized, its port has closed).
    pub fn shutdown(&mut self) {
        let _ = redis_cli(self.port, &["SHUTDOWN", "NOSAVE"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        } else {
            let _ = poll_until("the server's port to close", WAIT, || !port_open(self.port));
        }
    }

    /// Cuts every client connection (`CLIENT KILL TYPE normal`; replication
    /// links stay up).
    ///
    /// # Errors
    /// `redis-cli` failed.
    pub fn kill_connections(&self) -> Result<(), String> {
        redis_cli(self.port, &["CLIENT", "KILL", "TYPE", "normal"])
            .map(drop)
            .ok_or_else(|| format!("CLIENT KILL on port {} failed", self.port))
    }

    /// Runs `redis-cli` against this server and returns its output (empty
    /// when it failed).
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

    fn spawn(&mut self) -> Result<(), String> {
        let what = format!("{} on port {}", self.program.display(), self.port);
        let mut command = Command::new(&self.program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(self.persistence.args())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let failed = |e: String| format!("{e}; log: {}", log_tail(&self.log));
        if let Some(pid_file) = &self.pid_file {
            // The server forks and this command returns: nothing to watch
            // but the port.
            let status = command
                .args(["--daemonize", "yes", "--pidfile"])
                .arg(pid_file)
                .status()
                .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
            if !status.success() {
                return Err(failed(format!("{what} exited ({status})")));
            }
            return poll_until(&what, WAIT, || answers_ping(self.port)).map_err(failed);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let ready = wait_ready(&what, &mut child, WAIT, || answers_ping(self.port));
        self.child = Some(child);
        ready.map_err(failed)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.pid_file.is_some() {
            return;
        }
        crash(self.child.take());
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl RedisServerBuilder {
    /// The server program (default `redis-server` on `PATH`), for instance
    /// an installed `valkey-server`.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Listen on `port` (default: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keep the server's files in `dir`, created if missing and left behind
    /// (default: a fresh temporary directory, removed on drop).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Write the server's log to `path` (default: `redis.log` in its
    /// directory).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// How the server keeps its data (default: [`Persistence::None`]).
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Daemonize (`--daemonize yes`), writing the pid to `pid_file`: the
    /// server outlives this process and dropping the handle leaves it
    /// running (`cargo xtask services`).
    pub fn daemonize(mut self, pid_file: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(pid_file.into());
        self
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Errors
    /// The program is missing, the directory cannot be made, or the server
    /// did not answer within 20 s (the message ends with its log).
    pub fn start(self) -> Result<RedisServer, String> {
        let port = match self.port {
            Some(port) => port,
            None => free_port()?,
        };
        let (dir, remove_dir) = match self.dir {
            Some(dir) => (dir, false),
            None => (
                std::env::temp_dir().join(format!("verrou-redis-{}-{port}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = RedisServer {
            port,
            program: self.program,
            log: self.log.unwrap_or_else(|| dir.join("redis.log")),
            dir,
            remove_dir,
            persistence: self.persistence,
            pid_file: self.pid_file,
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(persistence: Persistence) -> Option<RedisServer> {
        crate::require_service(
            "redis-server binary",
            RedisServer::builder().persistence(persistence).start(),
        )
    }

    #[test]
    fn a_crash_keeps_what_the_append_only_file_holds_and_loses_the_rest() {
        let (Some(mut durable), Some(mut volatile)) = (
            start(Persistence::AppendFsyncAlways),
            start(Persistence::None),
        ) else {
            return;
        };
        for server in [&durable, &volatile] {
            assert_eq!(server.cli(&["SET", "k", "v"]).trim(), "OK");
        }
        durable.restart().unwrap();
        volatile.restart().unwrap();
        assert_eq!(durable.cli(&["GET", "k"]).trim(), "v");
        assert_eq!(volatile.cli(&["GET", "k"]).trim(), "");
    }

    #[test]
    fn dropping_the_handle_stops_the_server_and_removes_its_files() {
        let Some(server) = start(Persistence::None) else {
            return;
        };
        let (port, dir) = (server.port(), server.dir().to_owned());
        assert!(port_open(port));
        drop(server);
        assert!(!port_open(port));
        assert!(!dir.exists(), "{}", dir.display());
    }

    #[test]
    fn a_daemonized_server_outlives_its_handle_until_shut_down() {
        let dir = std::env::temp_dir().join(crate::unique("verrou-redis-daemon"));
        let started = RedisServer::builder()
            .dir(&dir)
            .daemonize(dir.join("redis.pid"))
            .start();
        let Some(server) = crate::require_service("redis-server binary", started) else {
            return;
        };
        let port = server.port();
        drop(server);
        assert!(answers_ping(port));
        let pid = std::fs::read_to_string(dir.join("redis.pid")).unwrap();
        assert!(pid.trim().parse::<u32>().is_ok(), "{pid}");
        let _ = redis_cli(port, &["SHUTDOWN", "NOSAVE"]);
        poll_until("the port to close", WAIT, || !port_open(port)).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_shut_down_server_starts_again_on_its_port() {
        let Some(mut server) = start(Persistence::None) else {
            return;
        };
        server.shutdown();
        assert!(!port_open(server.port()));
        server.restart().unwrap();
        assert_eq!(server.cli(&["PING"]).trim(), "PONG");
        assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    }
}
