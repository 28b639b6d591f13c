//! The extremes of every `Duration` option of the builder: zero, 1 ns, huge
//! and `Duration::MAX` give a clear `InvalidConfig` (or, for the counter
//! retention, "forever"), never a panic or a hang; the edges of each range
//! work.

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_redis::{RedisStore, RedisStoreBuilder};

const URL: &str = "redis://127.0.0.1:6379";

const EXTREMES: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_secs(100 * 365 * 24 * 3600),
    Duration::from_secs(u64::MAX),
    Duration::MAX,
];

async fn reachable() -> bool {
    let store = RedisStore::builder().url(URL).build().await;
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

#[tokio::test]
async fn extreme_timeouts_are_invalid_config() {
    if !reachable().await {
        return;
    }
    for value in EXTREMES {
        let connect = build(RedisStore::builder().url(URL).connect_timeout(value)).await;
        assert_invalid_config("connect_timeout", value, connect);
        let command = build(RedisStore::builder().url(URL).command_timeout(value)).await;
        assert_invalid_config("command_timeout", value, command);
    }
    // Also when reusing a client: the store still applies the timeouts.
    let existing = RedisStore::builder().url(URL).build().await.unwrap();
    let reused = build(
        RedisStore::builder()
            .client(existing.client().clone())
            .command_timeout(Duration::ZERO),
    )
    .await;
    assert_invalid_config("command_timeout", Duration::ZERO, reused);
}

/// 1 ms and 1 h are the edges of the range: accepted, and a 1 ms timeout
/// either makes it on loopback or fails with a `Store` error in time.
#[tokio::test]
async fn timeouts_at_the_edges_of_their_range_work() {
    if !reachable().await {
        return;
    }
    let hour = Duration::from_secs(3600);
    let store = build(
        RedisStore::builder()
            .url(URL)
            .connect_timeout(hour)
            .command_timeout(hour),
    )
    .await
    .unwrap();
    assert!(!store.is_locked("verrou-durations:nothing").await.unwrap());

    let ms = Duration::from_millis(1);
    match build(
        RedisStore::builder()
            .url(URL)
            .connect_timeout(ms)
            .command_timeout(ms),
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
        let result = build(RedisStore::builder().url(URL).counter_retention(value)).await;
        assert_invalid_config("counter_retention", value, result);
    }
    // A prefix of its own: a prune sweeps the whole prefix, and with a 1 ms
    // retention it would remove other tests' counters.
    let prefix = format!("verrou-durations:{}:", std::process::id());
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
                .url(URL)
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
