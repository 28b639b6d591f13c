//! The builder checks every store passes (`verrou_conformance::builders`),
//! and the Redis options they do not cover. None needs a Redis server.

use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::LockError;
use verrou_redis::RedisStore;
use verrou_redis::fred::types::config::Config;

#[tokio::test]
async fn a_refused_connection_is_a_store_error() {
    builders::a_refused_connection_is_a_store_error(|address| {
        RedisStore::builder()
            .url(format!("redis://{address}"))
            .connect_timeout(Duration::from_secs(1))
            .build()
    })
    .await;
}

/// A server that accepts the connection and never answers fred's first
/// commands: the connect timeout ends the start-up.
#[tokio::test]
async fn a_silent_server_is_a_store_error() {
    builders::a_silent_server_is_a_store_error(|address| {
        RedisStore::builder()
            .url(format!("redis://{address}"))
            .connect_timeout(Duration::from_millis(500))
            .operation_timeout(Some(Duration::from_millis(500)))
            .build()
    })
    .await;
}

#[test]
fn debug_hides_the_password() {
    for url in [
        "redis://:s3cret-pw@127.0.0.1:1/0",
        "redis://alice:s3cret-pw@127.0.0.1:1",
        "redis-cluster://:s3cret-pw@127.0.0.1:1",
    ] {
        builders::debug_hides(&RedisStore::builder().url(url), "s3cret-pw");
        let config = Config::from_url(url).unwrap();
        builders::debug_hides(&RedisStore::builder().config(config), "s3cret-pw");
    }
}

#[tokio::test]
async fn zero_connections_is_invalid_config() {
    let result = RedisStore::builder().max_connections(0).build().await;
    match result {
        Err(error @ LockError::InvalidConfig { .. }) => {
            assert!(error.to_string().contains("max_connections"), "{error}");
        }
        other => panic!("max_connections(0): expected InvalidConfig, got {other:?}"),
    }
}
