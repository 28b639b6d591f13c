//! The extremes of every `Duration` option: below a millisecond (zero
//! included) is `InvalidConfig`, anything larger works, and `Duration::MAX`
//! means no limit. Never a panic, never a hang.

mod common;

use verrou_conformance::builders;
use verrou_postgres::{PostgresStore, PostgresStoreBuilder};
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

/// A builder aimed at a port where nothing listens: the options must be
/// refused before any connection is tried.
fn unreachable() -> PostgresStoreBuilder {
    PostgresStore::builder().url("postgres://postgres@127.0.0.1:1/test")
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
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_timeouts");
    builders::huge_timeouts_work(|connect, operation| {
        PostgresStore::builder()
            .url(&Service::Postgres.url())
            .table_name(&table)
            .max_connections(1)
            .connect_timeout(connect)
            .operation_timeout(operation)
            .build()
    })
    .await;
    drop_table(&admin, &table).await;
}
