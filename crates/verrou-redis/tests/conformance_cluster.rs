//! The whole conformance suite against a Redis Cluster
//! ([`Service::RedisCluster`](verrou_testkit::Service::RedisCluster), started
//! by `cargo xtask services up`).

use verrou_testkit::Service;

async fn make_store() -> Result<verrou_redis::RedisStore, verrou_core::LockError> {
    verrou_redis::RedisStore::builder()
        .url(Service::RedisCluster.url())
        .prefix("verrou-test:")
        .build()
        .await
}

verrou_conformance::conformance_tests!(
    async { verrou_conformance::require_service("redis-cluster", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
