//! What the test files share: the server URL, fresh names, stores, waits.

#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use verrou_core::LockError;
use verrou_mysql::{MysqlStore, MysqlStoreBuilder, mysql_async};

/// The test server; `VERROU_MYSQL_URL` overrides it.
pub fn url() -> String {
    std::env::var("VERROU_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// A builder on the test server with a small pool.
pub fn builder() -> MysqlStoreBuilder {
    MysqlStore::builder().url(&url()).max_connections(4)
}

/// A store on the default table.
pub async fn store() -> Result<MysqlStore, LockError> {
    builder().build().await
}

/// A store on its own table (drop it with [`drop_table`]).
pub async fn store_on(table: &str) -> Result<MysqlStore, LockError> {
    builder().table_name(table).build().await
}

/// A name no other test or run uses: `<prefix>_<12 hex digits>`.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{suffix}")
}

/// A connection of its own, outside any store, for the test's side actions.
pub async fn admin() -> Result<mysql_async::Conn, mysql_async::Error> {
    tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::from_url(url()))
        .await
        .unwrap_or_else(|_| Err(mysql_async::Error::Other("no connection within 5 s".into())))
}

/// Drops a table created by a test.
pub async fn drop_table(table: &str) {
    let mut conn = admin().await.expect("admin connection");
    conn.query_drop(format!("DROP TABLE IF EXISTS `{table}`"))
        .await
        .expect("drop table");
    conn.disconnect().await.ok();
}

/// Polls `condition` every 20 ms until it holds; panics after `bound`.
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
