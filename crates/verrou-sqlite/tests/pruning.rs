//! Per-key state stays bounded: free rows are pruned once the clock has
//! passed their token (by a second), tokens keep rising across prunes, held
//! locks are never pruned, and the store prunes on its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use verrou_conformance::{churn_distinct_keys, granted_token, soak_distinct_keys};
use verrou_core::{Expiry, LockStore};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::Connection;
use verrou_testkit::unique;

/// How far behind the clock a free row's token must be before it is pruned
/// (1 s), plus room.
const PRUNE_AGE: Duration = Duration::from_millis(1200);

struct Database(PathBuf);

impl Database {
    fn new(name: &str) -> Self {
        Database(
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("{}.db", unique(&format!("verrou-sqlite-{name}")))),
        )
    }

    /// A store on one connection of the caller's, with `synchronous = OFF`:
    /// these tests write thousands of rows and check counts, not durability
    /// (each commit would otherwise wait for an fsync).
    async fn fast_store(&self) -> SqliteStore {
        let conn = Connection::open(&self.0).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF")
            .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        SqliteStore::builder()
            .connection(conn)
            .build()
            .await
            .unwrap()
    }

    fn count(&self, filter: &str) -> i64 {
        Connection::open(&self.0)
            .unwrap()
            .query_row(
                &format!("SELECT count(*) FROM verrou WHERE {filter}"),
                [],
                |r| r.get(0),
            )
            .unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.0.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

#[tokio::test]
async fn ten_thousand_released_keys_are_pruned_and_held_ones_stay() {
    let db = Database::new("prune");
    let store = db.fast_store().await;
    granted_token(store.acquire("held", "h", Expiry::Never).await.unwrap());
    granted_token(
        store
            .acquire("held-ttl", "h", Expiry::After(Duration::from_secs(600)))
            .await
            .unwrap(),
    );
    churn_distinct_keys(Arc::new(store.clone()), "order-", 10_000, 1).await;
    // The background prune may already have taken some, never the held ones.
    assert!(db.count("1") > 2);

    tokio::time::sleep(PRUNE_AGE).await;
    let pruned = store.prune().await.unwrap();
    assert!(pruned > 0 && pruned <= 10_000, "{pruned}");
    assert_eq!(db.count("1"), 2, "only the held locks are left");
    assert!(store.is_locked("held").await.unwrap());
    assert!(store.is_locked("held-ttl").await.unwrap());
    assert_eq!(store.prune().await.unwrap(), 0);
}

#[tokio::test]
async fn a_pruned_key_starts_again_above_its_last_granted_token() {
    let db = Database::new("prune-token");
    let store = db.fast_store().await;
    let first = granted_token(store.acquire("k", "a", Expiry::Never).await.unwrap());
    // Tokens are the clock in microseconds (or just above).
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    assert!(
        u128::from(first).abs_diff(now_us) < 60_000_000,
        "{first} vs {now_us}"
    );
    store.release("k", "a").await.unwrap();
    // Too early: the row stays.
    assert_eq!(store.prune().await.unwrap(), 0);
    tokio::time::sleep(PRUNE_AGE).await;
    assert_eq!(store.prune().await.unwrap(), 1);
    assert_eq!(db.count("1"), 0);
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
}

#[tokio::test]
async fn the_store_prunes_on_its_own_as_it_acquires() {
    let db = Database::new("auto-prune");
    let store = db.fast_store().await;
    churn_distinct_keys(Arc::new(store.clone()), "old-", 1000, 1).await;
    tokio::time::sleep(PRUNE_AGE).await;
    // No `prune` call: the acquisitions start one in the background every 1024.
    churn_distinct_keys(Arc::new(store.clone()), "new-", 1100, 1).await;
    let started = Instant::now();
    while db.count("key LIKE 'old-%'") > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the background prune did not delete the old rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The soak: a million distinct keys locked and released, the row count
/// sampled as it goes; it stays flat (the background prune alone keeps it
/// bounded). Manual:
/// `cargo test -p verrou-sqlite --release --test pruning -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a soak of a million keys; run by hand"]
async fn soak_a_million_distinct_keys_keeps_the_table_flat() {
    let db = Database::new("soak");
    let store = db.fast_store().await;
    let peak = soak_distinct_keys(Arc::new(store.clone()), 1, || async {
        u64::try_from(db.count("1")).unwrap_or(0)
    })
    .await;
    assert!(peak < 100_000, "the table grew to {peak} rows");
}
