//! The MySQL side of the store's own tests: stores on the test server, a
//! direct admin connection, dropping test tables, and in [`scenarios`] the
//! scenarios run on stores built in more than one way. Where the server is,
//! unique names and bounded waits come from `verrou_testkit`.

#![allow(dead_code)] // each test file uses its own subset

pub mod scenarios;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, LockError};
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
    drop_table_on(&mut conn, table).await;
    conn.disconnect().await.ok();
}

/// Drops a table created by a test, on `conn`.
pub async fn drop_table_on(conn: &mut mysql_async::Conn, table: &str) {
    conn.query_drop(format!("DROP TABLE IF EXISTS `{table}`"))
        .await
        .expect("drop table");
}

/// The fencing token of an acquisition that took the lock.
pub fn token(acquisition: Acquisition) -> u64 {
    match acquisition {
        Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("expected an acquisition with a token, got {other:?}"),
    }
}

/// Opens a transaction on `blocker` that holds the row of `key` locked, as
/// a long transaction would, until it rolls back.
pub async fn lock_row_on(blocker: &mut mysql_async::Conn, table: &str, key: &str) {
    blocker.query_drop("START TRANSACTION").await.unwrap();
    let held: Option<u8> = blocker
        .exec_first(
            format!("SELECT 1 FROM `{table}` WHERE lock_key = ? FOR UPDATE"),
            (key,),
        )
        .await
        .unwrap();
    assert_eq!(held, Some(1));
}

/// The ids of the connections running a write (`UPDATE`, `INSERT`) on
/// `table` now, as `conn` sees them.
pub async fn writers_on(conn: &mut mysql_async::Conn, table: &str) -> Vec<u64> {
    conn.exec(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? OR INFO LIKE ?",
        (
            format!("UPDATE `{table}`%"),
            format!("INSERT INTO `{table}`%"),
        ),
    )
    .await
    .unwrap()
}
