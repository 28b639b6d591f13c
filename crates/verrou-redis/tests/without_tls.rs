//! Built without the `rustls` feature (`cargo test -p verrou-redis
//! --no-default-features --test without_tls`, which `cargo xtask ci` runs):
//! a TLS URL is refused, never connected in plain text.

#![cfg(not(feature = "rustls"))]

use verrou_core::LockError;
use verrou_redis::RedisStore;

/// Without the `rustls` feature fred would connect to a `rediss://` URL in
/// plain text; the store refuses it instead.
#[cfg(not(feature = "rustls"))]
#[tokio::test]
async fn a_tls_url_is_invalid_config() {
    for url in [
        "rediss://127.0.0.1:1",
        "rediss-cluster://127.0.0.1:1",
        "valkeys://127.0.0.1:1",
    ] {
        match RedisStore::builder().url(url).build().await {
            Err(LockError::InvalidConfig { reason, .. }) => {
                assert!(reason.contains("rustls"), "{url}: {reason}");
            }
            other => panic!("{url}: expected InvalidConfig, got {other:?}"),
        }
    }
}
