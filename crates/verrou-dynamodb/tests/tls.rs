//! HTTPS in the default build: the emulator over HTTPS that `cargo xtask
//! services up dynamodb-tls` starts on 8443 ([`Service::DynamoDbTls`]), with
//! the test CA ([`TestCa`]). Locks work over HTTPS with `ca_file`; a
//! certificate the client must not trust fails the build with a `Store`
//! error in bounded time; a CA file that cannot work is a configuration
//! error before any request.

#![cfg(feature = "rustls")]

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use verrou_conformance::Capabilities;
use verrou_core::{LockError, LockStore};
use verrou_dynamodb::{DynamoDbStore, aws_sdk_dynamodb};
use verrou_testkit::Service;
use verrou_testkit::servers::TestCa;

/// The builder's 5 s operation timeout bounds the `DescribeTable` of the
/// build (SDK retries included); the rest is slack on a loaded machine.
const BUILD_BOUND: Duration = Duration::from_secs(15);

fn ca() -> TestCa {
    TestCa::from_env()
}

fn https_builder() -> verrou_dynamodb::DynamoDbStoreBuilder {
    support::builder_for(&Service::DynamoDbTls.url()).table_name("verrou_tls")
}

async fn store() -> Option<Arc<dyn LockStore>> {
    let built = https_builder().ca_file(ca().ca_file()).build().await;
    verrou_conformance::require_service("dynamodb-tls", built).map(|s| Arc::new(s) as _)
}

/// Builds with `build`, which must fail with a `Store` error within
/// [`BUILD_BOUND`]; returns the error's whole chain as text.
async fn store_error_in_time<F>(what: &str, build: F) -> String
where
    F: Future<Output = Result<DynamoDbStore, LockError>>,
{
    verrou_conformance::builders::store_error_within(what, BUILD_BOUND, build).await
}

#[tokio::test]
async fn locks_over_https_acquire_and_exclude() {
    let Some(store) = store().await else { return };
    let caps = Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    };
    verrou_conformance::acquire_locks_the_key(store.clone(), caps).await;
    verrou_conformance::exclusivity(store.clone(), caps).await;
    verrou_conformance::fencing_tokens_strictly_increase(store, caps).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_store_error_at_build() {
    if store().await.is_none() {
        return;
    }
    let chain = store_error_in_time(
        "another CA",
        https_builder().ca_file(ca().other_ca_file()).build(),
    )
    .await;
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

/// Without `ca_file` the platform's roots decide, and they do not know the
/// test CA.
#[tokio::test]
async fn the_platform_roots_do_not_trust_a_private_ca() {
    if store().await.is_none() {
        return;
    }
    let chain = store_error_in_time("platform roots", https_builder().build()).await;
    // rustls's words, through the SDK's error chain.
    assert!(
        chain.contains("invalid peer certificate: UnknownIssuer"),
        "{chain}"
    );
}

#[tokio::test]
async fn a_ca_file_for_plain_http_is_invalid_config() {
    let result = support::builder_for("http://127.0.0.1:1")
        .ca_file(ca().ca_file())
        .build()
        .await;
    assert!(
        matches!(&result, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("http://")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_ca_file_with_a_client_of_your_own_is_invalid_config() {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url("https://127.0.0.1:1")
        .build();
    let result = DynamoDbStore::from_client(aws_sdk_dynamodb::Client::from_conf(config))
        .ca_file(ca().ca_file())
        .build()
        .await;
    assert!(
        matches!(&result, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("from_client")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unusable_ca_file_is_invalid_config_before_any_request() {
    verrou_conformance::builders::rejects_unusable_ca_files(&["ca_file"], |file| {
        support::builder_for("https://127.0.0.1:1")
            .ca_file(file)
            .build()
    })
    .await;
}

#[test]
fn debug_shows_the_ca_file() {
    let builder = DynamoDbStore::builder().ca_file("/etc/verrou/ca.pem");
    assert!(format!("{builder:?}").contains("/etc/verrou/ca.pem"));
}
