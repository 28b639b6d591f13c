//! Scenarios that more than one test runs, each on a store built its own way
//! (on the store's own pool, on a sqlx pool, over TLS). What differs comes in
//! as arguments: the store's builder, where the test's own connections come
//! from, the names; what happens and what is checked is written once, here.

use std::future::Future;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_mysql::{MysqlStoreBuilder, mysql_async};
use verrou_testkit::{eventually, unique};

use super::{drop_table, drop_table_on, lock_row_on, writers_on};

const TTL: Expiry = Expiry::After(Duration::from_secs(60));

/// Statements abandoned by a store from `builder` (on `table`, with a 2 s
/// operation timeout) are killed on the server and never apply: a release
/// that times out and an acquire its caller drops, both waiting on a row
/// that a connection from `connect` holds locked. `connect` gives the
/// test's own connections (a fresh one to the plain server, or one of a
/// pool on the TLS server); each is disconnected after use. Drops `table`.
pub async fn a_statement_abandoned_on_timeout_or_cancel_is_killed_and_never_applies<F, Fut>(
    builder: MysqlStoreBuilder,
    table: &str,
    connect: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = mysql_async::Conn>,
{
    let store = builder
        .table_name(table)
        .operation_timeout(Some(Duration::from_secs(2)))
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store.acquire(&key, "a", TTL).await.unwrap();
    let mut blocker = connect().await;
    lock_row_on(&mut blocker, table, &key).await;

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
        || async {
            let mut conn = connect().await;
            let running = writers_on(&mut conn, table).await;
            conn.disconnect().await.ok();
            running.is_empty()
        },
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
    let mut conn = connect().await;
    drop_table_on(&mut conn, table).await;
    conn.disconnect().await.ok();
}

/// A release by a store from `builder` (on `table`) waits on a locked
/// row, and `admin` kills the connection running it: the call is a `Store`
/// error, the release never ran, and the next call on the same store
/// works, the pool having replaced its connection. Drops `table`.
pub async fn a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works(
    builder: MysqlStoreBuilder,
    table: &str,
    mut admin: mysql_async::Conn,
) {
    let store = builder.table_name(table).build().await.unwrap();
    let key = unique("key");
    assert!(matches!(
        store.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    // Hold the row as a long transaction would, so the next statement on it
    // waits (the row lock wait is what is cut short).
    let mut blocker = super::admin().await.unwrap();
    lock_row_on(&mut blocker, table, &key).await;

    let pending = tokio::spawn({
        let store = store.clone();
        let key = key.clone();
        async move { store.release(&key, "a").await }
    });
    let started = Instant::now();
    let victim = loop {
        let mut conn = super::admin().await.unwrap();
        let writers = writers_on(&mut conn, table).await;
        conn.disconnect().await.ok();
        if let Some(id) = writers.first() {
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
    match result {
        Err(LockError::Store { store, .. }) => assert_eq!(store, "mysql"),
        other => panic!("expected a Store error, got {other:?}"),
    }
    blocker.query_drop("ROLLBACK").await.unwrap();
    blocker.disconnect().await.ok();

    // The same store, no rebuild: the pool opened a fresh connection. The
    // release never ran, so the lock is still "a"'s.
    assert!(store.is_locked(&key).await.unwrap());
    store.release(&key, "a").await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    admin.disconnect().await.ok();
    drop_table(table).await;
}
