//! A store on a sqlx pool (feature `sqlx`) beside the store's own pool: one
//! table, mutual exclusion, rising tokens, wake-ups both ways, and the same
//! behaviour when a statement is stuck, a session is killed or the table is
//! of the wrong shape.

mod common;

use std::str::FromStr;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::sqlx::PgPool;
use verrou_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use verrou_postgres::tokio_postgres::Client;
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, drop_table};

const TTL: Expiry = Expiry::After(Duration::from_secs(60));
/// Far beyond any notification's delivery time, far below a test timeout.
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

/// A sqlx pool whose sessions carry `app` as their `application_name`.
async fn pool(app: &str, max_connections: u32) -> PgPool {
    let options = PgConnectOptions::from_str(&Service::Postgres.url())
        .unwrap()
        .application_name(app);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .unwrap()
}

async fn native(table: &str) -> PostgresStore {
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(table)
        .max_connections(2)
        .build()
        .await
        .unwrap()
}

fn token(acquisition: Acquisition) -> u64 {
    match acquisition {
        Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("expected an acquisition with a token, got {other:?}"),
    }
}

async fn count(admin: &Client, sql: &str, app: &str) -> i64 {
    admin.query_one(sql, &[&app]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_store_on_a_sqlx_pool_and_a_native_store_exclude_each_other() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_excl");
    let native = native(&table).await;
    let on_sqlx = PostgresStore::from_sqlx(pool(&unique("verrou_sqlx_app"), 2).await)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    assert!(on_sqlx.pool().is_none() && on_sqlx.sqlx_pool().is_some());

    let first = token(native.acquire("k", "native", TTL).await.unwrap());
    assert_eq!(
        on_sqlx.acquire("k", "sqlx", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(on_sqlx.is_locked("k").await.unwrap());
    assert!(matches!(
        on_sqlx.release("k", "sqlx").await,
        Err(LockError::NotOwned { .. })
    ));
    native.release("k", "native").await.unwrap();

    let second = token(on_sqlx.acquire("k", "sqlx", TTL).await.unwrap());
    assert!(
        second > first,
        "tokens must rise across backends: {first} then {second}"
    );
    assert_eq!(
        native.acquire("k", "native", TTL).await.unwrap(),
        Acquisition::Held
    );
    on_sqlx.extend("k", "sqlx", TTL).await.unwrap();
    on_sqlx.release("k", "sqlx").await.unwrap();
    let third = token(native.acquire("k", "native", TTL).await.unwrap());
    assert!(
        third > second,
        "tokens must rise across backends: {second} then {third}"
    );
    native.release("k", "native").await.unwrap();
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn releases_wake_waiters_across_backends_without_taking_a_pool_connection() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_wake");
    let native = native(&table).await;
    // One connection: were the listening session one of the pool's, no
    // operation could run.
    let on_sqlx = PostgresStore::from_sqlx(pool(&unique("verrou_sqlx_app"), 1).await)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    let key = unique("key");

    native.acquire(&key, "native", Expiry::Never).await.unwrap();
    let watch = on_sqlx
        .watch_release(&key)
        .await
        .unwrap()
        .expect("a store on a sqlx pool listens");
    native.release(&key, "native").await.unwrap();
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect("the native release did not wake the sqlx waiter");

    on_sqlx.acquire(&key, "sqlx", Expiry::Never).await.unwrap();
    let watch = native.watch_release(&key).await.unwrap().unwrap();
    on_sqlx.release(&key, "sqlx").await.unwrap();
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect("the sqlx release did not wake the native waiter");
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn announcements_resume_after_the_listening_session_is_killed() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_relisten");
    let app = unique("verrou_sqlx_relisten_app");
    let store = PostgresStore::from_sqlx(pool(&app, 2).await)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store.acquire(&key, "holder", Expiry::Never).await.unwrap();
    let waiting = store.watch_release(&key).await.unwrap().unwrap();

    let killed = count(
        &admin,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        &app,
    )
    .await;
    assert!(killed >= 1);
    // Notifications sent while the session was down are lost, so its loss
    // wakes every waiter.
    tokio::time::timeout(WOKEN_WITHIN, waiting)
        .await
        .expect("waiters were not woken when the listening session died");

    let started = std::time::Instant::now();
    let watch = loop {
        if let Some(watch) = store.watch_release(&key).await.unwrap() {
            break watch;
        }
        assert!(
            started.elapsed() < WOKEN_WITHIN,
            "the listening session did not come back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The pool's sessions were killed too: sqlx tests idle connections
    // before handing them out, and at worst the first call fails once.
    if store.release(&key, "holder").await.is_err() {
        store.release(&key, "holder").await.unwrap();
    }
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect("the release after reconnecting was not announced");
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_stuck_statement_is_cancelled_on_the_server_and_the_next_call_works() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_stuck");
    let app = unique("verrou_sqlx_stuck_app");
    let store = PostgresStore::from_sqlx(pool(&app, 1).await)
        .table_name(&table)
        .operation_timeout(Some(Duration::from_secs(2)))
        .release_announcements(false)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store
        .acquire(&key, "a", Expiry::After(Duration::from_millis(200)))
        .await
        .unwrap();
    // Hold the row, as a long transaction would.
    let blocker = admin_with_row_locked(&table, &key).await;
    eventually("a's lock to expire", Duration::from_secs(10), || async {
        !store.is_locked(&key).await.unwrap()
    })
    .await;
    let stuck = tokio::time::timeout(Duration::from_secs(30), store.acquire(&key, "b", TTL))
        .await
        .expect("the operation timeout did not fire");
    assert!(matches!(stuck, Err(LockError::Store { .. })), "{stuck:?}");
    // Cancelled on the server, not left waiting on the row...
    eventually(
        "the timed-out statement to be cancelled",
        Duration::from_secs(10),
        || async {
            count(
            &admin,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
            &app,
        )
        .await
            == 0
        },
    )
    .await;
    // ...so it does not take the lock once the row is free.
    drop(blocker);
    let owner: Option<String> = admin
        .query_one(
            &format!("SELECT owner FROM \"{table}\" WHERE key = $1"),
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        owner.as_deref(),
        Some("a"),
        "the timed-out acquire took effect"
    );
    assert!(matches!(
        store.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "b").await.unwrap();
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_table_of_the_wrong_shape_is_refused_and_a_varchar_key_sets_the_limit() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_shape");
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (key char(300) PRIMARY KEY, owner text, \
             expires_at timestamptz, fencing_token bigint NOT NULL)"
        ))
        .await
        .unwrap();
    let refused = PostgresStore::from_sqlx(pool(&unique("verrou_sqlx_app"), 1).await)
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .expect_err("a blank-padded key was accepted");
    let LockError::InvalidConfig { reason, .. } = &refused else {
        panic!("expected InvalidConfig, got {refused:?}");
    };
    assert!(
        reason.contains("`key`") && reason.contains("blank-padded"),
        "{reason}"
    );

    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{table}\" ALTER COLUMN key TYPE varchar(300) COLLATE \"C\""
        ))
        .await
        .unwrap();
    let store = PostgresStore::from_sqlx(pool(&unique("verrou_sqlx_app"), 1).await)
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .unwrap();
    assert_eq!(store.max_key_bytes(), 300);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn debug_shows_no_connection_settings() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_debug");
    let store = PostgresStore::from_sqlx(pool("verrou_sqlx_secret_app", 1).await)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    verrou_conformance::builders::debug_hides(&store, "verrou_sqlx_secret_app");
    verrou_conformance::builders::debug_hides(
        &PostgresStore::from_sqlx(store.sqlx_pool().unwrap().clone()),
        "verrou_sqlx_secret_app",
    );
    drop_table(&admin, &table).await;
}

/// A session of its own holding the row of `key` locked until dropped.
async fn admin_with_row_locked(table: &str, key: &str) -> Client {
    let blocker = admin().await.unwrap();
    blocker.batch_execute("BEGIN").await.unwrap();
    let rows = blocker
        .query(
            &format!("SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE"),
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    blocker
}
