//! The whole conformance suite against one Valkey server
//! ([`Service::Valkey`], which `cargo xtask services up` starts).

use verrou_redis::RedisStore;
use verrou_redis::fred::interfaces::ClientLike;
use verrou_redis::fred::types::{ClusterHash, CustomCommand};
use verrou_testkit::Service;

/// A store on the Valkey server, refused if the server is not Valkey: a
/// Redis on that port would pass the suite without testing Valkey at all.
async fn make_store() -> Result<RedisStore, String> {
    let store = RedisStore::builder()
        .url(Service::Valkey.url())
        .prefix("verrou-test:")
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let info: String = store
        .client()
        .custom(
            CustomCommand::new("INFO", ClusterHash::FirstKey, false),
            vec!["server"],
        )
        .await
        .map_err(|e| e.to_string())?;
    if info.contains("valkey_version:") {
        Ok(store)
    } else {
        // Not the URL itself: it may carry a password.
        Err("the server is not Valkey (`INFO server` has no valkey_version)".to_owned())
    }
}

verrou_conformance::conformance_tests!(
    async { verrou_conformance::require_service("valkey", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
