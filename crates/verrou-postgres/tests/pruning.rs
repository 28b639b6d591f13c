//! Per-key state stays bounded: free rows are pruned once the server's clock
//! has passed their token (by a second), tokens keep rising across prunes,
//! held locks are never pruned, and the store prunes on its own.

mod common;

use std::sync::Arc;
use std::time::Duration;

use verrou_conformance::{churn_distinct_keys, granted_token, soak_distinct_keys};
use verrou_core::{Expiry, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::tokio_postgres::Client;
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, drop_table};

/// How far behind the clock a free row's token must be before it is pruned
/// (1 s), plus room for the round trips.
const PRUNE_AGE: Duration = Duration::from_millis(1200);

/// A store on its own table; `synchronous_commit` off because these tests
/// write thousands of rows and check counts, not durability.
async fn store_on(table: &str) -> PostgresStore {
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(table)
        .max_connections(8)
        .synchronous_commit(false)
        .release_announcements(false)
        .build()
        .await
        .unwrap()
}

async fn rows(admin: &Client, table: &str) -> i64 {
    admin
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_released_keys_are_pruned_and_held_ones_stay() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_prune");
    let store = store_on(&table).await;
    granted_token(store.acquire("held", "h", Expiry::Never).await.unwrap());
    granted_token(
        store
            .acquire("held-ttl", "h", Expiry::After(Duration::from_secs(600)))
            .await
            .unwrap(),
    );
    churn_distinct_keys(Arc::new(store.clone()), "order-", 10_000, 16).await;
    let before = rows(&admin, &table).await;
    // The background prune may already have taken some, never the held ones.
    assert!(before > 2, "{before}");

    tokio::time::sleep(PRUNE_AGE).await;
    let pruned = store.prune().await.unwrap();
    assert!(pruned > 0 && pruned <= 10_000, "{pruned}");
    assert_eq!(
        rows(&admin, &table).await,
        2,
        "only the held locks are left"
    );
    assert!(store.is_locked("held").await.unwrap());
    assert!(store.is_locked("held-ttl").await.unwrap());
    // Nothing left to prune.
    assert_eq!(store.prune().await.unwrap(), 0);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_pruned_key_starts_again_above_its_last_granted_token() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_prune_token");
    let store = store_on(&table).await;
    let first = granted_token(store.acquire("k", "a", Expiry::Never).await.unwrap());
    // Tokens are the server clock in microseconds (or just above).
    let clock_us: i64 = admin
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let clock_us = clock_us.unsigned_abs();
    assert!(
        first <= clock_us && clock_us - first < 60_000_000,
        "{first} vs {clock_us}"
    );
    store.release("k", "a").await.unwrap();
    // A second too early: the row must stay.
    assert_eq!(store.prune().await.unwrap(), 0);
    tokio::time::sleep(PRUNE_AGE).await;
    assert_eq!(store.prune().await.unwrap(), 1);
    assert_eq!(rows(&admin, &table).await, 0);
    let second = granted_token(store.acquire("k", "b", Expiry::Never).await.unwrap());
    assert!(second > first, "{second} <= {first}");
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn an_expired_lock_is_pruned_like_a_released_one() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_prune_expired");
    let store = store_on(&table).await;
    let first = granted_token(
        store
            .acquire("k", "a", Expiry::After(Duration::from_millis(50)))
            .await
            .unwrap(),
    );
    tokio::time::sleep(PRUNE_AGE).await;
    assert_eq!(store.prune().await.unwrap(), 1);
    // Expired means gone: the old owner cannot release it...
    assert!(store.release("k", "a").await.is_err());
    // ...and the next holder's token is higher.
    let second = granted_token(store.acquire("k", "b", Expiry::Never).await.unwrap());
    assert!(second > first);
    drop_table(&admin, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_prunes_on_its_own_as_it_acquires() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_auto_prune");
    let store = store_on(&table).await;
    churn_distinct_keys(Arc::new(store.clone()), "old-", 1000, 16).await;
    tokio::time::sleep(PRUNE_AGE).await;
    // No `prune` call: the acquisitions themselves start one in the
    // background every 1024.
    churn_distinct_keys(Arc::new(store.clone()), "new-", 1100, 16).await;
    eventually(
        "the background prune to delete the old rows",
        Duration::from_secs(10),
        || async {
            let old: i64 = admin
                .query_one(
                    &format!("SELECT count(*) FROM \"{table}\" WHERE key LIKE 'old-%'"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            old == 0
        },
    )
    .await;
    drop_table(&admin, &table).await;
}

/// The soak: a million distinct keys, locked and released, with the row
/// count sampled as it goes. It stays flat (the background prune alone keeps
/// it bounded). Manual:
/// `cargo test -p verrou-postgres --release --test pruning -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of a million keys; run by hand"]
async fn soak_a_million_distinct_keys_keeps_the_table_flat() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_soak");
    let store = store_on(&table).await;
    let peak = soak_distinct_keys(Arc::new(store.clone()), 16, || async {
        u64::try_from(rows(&admin, &table).await).unwrap_or(0)
    })
    .await;
    assert!(peak < 100_000, "the table grew to {peak} rows");
    drop_table(&admin, &table).await;
}
