//! Built without the `rustls` feature (`cargo test -p verrou-dynamodb
//! --no-default-features --test without_tls`, which `cargo xtask ci` runs):
//! an HTTPS endpoint is refused at build, never tried over plain HTTP.

#![cfg(not(feature = "rustls"))]

mod support;

use verrou_core::LockError;

#[tokio::test]
async fn https_is_invalid_config() {
    for options in [
        support::builder_for("https://dynamodb.eu-west-3.amazonaws.com"),
        verrou_dynamodb::DynamoDbStore::builder()
            .region("eu-west-3")
            .credentials("id", "secret"),
    ] {
        let error = options.build().await.unwrap_err();
        assert!(
            matches!(
                error,
                LockError::InvalidConfig {
                    store: "dynamodb",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
