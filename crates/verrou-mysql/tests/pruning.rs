//! Per-key state stays bounded: free rows are pruned once the server's clock
//! has passed their token (by a second), tokens keep rising across prunes,
//! held locks are never pruned, and the store prunes on its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_conformance::{churn_distinct_keys, granted_token, soak_distinct_keys};
use verrou_core::{Expiry, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, builder, drop_table};

/// How far behind the clock a free row's token must be before it is pruned
/// (1 s), plus room for the round trips.
const PRUNE_AGE: Duration = Duration::from_millis(1200);

async fn store_on(table: &str) -> Result<MysqlStore, verrou_core::LockError> {
    builder().table_name(table).max_connections(8).build().await
}

async fn rows(table: &str, filter: &str) -> u64 {
    let mut conn = admin().await.unwrap();
    let count: Option<u64> = conn
        .query_first(format!("SELECT count(*) FROM `{table}` WHERE {filter}"))
        .await
        .unwrap();
    conn.disconnect().await.ok();
    count.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_released_keys_are_pruned_and_held_ones_stay() {
    let table = unique("verrou_prune");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    granted_token(store.acquire("held", "h", Expiry::Never).await.unwrap());
    granted_token(
        store
            .acquire("held-ttl", "h", Expiry::After(Duration::from_secs(600)))
            .await
            .unwrap(),
    );
    churn_distinct_keys(Arc::new(store.clone()), "order-", 10_000, 16).await;
    // The background prune may already have taken some, never the held ones.
    assert!(rows(&table, "1").await > 2);

    tokio::time::sleep(PRUNE_AGE).await;
    let pruned = store.prune().await.unwrap();
    assert!(pruned > 0 && pruned <= 10_000, "{pruned}");
    assert_eq!(rows(&table, "1").await, 2, "only the held locks are left");
    assert!(store.is_locked("held").await.unwrap());
    assert!(store.is_locked("held-ttl").await.unwrap());
    assert_eq!(store.prune().await.unwrap(), 0);
    drop_table(&table).await;
}

#[tokio::test]
async fn a_pruned_key_starts_again_above_its_last_granted_token() {
    let table = unique("verrou_prune_token");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let first = granted_token(store.acquire("k", "a", Expiry::Never).await.unwrap());
    // Tokens are the server clock in microseconds (or just above).
    let mut conn = admin().await.unwrap();
    let clock_us: Option<u64> = conn
        .query_first("SELECT UNIX_TIMESTAMP() * 1000000 + MICROSECOND(NOW(6))")
        .await
        .unwrap();
    conn.disconnect().await.ok();
    let clock_us = clock_us.unwrap();
    assert!(
        first <= clock_us && clock_us - first < 60_000_000,
        "{first} vs {clock_us}"
    );
    store.release("k", "a").await.unwrap();
    // Too early: the row stays.
    assert_eq!(store.prune().await.unwrap(), 0);
    tokio::time::sleep(PRUNE_AGE).await;
    assert_eq!(store.prune().await.unwrap(), 1);
    assert_eq!(rows(&table, "1").await, 0);
    let second = granted_token(store.acquire("k", "b", Expiry::Never).await.unwrap());
    assert!(second > first, "{second} <= {first}");

    // An expired lock is pruned like a released one.
    store.force_release("k").await.unwrap();
    let third = granted_token(
        store
            .acquire("k", "c", Expiry::After(Duration::from_millis(50)))
            .await
            .unwrap(),
    );
    tokio::time::sleep(PRUNE_AGE).await;
    assert_eq!(store.prune().await.unwrap(), 1);
    assert!(store.release("k", "c").await.is_err());
    assert!(granted_token(store.acquire("k", "d", Expiry::Never).await.unwrap()) > third);
    drop_table(&table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_prunes_on_its_own_as_it_acquires() {
    let table = unique("verrou_auto_prune");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    churn_distinct_keys(Arc::new(store.clone()), "old-", 1000, 16).await;
    tokio::time::sleep(PRUNE_AGE).await;
    // No `prune` call: the acquisitions start one in the background every 1024.
    churn_distinct_keys(Arc::new(store.clone()), "new-", 1100, 16).await;
    eventually(
        "the background prune to delete the old rows",
        Duration::from_secs(10),
        || async { rows(&table, "lock_key LIKE 'old-%'").await == 0 },
    )
    .await;
    drop_table(&table).await;
}

#[tokio::test]
async fn a_role_without_delete_still_locks_and_prune_says_why_it_cannot() {
    let table = unique("verrou_no_delete");
    let Some(owner) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    drop(owner);
    let user = unique("verrou_nodel");
    let mut conn = admin().await.unwrap();
    conn.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY ''"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "GRANT SELECT, INSERT, UPDATE ON `{table}` TO '{user}'@'%'"
    ))
    .await
    .unwrap();
    let opts = mysql_async::OptsBuilder::from_opts(
        mysql_async::Opts::from_url(&Service::Mysql.url()).unwrap(),
    )
    .user(Some(user.clone()))
    .pass(None::<String>);
    let store = MysqlStore::builder()
        .config(opts)
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .unwrap();
    granted_token(store.acquire("k", "o", Expiry::Never).await.unwrap());
    store.release("k", "o").await.unwrap();
    assert!(matches!(
        store.prune().await,
        Err(verrou_core::LockError::Store { .. })
    ));
    drop(store);
    conn.query_drop(format!("DROP USER '{user}'@'%'"))
        .await
        .unwrap();
    conn.disconnect().await.ok();
    drop_table(&table).await;
}

/// The soak: a million distinct keys locked and released, the row count
/// sampled as it goes; it stays flat (the background prune alone keeps it
/// bounded). Manual:
/// `cargo test -p verrou-mysql --release --test pruning -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of a million keys; run by hand"]
async fn soak_a_million_distinct_keys_keeps_the_table_flat() {
    let table = unique("verrou_soak");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let peak = soak_distinct_keys(Arc::new(store.clone()), 16, || async {
        rows(&table, "1").await
    })
    .await;
    assert!(peak < 100_000, "the table grew to {peak} rows");
    drop_table(&table).await;
}
