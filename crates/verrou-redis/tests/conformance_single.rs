//! The whole conformance suite against one Redis server
//! ([`Service::Redis`](verrou_testkit::Service::Redis)).

use verrou_testkit::Service;

async fn make_store() -> Result<verrou_redis::RedisStore, verrou_core::LockError> {
    verrou_redis::RedisStore::builder()
        .url(Service::Redis.url())
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
