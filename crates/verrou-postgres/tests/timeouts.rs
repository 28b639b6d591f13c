//! The extremes of every `Duration` option: below a millisecond (zero
//! included) is `InvalidConfig`, anything larger works, and `Duration::MAX`
//! means no limit. Never a panic, never a hang.

mod common;

use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_postgres::{PostgresStore, PostgresStoreBuilder};
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

const HUGE: [Duration; 3] = [
    Duration::from_millis(1),
    Duration::from_secs(1_000_000_000),
    Duration::MAX,
];

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
    let mut round = 0;
    for connect in HUGE {
        for operation in HUGE.map(Some).into_iter().chain([None]) {
            round += 1;
            // A key per round: a call cut short by a 1 ms bound may still
            // have taken its lock.
            let key = format!("k{round}");
            let attempt = async {
                let store = PostgresStore::builder()
                    .url(&Service::Postgres.url())
                    .table_name(&table)
                    .max_connections(1)
                    .connect_timeout(connect)
                    .operation_timeout(operation)
                    .build()
                    .await;
                // A 1 ms bound may genuinely run out on a loaded machine;
                // that is a typed `Store` error, the point is no panic.
                let store = match store {
                    Ok(store) => store,
                    Err(LockError::Store { .. }) if connect.as_millis() == 1 => return,
                    Err(error) => panic!("{connect:?}/{operation:?}: {error:?}"),
                };
                match store.acquire(&key, "o", Expiry::Never).await {
                    Ok(Acquisition::Acquired { .. }) => {}
                    Err(LockError::Store { .. })
                        if operation.is_some_and(|o| o.as_millis() == 1) => {}
                    other => panic!("{connect:?}/{operation:?}: {other:?}"),
                }
            };
            tokio::time::timeout(Duration::from_secs(30), attempt)
                .await
                .unwrap_or_else(|_| panic!("{connect:?}/{operation:?} hung"));
        }
    }
    drop_table(&admin, &table).await;
}
