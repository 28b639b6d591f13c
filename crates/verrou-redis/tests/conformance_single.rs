//! The whole conformance suite against one Redis server (127.0.0.1:6379).

async fn make_store() -> Result<verrou_redis::RedisStore, verrou_core::LockError> {
    verrou_redis::RedisStore::builder()
        .url("redis://127.0.0.1:6379")
        .prefix("verrou-test:")
        .build()
        .await
}

verrou_conformance::conformance_tests!(
    async { verrou_conformance::require_service("redis", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
