//! A store on a sqlx pool (feature `sqlx`) beside the store's own pool: one
//! table, mutual exclusion, rising tokens, wake-ups both ways, and the same
//! behaviour when a statement is stuck, a session is killed or the table is
//! of the wrong shape.

mod common;

use std::str::FromStr;
use std::time::Duration;

use verrou_core::{Acquisition, LockError, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::sqlx::PgPool;
use verrou_postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use verrou_testkit::{Service, require_service, unique};

use common::scenarios::{self, NextCall};
use common::{TTL, admin, drop_table};

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
    scenarios::a_release_wakes_the_watch(
        &native,
        &on_sqlx,
        &key,
        "native",
        "the native release did not wake the sqlx waiter",
    )
    .await;
    scenarios::a_release_wakes_the_watch(
        &on_sqlx,
        &native,
        &key,
        "sqlx",
        "the sqlx release did not wake the native waiter",
    )
    .await;
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn announcements_resume_after_the_listening_session_is_killed() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_relisten");
    let app = unique("verrou_sqlx_relisten_app");
    scenarios::announcements_resume_after_the_listening_session_is_killed(
        PostgresStore::from_sqlx(pool(&app, 2).await),
        &table,
        &app,
        &admin,
    )
    .await;
}

#[tokio::test]
async fn a_stuck_statement_is_cancelled_on_the_server_and_the_next_call_works() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let app = unique("verrou_sqlx_stuck_app");
    let blocker = common::admin().await.unwrap();
    scenarios::a_stuck_statement_is_cancelled_and_never_applies(
        PostgresStore::from_sqlx(pool(&app, 1).await).release_announcements(false),
        &unique("verrou_sqlx_stuck"),
        &app,
        &admin,
        &blocker,
        NextCall::Works,
    )
    .await;
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
