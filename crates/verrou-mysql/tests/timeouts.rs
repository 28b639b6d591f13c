//! The extremes of every `Duration` option: below a millisecond (zero
//! included) is `InvalidConfig`, anything larger works, and `Duration::MAX`
//! means no limit. Never a panic, never a hang.

mod common;

use verrou_conformance::builders;
use verrou_mysql::{MysqlStore, MysqlStoreBuilder};
use verrou_testkit::{require_service, unique};

use common::{admin, builder, drop_table};

/// Aimed at a port where nothing listens: the options must be refused
/// before any connection is tried.
fn unreachable() -> MysqlStoreBuilder {
    MysqlStore::builder().url("mysql://root@127.0.0.1:1/test")
}

#[tokio::test]
async fn timeouts_under_a_millisecond_are_invalid_config() {
    builders::rejects_timeouts_under_a_millisecond("connect_timeout", |timeout| {
        unreachable().connect_timeout(timeout).build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("operation_timeout", |timeout| {
        unreachable().operation_timeout(Some(timeout)).build()
    })
    .await;
}

#[tokio::test]
async fn huge_timeouts_work_without_panic_or_hang() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let table = unique("verrou_timeouts");
    builders::huge_timeouts_work(|connect, operation| {
        builder()
            .table_name(&table)
            .max_connections(1)
            .connect_timeout(connect)
            .operation_timeout(operation)
            .build()
    })
    .await;
    drop_table(&table).await;
}
