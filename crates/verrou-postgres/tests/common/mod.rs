//! The PostgreSQL side of the store's own tests: a direct admin connection,
//! dropping test tables, session names, and in [`scenarios`] the scenarios
//! run on stores built in more than one way. Where the server is, unique
//! names and bounded waits come from `verrou_testkit`.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod scenarios;

use std::time::Duration;

use verrou_core::Expiry;
use verrou_postgres::tokio_postgres::{self, Client, NoTls};
use verrou_testkit::Service;

/// A lease no test outlives.
pub const TTL: Expiry = Expiry::After(Duration::from_secs(60));

/// Far beyond any notification's delivery time, far below a test timeout.
pub const WOKEN_WITHIN: Duration = Duration::from_secs(10);

/// The test server's URL with an `application_name`, so that a test can find
/// (and kill) exactly the store's sessions in `pg_stat_activity`.
pub fn url_with_app(app: &str) -> String {
    let url = Service::Postgres.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// A direct connection outside any store, for setting up and inspecting.
pub async fn admin() -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&Service::Postgres.url(), NoTls).await?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away.
        let _ = connection.await;
    });
    Ok(client)
}

/// Drops a test table (best effort: it is a clean-up).
pub async fn drop_table(admin: &Client, table: &str) {
    let _ = admin
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await;
}

/// Terminates every session of `app`; returns how many there were.
pub async fn kill_sessions(admin: &Client, app: &str) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .len()
}

/// Opens a transaction on `blocker` that holds the row of `key` locked, as
/// a long transaction would, until it rolls back (or the session ends).
pub async fn lock_row_on(blocker: &Client, table: &str, key: &str) {
    blocker.batch_execute("BEGIN").await.unwrap();
    let rows = blocker
        .query(
            &format!("SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE"),
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

/// A session of its own holding the row of `key` locked until dropped.
pub async fn row_locked(table: &str, key: &str) -> Client {
    let blocker = admin().await.unwrap();
    lock_row_on(&blocker, table, key).await;
    blocker
}
