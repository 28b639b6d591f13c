//! The DynamoDB emulator (dynalite): finding it without knowing where the
//! source tree is, and starting one.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{crash, free_port, fresh_temp_dir, log_tail, port_open, wait_ready};

/// How long a starting emulator may take to open its port (node is slow to
/// start on a loaded machine).
const WAIT: Duration = Duration::from_secs(60);

/// A command that runs dynalite; add its arguments (`--port`, `--path`...).
///
/// Found, in order, through `VERROU_DYNALITE` (the path of dynalite's
/// `cli.js`, or of an executable; the workspace's `.cargo/config.toml` points
/// it at the copy `cargo xtask services up dynamodb` installs), then a
/// `dynalite` executable on `PATH`.
///
/// # Errors
/// Neither is there: the message says how to install it.
pub fn dynalite_command() -> Result<Command, String> {
    if let Some(path) = std::env::var_os("VERROU_DYNALITE").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.exists() {
            return Err(format!(
                "VERROU_DYNALITE={} does not exist: run `cargo xtask services up dynamodb`, \
                 which installs dynalite there",
                path.display()
            ));
        }
        return Ok(if path.extension().is_some_and(|e| e == "js") {
            let mut node = Command::new("node");
            node.arg(path);
            node
        } else {
            Command::new(path)
        });
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("dynalite"))
        .find(|candidate| candidate.is_file());
    on_path.map(Command::new).ok_or_else(|| {
        "dynalite not found: set VERROU_DYNALITE or put dynalite on PATH \
         (`cargo xtask services up dynamodb` installs it for this checkout)"
            .to_owned()
    })
}

/// dynalite on 127.0.0.1, by default a child of this process on a free port
/// with its tables in LevelDB files (`--path`) in a fresh temporary
/// directory: dropping the handle kills it and removes them. Table state
/// changes are instant (`--createTableMs 0` and the like), so a test that
/// creates a table does not wait for nothing.
#[derive(Debug)]
pub struct Dynalite {
    port: u16,
    program: OsString,
    args: Vec<OsString>,
    /// The LevelDB directory, when tables are on disk.
    data: Option<PathBuf>,
    /// A temporary directory of ours (data and log), removed on drop.
    temp: Option<PathBuf>,
    log: PathBuf,
    detached: bool,
    child: Option<Child>,
}

/// Options of a [`Dynalite`]; [`start`](Self::start) starts it.
#[derive(Debug)]
#[must_use]
pub struct DynaliteBuilder {
    port: Option<u16>,
    in_memory: bool,
    command: Option<Command>,
    log: Option<PathBuf>,
    detached: bool,
}

impl Dynalite {
    /// An emulator found by [`dynalite_command`], on a free port, its tables
    /// on disk in a fresh temporary directory.
    ///
    /// # Errors
    /// dynalite is not installed, or did not open its port within 60 s.
    pub fn start() -> Result<Self, String> {
        Self::builder().start()
    }

    /// Options: the port, tables in memory, the command, the log,
    /// detaching.
    pub fn builder() -> DynaliteBuilder {
        DynaliteBuilder {
            port: None,
            in_memory: false,
            command: None,
            log: None,
            detached: false,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator's process id, while this handle knows it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A crash (SIGKILL) and a start from the LevelDB files it left behind
    /// (an emulator with its tables in memory starts empty).
    ///
    /// # Errors
    /// The emulator did not come back within 60 s.
    pub fn restart(&mut self) -> Result<(), String> {
        crash(self.child.take());
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .args(["--host", "127.0.0.1", "--port", &port])
            .args(["--createTableMs", "0", "--deleteTableMs", "0"])
            .args(["--updateTableMs", "0"]);
        if let Some(data) = &self.data {
            command.arg("--path").arg(data);
        }
        command.stdin(Stdio::null()).stdout(log).stderr(err_log);
        if self.detached {
            // Its own process group: a Ctrl-C in the terminal that started
            // it must not take the emulator down too.
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start dynalite: {e}"))?;
        let ready = wait_ready(
            &format!("dynalite on port {port}"),
            &mut child,
            WAIT,
            || port_open(self.port),
        );
        match ready {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                // Not left running, detached or not: nobody would know its pid.
                crash(Some(child));
                Err(format!("{e}; log: {}", log_tail(&self.log)))
            }
        }
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        crash(self.child.take());
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_dir_all(temp);
        }
    }
}

impl DynaliteBuilder {
    /// Listen on `port` (default: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keep the tables in memory (no `--path`): nothing on disk, a restart
    /// starts empty.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Run dynalite with `command` (its program and arguments; the
    /// emulator's options are added) instead of [`dynalite_command`], for
    /// an installer that knows where it put it.
    pub fn command(mut self, command: Command) -> Self {
        self.command = Some(command);
        self
    }

    /// Append the emulator's output to `path` (default: `dynalite.log` in
    /// its temporary directory).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Start it in its own process group and leave it running when the
    /// handle drops (`cargo xtask services`, which records
    /// [`pid`](Dynalite::pid) to stop it later).
    pub fn detached(mut self) -> Self {
        self.detached = true;
        self
    }

    /// Starts the emulator and waits until its port opens.
    ///
    /// # Errors
    /// dynalite is not found (see [`dynalite_command`]), a directory cannot
    /// be made, or the emulator did not open its port within 60 s (the
    /// message ends with its log).
    pub fn start(self) -> Result<Dynalite, String> {
        let command = match self.command {
            Some(command) => command,
            None => dynalite_command()?,
        };
        let port = match self.port {
            Some(port) => port,
            None => free_port()?,
        };
        // A temporary directory only for what needs one: tables on disk, or
        // a log nobody placed.
        let temp = if self.in_memory && self.log.is_some() {
            None
        } else {
            Some(fresh_temp_dir(&format!("verrou-dynalite-{port}"))?)
        };
        let in_temp = |name: &str| temp.as_deref().map(|dir: &Path| dir.join(name));
        let mut emulator = Dynalite {
            port,
            program: command.get_program().to_owned(),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            data: if self.in_memory { None } else { in_temp("db") },
            log: match self.log {
                Some(log) => log,
                None => in_temp("dynalite.log").ok_or("no log path")?,
            },
            temp: if self.detached { None } else { temp },
            detached: self.detached,
            child: None,
        };
        emulator.spawn()?;
        Ok(emulator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_emulator_comes_back_on_its_port_after_a_crash() {
        let Some(mut emulator) = crate::require_service("dynalite", Dynalite::start()) else {
            return;
        };
        let port = emulator.port();
        let first = emulator.pid();
        emulator.restart().unwrap();
        assert!(port_open(port));
        assert_ne!(emulator.pid(), first);
        drop(emulator);
        assert!(!port_open(port));
    }

    #[test]
    fn a_detached_emulator_outlives_its_handle() {
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique("verrou-dynalite")));
        let started = Dynalite::builder().in_memory().log(&log).detached().start();
        let Some(emulator) = crate::require_service("dynalite", started) else {
            return;
        };
        let (port, pid) = (emulator.port(), emulator.pid().unwrap());
        drop(emulator);
        assert!(port_open(port));
        let killed = Command::new("kill").arg(pid.to_string()).status().unwrap();
        assert!(killed.success());
        super::super::process::poll_until("the port to close", WAIT, || !port_open(port)).unwrap();
        let _ = std::fs::remove_file(log);
    }
}
