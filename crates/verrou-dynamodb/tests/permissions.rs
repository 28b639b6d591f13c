//! The IAM actions the README's "Production" section lists are exactly the
//! API calls the store makes: every request of a store's life (build on a
//! new table, each lock operation, a takeover) is recorded from its
//! `X-Amz-Target` header.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::Client;
use verrou_dynamodb::aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use verrou_dynamodb::aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use verrou_testkit::unique;

/// The README's table, with the defaults (`create_table`, `native_ttl`).
const DOCUMENTED: [&str; 6] = [
    "CreateTable",
    "DescribeTable",
    "DescribeTimeToLive",
    "GetItem",
    "UpdateItem",
    "UpdateTimeToLive",
];

/// The operations sent, by name (`DynamoDB_20120810.UpdateItem` →
/// `UpdateItem`).
#[derive(Debug, Default, Clone)]
struct Operations(Arc<Mutex<BTreeSet<String>>>);

impl Intercept for Operations {
    fn name(&self) -> &'static str {
        "verrou-test-operations"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(target) = context.request().headers().get("x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target);
            self.0.lock().unwrap().insert(operation.to_owned());
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_documented_iam_actions_are_the_calls_the_store_makes() {
    let Some(plain) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let seen = Operations::default();
    let config = plain.client().config().to_builder();
    let client = Client::from_conf(config.interceptor(seen.clone()).build());
    // A new table: creation and TTL set-up are part of the store's life.
    let table = unique("verrou-iam");
    let build = || DynamoDbStore::from_client(client.clone()).table_name(&table);
    let first = build().build().await.unwrap();
    let second = build().build().await.unwrap();

    let short = Expiry::After(Duration::from_millis(300));
    let long = Expiry::After(Duration::from_secs(30));
    assert!(matches!(
        first.acquire("k", "a", short).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert!(second.is_locked("k").await.unwrap());
    assert_eq!(
        second.acquire("k", "b", long).await.unwrap(),
        Acquisition::Held
    );
    // `second` takes the abandoned lease over once it has seen it unchanged
    // for its whole length.
    verrou_testkit::eventually("a takeover", Duration::from_secs(10), || async {
        matches!(
            second.acquire("k", "b", long).await,
            Ok(Acquisition::Acquired { .. })
        )
    })
    .await;
    second.extend("k", "b", long).await.unwrap();
    second.release("k", "b").await.unwrap();
    first.acquire("k", "a", long).await.unwrap();
    second.force_release("k").await.unwrap();

    let seen: Vec<String> = seen.0.lock().unwrap().iter().cloned().collect();
    assert_eq!(seen, DOCUMENTED, "update the README's IAM table");
}
