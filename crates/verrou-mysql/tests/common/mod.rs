//! What the test files share: the server URL, fresh table names, stores.

#![allow(dead_code)] // each test file uses its own subset

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

/// A table name no other test or run uses.
pub fn fresh_table(case: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("verrou_test_{case}_{suffix}")
}

/// A key no other test or run uses.
pub fn fresh_key(case: &str) -> String {
    format!("verrou-mysql-test:{}", fresh_table(case))
}

/// A connection of its own, outside any store, for the test's side actions.
pub async fn admin() -> mysql_async::Conn {
    mysql_async::Conn::from_url(url())
        .await
        .expect("admin connection")
}

/// Drops a table created by a test.
pub async fn drop_table(table: &str) {
    let mut conn = admin().await;
    conn.query_drop(format!("DROP TABLE IF EXISTS `{table}`"))
        .await
        .expect("drop table");
    conn.disconnect().await.ok();
}
