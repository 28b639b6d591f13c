//! The extremes of every `Duration` option of the builder: under a
//! millisecond is `InvalidConfig` (for the counter retention too), huge
//! values up to `Duration::MAX` mean no limit (or, for the counter
//! retention, "forever"), never a panic or a hang; 1 ms works.

use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_redis::fred::clients::Client;
use verrou_redis::fred::types::config::Config;
use verrou_redis::{RedisStore, RedisStoreBuilder};
use verrou_testkit::{Service, unique};

/// A century and beyond: past what any timeout needs, up to `Duration::MAX`.
const HUGE: [Duration; 3] = [
    Duration::from_secs(100 * 365 * 24 * 3600),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
];

async fn reachable() -> bool {
    let store = RedisStore::builder()
        .url(Service::Redis.url())
        .build()
        .await;
    verrou_conformance::require_service("redis", store).is_some()
}

/// Builds within a generous bound: a hang fails the test instead of
/// blocking it.
async fn build(builder: RedisStoreBuilder) -> Result<RedisStore, LockError> {
    tokio::time::timeout(Duration::from_secs(20), builder.build())
        .await
        .expect("build hung")
}

fn assert_invalid_config(option: &str, value: Duration, result: Result<RedisStore, LockError>) {
    match result {
        Err(error @ LockError::InvalidConfig { .. }) => {
            let message = error.to_string();
            assert!(message.contains(option), "{option} {value:?}: {message}");
        }
        other => panic!("{option}({value:?}): expected InvalidConfig, got {other:?}"),
    }
}

/// Checked before connecting, so no server is needed.
#[tokio::test]
async fn timeouts_under_a_millisecond_are_invalid_config() {
    let builder = || RedisStore::builder().url(Service::Redis.url());
    builders::rejects_timeouts_under_a_millisecond("connect_timeout", |limit| {
        builder().connect_timeout(limit).build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("operation_timeout", |limit| {
        builder().operation_timeout(Some(limit)).build()
    })
    .await;
    // Also on a reused client, whose own settings the store overrides. It
    // is never connected: the check comes first.
    let client = Client::new(Config::default(), None, None, None);
    builders::rejects_timeouts_under_a_millisecond("operation_timeout", |limit| {
        RedisStore::from_client(client.clone())
            .operation_timeout(Some(limit))
            .build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("connect_timeout", |limit| {
        RedisStore::from_client(client.clone())
            .connect_timeout(limit)
            .build()
    })
    .await;
}

/// Huge timeouts, up to `Duration::MAX`, are no limit: the store connects
/// and works.
#[tokio::test]
async fn huge_timeouts_mean_no_limit() {
    if !reachable().await {
        return;
    }
    let key = unique("verrou-durations-huge");
    for value in HUGE {
        for (option, builder) in [
            (
                "connect_timeout",
                RedisStore::builder().connect_timeout(value),
            ),
            (
                "operation_timeout",
                RedisStore::builder().operation_timeout(Some(value)),
            ),
            (
                "no operation_timeout",
                RedisStore::builder().operation_timeout(None),
            ),
        ] {
            let store = build(builder.url(Service::Redis.url()))
                .await
                .unwrap_or_else(|e| panic!("{option}({value:?}): {e}"));
            let acquired = store
                .acquire(&key, "a", Expiry::After(Duration::from_secs(30)))
                .await
                .unwrap();
            assert!(
                matches!(acquired, Acquisition::Acquired { .. }),
                "{option}({value:?}): {acquired:?}"
            );
            assert!(store.is_locked(&key).await.unwrap());
            store.release(&key, "a").await.unwrap();
            // The subscriber is bounded by the connect timeout.
            assert!(store.watch_release(&key).await.unwrap().is_some());
        }
    }
}

/// 1 ms, the least, is accepted: a call either makes it on loopback or
/// fails with a `Store` error in time.
#[tokio::test]
async fn one_millisecond_timeouts_work_or_fail_in_time() {
    if !reachable().await {
        return;
    }
    let ms = Duration::from_millis(1);
    match build(
        RedisStore::builder()
            .url(Service::Redis.url())
            .connect_timeout(ms)
            .operation_timeout(Some(ms)),
    )
    .await
    {
        Ok(store) => {
            let call = tokio::time::timeout(
                Duration::from_secs(10),
                store.is_locked("verrou-durations:nothing"),
            )
            .await
            .expect("a call with a 1 ms timeout hung");
            assert!(
                matches!(call, Ok(false) | Err(LockError::Store { .. })),
                "{call:?}"
            );
        }
        Err(LockError::Store { .. }) => {}
        Err(other) => panic!("1 ms timeouts: {other:?}"),
    }
}

#[tokio::test]
async fn counter_retention_extremes_are_invalid_or_forever() {
    if !reachable().await {
        return;
    }
    for value in [Duration::ZERO, Duration::from_nanos(1)] {
        let result = build(
            RedisStore::builder()
                .url(Service::Redis.url())
                .counter_retention(value),
        )
        .await;
        assert_invalid_config("counter_retention", value, result);
    }
    // A prefix of its own: a prune sweeps the whole prefix, and with a 1 ms
    // retention it would remove other tests' counters.
    let prefix = format!("{}:", unique("verrou-durations"));
    // 1 ms (the least) through a century work as retentions; beyond, the
    // counters are kept forever. Each must acquire with a rising token.
    let mut last = 0;
    for value in [
        Duration::from_millis(1),
        Duration::from_secs(3600),
        Duration::from_secs(100 * 365 * 24 * 3600),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let store = build(
            RedisStore::builder()
                .url(Service::Redis.url())
                .prefix(prefix.as_str())
                .counter_retention(value),
        )
        .await
        .unwrap_or_else(|e| panic!("counter_retention({value:?}): {e}"));
        let got = store
            .acquire("k", "a", Expiry::After(Duration::from_secs(10)))
            .await
            .unwrap();
        let Acquisition::Acquired {
            fencing_token: Some(token),
        } = got
        else {
            panic!("counter_retention({value:?}): {got:?}");
        };
        assert!(token > last, "{value:?}: {token} <= {last}");
        last = token;
        store.release("k", "a").await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), store.prune())
            .await
            .expect("prune hung")
            .unwrap();
    }
}
