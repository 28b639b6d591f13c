//! The PostgreSQL side of the store's own tests: a direct admin connection,
//! dropping test tables, session names. Where the server is, unique names and
//! bounded waits come from `verrou_testkit`.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use verrou_postgres::tokio_postgres::{self, Client, NoTls};
use verrou_testkit::Service;

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
