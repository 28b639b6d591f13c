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
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, drop_table, store_on};

const TTL: Expiry = Expiry::After(Duration::from_secs(60));

async fn pool(url: &str, max_connections: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
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

/// Holds the row of `key` locked, as a long transaction would, until rolled back.
async fn lock_row(table: &str, key: &str) -> mysql_async::Conn {
    let mut blocker = admin().await.unwrap();
    blocker.query_drop("START TRANSACTION").await.unwrap();
    let held: Option<u8> = blocker
        .exec_first(
            format!("SELECT 1 FROM `{table}` WHERE lock_key = ? FOR UPDATE"),
            (key,),
        )
        .await
        .unwrap();
    assert_eq!(held, Some(1));
    blocker
}

/// The ids of the connections running a write on `table` now.
async fn writers_on(table: &str) -> Vec<u64> {
    let mut admin = admin().await.unwrap();
    let running: Vec<u64> = admin
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? OR INFO LIKE ?",
            (
                format!("UPDATE `{table}`%"),
                format!("INSERT INTO `{table}`%"),
            ),
        )
        .await
        .unwrap();
    admin.disconnect().await.ok();
    running
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
    let table = unique("verrou_sqlx_abandon");
    let store = MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 2).await)
        .table_name(&table)
        .operation_timeout(Some(Duration::from_secs(2)))
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store.acquire(&key, "a", TTL).await.unwrap();
    let mut blocker = lock_row(&table, &key).await;

    // Timed out: a Store error, and the release waiting on the row is killed.
    match store.release(&key, "a").await {
        Err(LockError::Store { source, .. }) => {
            assert!(source.to_string().contains("timed out"), "{source}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Dropped by the caller: the acquire waiting on the row is killed too.
    let dropped =
        tokio::time::timeout(Duration::from_millis(200), store.acquire(&key, "b", TTL)).await;
    assert!(
        dropped.is_err(),
        "the blocked acquire finished: {dropped:?}"
    );
    eventually(
        "the abandoned statements to be killed",
        Duration::from_secs(10),
        || async { writers_on(&table).await.is_empty() },
    )
    .await;

    // Free the row: had they survived, the release would now free the lock
    // and nothing would stop "b" from taking it.
    blocker.query_drop("ROLLBACK").await.unwrap();
    blocker.disconnect().await.ok();
    assert!(
        store.is_locked(&key).await.unwrap(),
        "the abandoned release applied"
    );
    assert_eq!(
        store.acquire(&key, "c", TTL).await.unwrap(),
        Acquisition::Held
    );
    store.release(&key, "a").await.unwrap();
    drop_table(&table).await;
}

#[tokio::test]
async fn a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works() {
    let Some(mut admin) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_sqlx_kill");
    let store = MysqlStore::from_sqlx(pool(&Service::Mysql.url(), 1).await)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store.acquire(&key, "a", TTL).await.unwrap();
    let mut blocker = lock_row(&table, &key).await;
    let pending = tokio::spawn({
        let store = store.clone();
        let key = key.clone();
        async move { store.release(&key, "a").await }
    });
    let started = std::time::Instant::now();
    let victim = loop {
        if let Some(id) = writers_on(&table).await.first() {
            break *id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the store's statement never waited on the row"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    admin.query_drop(format!("KILL {victim}")).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the killed call returns")
        .unwrap();
    assert!(matches!(result, Err(LockError::Store { .. })), "{result:?}");
    blocker.query_drop("ROLLBACK").await.unwrap();
    blocker.disconnect().await.ok();

    // The release never ran, and the pool's one connection was replaced.
    assert!(store.is_locked(&key).await.unwrap());
    store.release(&key, "a").await.unwrap();
    admin.disconnect().await.ok();
    drop_table(&table).await;
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
