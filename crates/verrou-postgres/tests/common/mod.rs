//! What the store's own tests share: the server URL, unique names, a direct
//! admin connection.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use verrou_postgres::tokio_postgres::{self, Client, NoTls};

/// The test server (`VERROU_POSTGRES_URL` overrides it).
pub fn url() -> String {
    std::env::var("VERROU_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The test server's URL with an `application_name`, so that a test can find
/// (and kill) exactly the store's sessions in `pg_stat_activity`.
pub fn url_with_app(app: &str) -> String {
    let url = url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// A name no other test or run uses, valid as a table name.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{suffix}")
}

/// A direct connection outside any store, for setting up and inspecting.
pub async fn admin() -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await?;
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

/// Polls `condition` until it holds; panics after `bound`.
pub async fn eventually<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < bound,
            "timed out after {bound:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
