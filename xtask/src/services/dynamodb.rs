//! A DynamoDB emulator on 127.0.0.1:8000, installed from a registry into
//! `target/services/` the first time and started in the background
//! (dynalite by `verrou_testkit::servers::Dynalite`, the bootstrap tests and
//! the torture tool use for their private emulators).
//!
//! The default is dynalite (npm): it installs in seconds and node is on every
//! CI machine. `VERROU_DYNAMODB_EMULATOR=moto` picks moto's server (PyPI)
//! instead, on the same port: slower to install, implements the TTL API, a
//! second opinion on single-client behaviour; not for CI, as its conditional
//! writes race under concurrent requests (see the verrou-dynamodb README).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verrou_testkit::servers::Dynalite;

use super::{Service, services_dir};
use crate::process::{port_open, run, wait_for_port};

pub const PORT: u16 = 8000;
pub(super) const DYNALITE: &str = "dynalite@4.0.0";
const MOTO: &str = "moto[server]==5.2.5";
const WAIT: Duration = Duration::from_secs(60);

pub fn dynamodb() -> Service {
    Service {
        name: "dynamodb",
        port: PORT,
        start,
        stop,
        // Tests also start private emulators from this checkout's install,
        // so an emulator answering on the port (from another checkout, say)
        // is not enough: the package must be installed here too.
        healthy: Some(installed_here),
    }
}

fn installed_here() -> bool {
    Emulator::chosen().is_ok_and(|emulator| emulator.is_installed(&emulator.dir()))
}

enum Emulator {
    Dynalite,
    Moto,
}

impl Emulator {
    fn chosen() -> Result<Self, String> {
        match std::env::var("VERROU_DYNAMODB_EMULATOR").as_deref() {
            Err(_) | Ok("" | "dynalite") => Ok(Emulator::Dynalite),
            Ok("moto") => Ok(Emulator::Moto),
            Ok(other) => Err(format!(
                "VERROU_DYNAMODB_EMULATOR={other}: expected `dynalite` or `moto`"
            )),
        }
    }

    fn dir(&self) -> PathBuf {
        services_dir().join(match self {
            Emulator::Dynalite => "dynalite",
            Emulator::Moto => "moto",
        })
    }

    fn is_installed(&self, dir: &Path) -> bool {
        match self {
            Emulator::Dynalite => dir.join("node_modules/dynalite/cli.js").exists(),
            Emulator::Moto => dir.join("bin/moto_server").exists(),
        }
    }

    /// Installs into `dir` unless a previous run did.
    fn install(&self, dir: &Path) -> Result<(), String> {
        let dir_str = dir.to_str().ok_or("non-UTF-8 workspace path")?;
        let installed = self.is_installed(dir);
        match self {
            Emulator::Dynalite => {
                if !installed {
                    run(
                        "npm",
                        &[
                            "install",
                            "--prefix",
                            dir_str,
                            "--no-audit",
                            "--no-fund",
                            DYNALITE,
                        ],
                    )?;
                }
            }
            Emulator::Moto => {
                if !installed {
                    run("python3", &["-m", "venv", dir_str])?;
                    let pip = dir.join("bin/pip");
                    run(
                        pip.to_str().ok_or("non-UTF-8 path")?,
                        &["install", "--quiet", MOTO],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Starts the installed emulator in its own process group (a Ctrl-C in
    /// the terminal that ran xtask must not take it down), output to `log`;
    /// returns its pid.
    fn start(&self, dir: &Path, log: &Path) -> Result<u32, String> {
        match self {
            Emulator::Dynalite => {
                let mut cli = Command::new("node");
                cli.arg(dir.join("node_modules/dynalite/cli.js"));
                let emulator = Dynalite::builder()
                    .command(cli)
                    .port(PORT)
                    .in_memory()
                    .log(log)
                    .detached()
                    .start()?;
                emulator
                    .pid()
                    .ok_or_else(|| "dynalite has no pid".to_owned())
            }
            Emulator::Moto => {
                let log_file =
                    fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
                let err_log = log_file.try_clone().map_err(|e| e.to_string())?;
                let child = Command::new(dir.join("bin/moto_server"))
                    .args(["-H", "127.0.0.1", "-p", &PORT.to_string()])
                    .stdin(Stdio::null())
                    .stdout(log_file)
                    .stderr(err_log)
                    .process_group(0)
                    .spawn()
                    .map_err(|e| format!("could not start the emulator: {e}"))?;
                wait_for_port("dynamodb", PORT, WAIT)
                    .map_err(|e| format!("{e} (log: {})", log.display()))?;
                Ok(child.id())
            }
        }
    }
}

/// Which emulator xtask started, and its pid, for `down`.
fn pid_file() -> PathBuf {
    services_dir().join("dynamodb.pid")
}

fn start() -> Result<(), String> {
    let emulator = Emulator::chosen()?;
    let dir = emulator.dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    emulator.install(&dir)?;
    if port_open(PORT) {
        eprintln!("dynamodb: an emulator already answers on port {PORT}; using it");
        return Ok(());
    }
    // Truncated here: the bootstrap appends across restarts.
    let log = dir.join("emulator.log");
    fs::write(&log, "").map_err(|e| format!("{}: {e}", log.display()))?;
    let pid = emulator.start(&dir, &log)?;
    fs::write(pid_file(), pid.to_string()).map_err(|e| e.to_string())
}

fn stop() -> Result<(), String> {
    let Ok(pid) = fs::read_to_string(pid_file()) else {
        eprintln!("dynamodb: not started by xtask, leaving it alone");
        return Ok(());
    };
    let pid = pid.trim();
    // Already gone is fine: the goal is "not running".
    let _ = run("kill", &[pid]);
    fs::remove_file(pid_file()).map_err(|e| e.to_string())?;
    // moto takes a moment to exit; an `up` right after must not mistake the
    // dying server for a running one.
    let started = Instant::now();
    while port_open(PORT) {
        if started.elapsed() > WAIT {
            return Err(format!(
                "port {PORT} still open {WAIT:?} after stopping pid {pid}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
