//! The whole conformance suite against a Redis Cluster (127.0.0.1:7000-7005,
//! started by `cargo xtask services up`).

async fn make_store() -> Result<verrou_redis::RedisStore, verrou_core::LockError> {
    verrou_redis::RedisStore::builder()
        .url("redis-cluster://127.0.0.1:7000")
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
