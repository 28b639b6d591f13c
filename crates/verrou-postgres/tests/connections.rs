//! Losing connections: killed sessions, a stuck statement, a server restart.
//! In every case the call that was cut short is a `Store` error (never
//! `Held` or `NotOwned`) and the next call works on the same store.
//! The restart runs only with `VERROU_RESTART_TESTS=1`.

mod common;

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::tokio_postgres::Client;
use verrou_testkit::{eventually, require_service, services_required, unique};

use common::scenarios::{self, NextCall};
use common::{TTL, admin, drop_table, kill_sessions, row_locked, url_with_app};

/// Whether to run a test that restarts the shared PostgreSQL server. A restart
/// fails every test running beside it, so such tests are opt-in:
/// `cargo xtask test` sets `VERROU_RESTART_TESTS=1` for its serial phase,
/// where they run one at a time after everything else.
fn restart_tests_enabled() -> bool {
    if std::env::var_os("VERROU_RESTART_TESTS").is_some_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "SKIPPED: restarts the shared PostgreSQL server; set VERROU_RESTART_TESTS=1 \
         to run it (alone, as `cargo xtask test` does)"
    );
    false
}

/// A store whose sessions carry a unique `application_name`.
async fn store_named(app: &str, table: &str, max_connections: usize) -> PostgresStore {
    PostgresStore::builder()
        .url(&url_with_app(app))
        .table_name(table)
        .max_connections(max_connections)
        .build()
        .await
        .unwrap()
}

/// Runs eight calls at once, so that every pooled connection (at most
/// eight) is open.
async fn open_every_connection(store: &PostgresStore) {
    let warm: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.is_locked(&format!("warm{i}")).await })
        })
        .collect();
    for task in warm {
        task.await.unwrap().unwrap();
    }
}

/// Waits until a session of `app` is blocked on a row lock.
async fn until_blocked(admin: &Client, app: &str) {
    eventually("the store's statement to wait on the row lock", Duration::from_secs(10), || async {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) > 0
    })
    .await;
}

#[tokio::test]
async fn a_session_killed_mid_call_is_a_store_error_and_the_next_call_works() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_kill");
    let app = unique("verrou_kill_app");
    let store = store_named(&app, &table, 1).await;
    let key = unique("key");
    assert!(matches!(
        store.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));

    // Make the next acquire wait on the row, then kill its session.
    let blocker = row_locked(&table, &key).await;
    let pending = tokio::spawn({
        let store = store.clone();
        let key = key.clone();
        async move { store.acquire(&key, "b", TTL).await }
    });
    until_blocked(&admin, &app).await;
    // The pooled session and the listening one.
    assert!(kill_sessions(&admin, &app).await >= 1);
    let cut = pending.await.unwrap();
    assert!(
        matches!(cut, Err(LockError::Store { .. })),
        "the cut call returned {cut:?}"
    );
    drop(blocker);

    // The very next call works, and the lock is as it was.
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    store.release(&key, "a").await.unwrap();
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn sessions_killed_while_idle_are_replaced() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_idle_kill");
    let app = unique("verrou_idle_app");
    let store = store_named(&app, &table, 4).await;
    let key = unique("key");
    for round in 0..3 {
        // Open every pooled connection, so that all of them die below.
        open_every_connection(&store).await;
        assert!(matches!(
            store.acquire(&key, "a", TTL).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        assert!(
            kill_sessions(&admin, &app).await >= 1,
            "round {round}: no session to kill"
        );
        // The first call may still meet the dead session (then it is a Store
        // error, never a wrong answer); the one after it must work.
        match store.release(&key, "a").await {
            Ok(()) => {}
            Err(LockError::Store { .. }) => store.release(&key, "a").await.unwrap(),
            Err(other) => panic!("round {round}: a dead session gave {other:?}"),
        }
        assert!(!store.is_locked(&key).await.unwrap());
    }
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_stuck_statement_times_out_as_a_store_error_and_the_next_call_works() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let app = unique("verrou_stuck_app");
    let blocker = common::admin().await.unwrap();
    scenarios::a_stuck_statement_is_cancelled_and_never_applies(
        PostgresStore::builder()
            .url(&url_with_app(&app))
            .max_connections(1),
        &unique("verrou_stuck"),
        &app,
        &admin,
        &blocker,
        NextCall::Works,
    )
    .await;
}

/// Restarts the shared PostgreSQL server, so opt-in: `cargo xtask test` runs
/// tests whose name contains `server_restart` alone, after all the others,
/// with `VERROU_RESTART_TESTS=1`.
#[tokio::test]
async fn store_recovers_after_server_restart() {
    if !restart_tests_enabled() {
        return;
    }
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    if std::fs::read_dir("/etc/postgresql").is_err() {
        assert!(
            !services_required(),
            "cannot restart PostgreSQL: no /etc/postgresql (pg_ctlcluster)"
        );
        eprintln!("SKIPPED: no Debian PostgreSQL cluster to restart");
        return;
    }
    let table = unique("verrou_restart");
    let app = unique("verrou_restart_app");
    let store = store_named(&app, &table, 4).await;
    drop(admin);
    // Open every pooled connection, so that the restart kills all of them.
    open_every_connection(&store).await;
    let key = unique("key");
    let Acquisition::Acquired {
        fencing_token: Some(before),
    } = store.acquire(&key, "a", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired");
    };

    let status = tokio::task::spawn_blocking(|| {
        std::process::Command::new("sh")
            .args([
                "-c",
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart",
            ])
            .status()
    })
    .await
    .unwrap()
    .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart failed: {status}");
    eventually(
        "PostgreSQL to accept connections again",
        Duration::from_secs(60),
        || async { common::admin().await.is_ok() },
    )
    .await;

    // The same store, not rebuilt: the lock survived and every call works.
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store.acquire(&key, "b", Expiry::Never).await.unwrap(),
        Acquisition::Held
    );
    // The listening session reconnects on its own and announces again.
    let watch = scenarios::watch_once_listening(
        &store,
        &key,
        Duration::from_secs(30),
        "release announcements did not resume",
    )
    .await;
    store.release(&key, "a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the release after the restart was not announced");
    let Acquisition::Acquired {
        fencing_token: Some(after),
    } = store.acquire(&key, "b", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired after the restart");
    };
    assert!(after > before, "{after} <= {before}");
    store.release(&key, "b").await.unwrap();
    drop_table(&common::admin().await.unwrap(), &table).await;
}
