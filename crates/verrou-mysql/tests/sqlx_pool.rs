//! A store on a sqlx pool (feature `sqlx`) beside the store's own pool: one
//! table, mutual exclusion, rising tokens, and the same behaviour when a
//! statement is abandoned, a connection is killed or the table is of the
//! wrong shape.

mod common;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_mysql::sqlx::MySqlPool;
use verrou_mysql::sqlx::mysql::MySqlPoolOptions;
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table, scenarios, store_on, token};

const TTL: Expiry = Expiry::After(Duration::from_secs(60));

async fn pool(url: &str, max_connections: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_store_on_a_sqlx_pool_and_a_native_store_exclude_each_other() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let table = unique("verrou_sqlx_excl");
    let native = store_on(&table).await.unwrap();
    let on_sqlx = MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 2).await)
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
    // Twice in a row: an extend that changes nothing still reports a match.
    on_sqlx.extend("k", "sqlx", Expiry::Never).await.unwrap();
    on_sqlx.extend("k", "sqlx", Expiry::Never).await.unwrap();
    on_sqlx.release("k", "sqlx").await.unwrap();
    let third = token(native.acquire("k", "native", TTL).await.unwrap());
    assert!(
        third > second,
        "tokens must rise across backends: {second} then {third}"
    );
    drop_table(&table).await;
}

#[tokio::test]
async fn a_statement_abandoned_on_timeout_or_cancel_is_killed_and_never_applies() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    scenarios::a_statement_abandoned_on_timeout_or_cancel_is_killed_and_never_applies(
        MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 2).await),
        &unique("verrou_sqlx_abandon"),
        || async { admin().await.unwrap() },
    )
    .await;
}

#[tokio::test]
async fn a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works() {
    let Some(admin) = require_service("mysql", admin().await) else {
        return;
    };
    scenarios::a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works(
        MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 1).await),
        &unique("verrou_sqlx_kill"),
        admin,
    )
    .await;
}

#[tokio::test]
async fn a_table_of_the_wrong_shape_is_refused_on_a_sqlx_pool() {
    let Some(mut admin) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_shape");
    admin
        .query_drop(format!(
            "CREATE TABLE `{table}` (lock_key VARCHAR(767) NOT NULL, \
             owner VARBINARY(255) NULL, expires_at BIGINT NULL, \
             fencing_token BIGINT UNSIGNED NOT NULL, PRIMARY KEY (lock_key(100)))"
        ))
        .await
        .unwrap();
    let refused = MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 1).await)
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .expect_err("a VARCHAR key was accepted");
    let LockError::InvalidConfig { reason, .. } = &refused else {
        panic!("expected InvalidConfig, got {refused:?}");
    };
    assert!(
        reason.contains("`lock_key` is varchar(767)") && reason.contains("lock_key(100)"),
        "{reason}"
    );
    admin.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn a_pool_without_a_default_database_is_invalid_config() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let url = Service::Mysql.url();
    let without = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(server, _)| server);
    let refused = MysqlStore::from_sqlx(pool(without, 1).await).build().await;
    assert!(
        matches!(&refused, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("no default database")),
        "{refused:?}"
    );
}
