//! The TLS test servers, each with a certificate signed by the test CA this
//! module generates once per machine (`verrou_testkit::servers::TestCa`,
//! the `openssl` command, in `TestCa::default_dir()` unless
//! `VERROU_TEST_CA` names another `ca.pem`), where tests find it too:
//!
//! - `redis-tls`: a Redis speaking only TLS on 127.0.0.1:6380 (and
//!   127.0.0.2, an address the certificate does not name), no persistence;
//! - `dynamodb-tls`: dynalite over HTTPS on 127.0.0.1:8443, tables in
//!   memory (dynalite from `cargo xtask services up dynamodb`'s install,
//!   which `services up` runs first);
//! - `postgres-tls`: PostgreSQL with `ssl = on` on 127.0.0.1:5433, TCP over
//!   TLS only, data in `target/services/postgres-tls`;
//! - `mariadb-tls`: MariaDB with `ssl_cert`/`ssl_key` and
//!   `require_secure_transport` on 127.0.0.1:3307, database `test`, data in
//!   `target/services/mariadb-tls`.
//!
//! They run daemonized or in their own process group so they outlive xtask;
//! `down` stops what xtask started (pid files, `pg_ctl stop`).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use verrou_testkit::servers::{
    TestCa, TlsMariadb, TlsPostgres, TlsRedis, dynalite_tls, mariadb_tls_up, postgres_tls_up,
    tls_port_up,
};

use super::{Service, services_dir};
use crate::process::{port_open, run};

pub const REDIS_PORT: u16 = 6380;
pub const DYNAMODB_PORT: u16 = 8443;
pub const POSTGRES_PORT: u16 = 5433;
pub const MARIADB_PORT: u16 = 3307;
const WAIT: Duration = Duration::from_secs(30);

pub fn redis() -> Service {
    Service {
        name: "redis-tls",
        port: REDIS_PORT,
        start: start_redis,
        stop: || stop("redis-tls", REDIS_PORT),
        // Up with a certificate from *this* checkout's CA: a server left by
        // an earlier CA would fail every TLS test.
        healthy: Some(|| tls_port_up(&ca_here(), REDIS_PORT)),
    }
}

pub fn dynamodb() -> Service {
    Service {
        name: "dynamodb-tls",
        port: DYNAMODB_PORT,
        start: start_dynamodb,
        stop: || stop("dynamodb-tls", DYNAMODB_PORT),
        healthy: Some(|| tls_port_up(&ca_here(), DYNAMODB_PORT)),
    }
}

pub fn postgres() -> Service {
    Service {
        name: "postgres-tls",
        port: POSTGRES_PORT,
        start: start_postgres,
        stop: || TlsPostgres::stop_in(&dir("postgres-tls")),
        healthy: Some(|| postgres_tls_up(&ca_here(), POSTGRES_PORT)),
    }
}

pub fn mariadb() -> Service {
    Service {
        name: "mariadb-tls",
        port: MARIADB_PORT,
        start: start_mariadb,
        stop: || stop("mariadb-tls", MARIADB_PORT),
        healthy: Some(|| mariadb_tls_up(&ca_here(), MARIADB_PORT)),
    }
}

/// The machine's CA directory, shared by every checkout (see
/// `TestCa::default_dir`): the servers on fixed ports are shared too.
fn ca_dir() -> PathBuf {
    TestCa::from_env().dir().to_owned()
}

/// The CA as it is on disk: checking health generates nothing.
fn ca_here() -> TestCa {
    TestCa::at(ca_dir())
}

fn dir(name: &str) -> PathBuf {
    services_dir().join(name)
}

fn pid_file(name: &str) -> PathBuf {
    dir(name).join(format!("{name}.pid"))
}

/// A server of ours that fails the health check (an earlier CA) is stopped
/// first; anything else on the port is left alone and reported.
fn free_the_port(name: &str, port: u16) -> Result<(), String> {
    if !port_open(port) {
        return Ok(());
    }
    if pid_file(name).exists() {
        stop(name, port)?;
        return Ok(());
    }
    Err(format!(
        "port {port} answers, but not with this machine's test CA; stop whatever runs there"
    ))
}

fn start_redis() -> Result<(), String> {
    let ca = TestCa::ensure(ca_dir())?;
    free_the_port("redis-tls", REDIS_PORT)?;
    let dir = dir("redis-tls");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    TlsRedis::builder(&ca)
        .port(REDIS_PORT)
        .dir(&dir)
        .daemonize(pid_file("redis-tls"))
        .start()
        .map(drop)
}

fn start_dynamodb() -> Result<(), String> {
    let ca = TestCa::ensure(ca_dir())?;
    free_the_port("dynamodb-tls", DYNAMODB_PORT)?;
    let dir = dir("dynamodb-tls");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = dir.join("dynalite.log");
    fs::write(&log, "").map_err(|e| format!("{}: {e}", log.display()))?;
    let emulator = dynalite_tls(&ca)
        .map_err(|e| format!("{e} (`cargo xtask services up dynamodb` installs dynalite)"))?
        .port(DYNAMODB_PORT)
        .in_memory()
        .log(&log)
        .detached()
        .start()?;
    let pid = emulator.pid().ok_or("dynalite has no pid")?;
    fs::write(pid_file("dynamodb-tls"), pid.to_string()).map_err(|e| e.to_string())
}

fn start_postgres() -> Result<(), String> {
    let ca = TestCa::ensure(ca_dir())?;
    let dir = dir("postgres-tls");
    if port_open(POSTGRES_PORT) {
        // Ours with an earlier CA: stopped, then started with the new files.
        TlsPostgres::stop_in(&dir)?;
        if port_open(POSTGRES_PORT) {
            return Err(format!(
                "port {POSTGRES_PORT} answers, but not with this machine's test CA; stop \
                 whatever runs there"
            ));
        }
    }
    TlsPostgres::start_kept(&ca, POSTGRES_PORT, dir).map(drop)
}

fn start_mariadb() -> Result<(), String> {
    let ca = TestCa::ensure(ca_dir())?;
    free_the_port("mariadb-tls", MARIADB_PORT)?;
    let dir = dir("mariadb-tls");
    let server = TlsMariadb::start_kept(&ca, MARIADB_PORT, &dir)?;
    fs::write(pid_file("mariadb-tls"), server.pid().to_string()).map_err(|e| e.to_string())
}

fn stop(name: &str, port: u16) -> Result<(), String> {
    let Ok(pid) = fs::read_to_string(pid_file(name)) else {
        eprintln!("{name}: not started by xtask, leaving it alone");
        return Ok(());
    };
    let pid = pid.trim();
    // Already gone is fine: the goal is "not running". Nothing persists, so
    // SIGTERM loses nothing.
    let _ = run("kill", &[pid]);
    let _ = fs::remove_file(pid_file(name));
    let started = Instant::now();
    while port_open(port) {
        if started.elapsed() > WAIT {
            return Err(format!(
                "port {port} still open {WAIT:?} after stopping pid {pid}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
