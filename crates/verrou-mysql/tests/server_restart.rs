//! A MariaDB restart under a live store. It takes the shared server away
//! from everyone for a few seconds, so it runs only with
//! `VERROU_RESTART_TESTS=1`; `cargo xtask test` sets that and runs tests named
//! `server_restart` alone, after the others.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_testkit::{require_service, services_required, unique};

use common::{admin, drop_table, store_on};

const DAEMON: &str = "/usr/sbin/mariadbd";
/// The shared server's pid file (Debian's `pid-file`). Other `mariadbd`
/// processes run from the same binary (the TLS server `cargo xtask services
/// up` starts on 3307, the torture's private servers), so the shared one is
/// told apart by its pid file, never by the executable alone.
const PID_FILE: &str = "/run/mysqld/mysqld.pid";
const BOUND: Duration = Duration::from_secs(60);

/// Whether to run a test that restarts the shared MariaDB server. A restart
/// fails every test running beside it, so such tests are opt-in:
/// `cargo xtask test` sets `VERROU_RESTART_TESTS=1` for its serial phase,
/// where they run one at a time after everything else.
fn restart_tests_enabled() -> bool {
    if std::env::var_os("VERROU_RESTART_TESTS").is_some_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "SKIPPED: restarts the shared MariaDB server; set VERROU_RESTART_TESTS=1 \
         to run it (alone, as `cargo xtask test` does)"
    );
    false
}

fn sh(script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .is_ok_and(|status| status.success())
}

fn daemon_running() -> bool {
    sh(&format!(
        "start-stop-daemon --status --pidfile {PID_FILE} --exec {DAEMON}"
    ))
}

/// Waits (bounded) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < BOUND,
            "timed out after {BOUND:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the server again (a no-op if it runs) and waits until it takes
/// connections. Called on every path after a shutdown, so a failing test
/// does not leave the server down for everyone else.
async fn start_server() {
    wait_for("the old server process to exit", || !daemon_running()).await;
    assert!(
        sh(&format!(
            "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null; \
             start-stop-daemon --start --oknodo --background --pidfile {PID_FILE} --exec {DAEMON}"
        )),
        "start-stop-daemon failed"
    );
    let started = Instant::now();
    loop {
        if let Ok(conn) = admin().await {
            conn.disconnect().await.ok();
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "the server did not come back within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn store_recovers_after_server_restart() {
    if !restart_tests_enabled() {
        return;
    }
    let table = unique("verrou_restart");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    if !std::path::Path::new(DAEMON).exists() || !daemon_running() {
        assert!(
            !services_required(),
            "this test restarts a local {DAEMON} and none is running"
        );
        eprintln!("SKIPPED: no local {DAEMON} to restart");
        return;
    }
    let key = unique("key");
    let first = match store
        .acquire(&key, "a", Expiry::After(Duration::from_secs(600)))
        .await
        .unwrap()
    {
        Acquisition::Acquired { fencing_token } => fencing_token.unwrap(),
        Acquisition::Held => panic!("a fresh key was held"),
    };

    let stopped = sh("mariadb-admin -uroot -h127.0.0.1 shutdown");
    if stopped {
        wait_for("the server to stop", || !daemon_running()).await;
        // While the server is down, calls fail as Store errors, promptly.
        let during = store.is_locked(&key).await;
        start_server().await;
        assert!(
            matches!(during, Err(LockError::Store { store: "mysql", .. })),
            "a call while the server is down: {during:?}"
        );
    } else {
        start_server().await;
        panic!("mariadb-admin shutdown failed");
    }

    // The same store, no rebuild. InnoDB kept the lock across the restart.
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the lock survived the restart"
    );
    assert_eq!(
        store.acquire(&key, "b", Expiry::Never).await.unwrap(),
        Acquisition::Held
    );
    store.release(&key, "a").await.unwrap();
    match store.acquire(&key, "b", Expiry::Never).await.unwrap() {
        Acquisition::Acquired { fencing_token } => assert!(fencing_token.unwrap() > first),
        Acquisition::Held => panic!("released key still held"),
    }
    store.force_release(&key).await.unwrap();
    drop_table(&table).await;
}
