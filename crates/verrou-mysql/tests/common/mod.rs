//! The MySQL side of the store's own tests: stores on the test server, a
//! direct admin connection, dropping test tables. Where the server is, unique
//! names and bounded waits come from `verrou_testkit`.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_core::LockError;
use verrou_mysql::{MysqlStore, MysqlStoreBuilder, mysql_async};
use verrou_testkit::Service;

/// A builder on the test server with a small pool.
pub fn builder() -> MysqlStoreBuilder {
    MysqlStore::builder()
        .url(&Service::Mysql.url())
        .max_connections(4)
}

/// A store on the default table.
pub async fn store() -> Result<MysqlStore, LockError> {
    builder().build().await
}

/// A store on its own table (drop it with [`drop_table`]).
pub async fn store_on(table: &str) -> Result<MysqlStore, LockError> {
    builder().table_name(table).build().await
}

/// A connection of its own, outside any store, for the test's side actions.
pub async fn admin() -> Result<mysql_async::Conn, mysql_async::Error> {
    tokio::time::timeout(
        Duration::from_secs(5),
        mysql_async::Conn::from_url(Service::Mysql.url()),
    )
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
