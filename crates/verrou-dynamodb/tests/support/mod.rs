//! What the test files share: a builder on the emulator and a store on it.

#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use verrou_core::LockError;
use verrou_dynamodb::{DynamoDbStore, DynamoDbStoreBuilder};
use verrou_testkit::Service;

/// A builder on `endpoint` with the dummy credentials an emulator accepts,
/// failing fast when it is down.
pub fn builder_for(endpoint: &str) -> DynamoDbStoreBuilder {
    DynamoDbStore::builder()
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("verrou-test", "verrou-test-secret")
        .connect_timeout(Duration::from_secs(1))
        .operation_timeout(Some(Duration::from_secs(5)))
}

/// A builder on the shared emulator ([`Service::DynamoDb`]).
pub fn builder() -> DynamoDbStoreBuilder {
    builder_for(&Service::DynamoDb.url())
}

/// A store on the shared emulator and the default table.
pub async fn make_store() -> Result<DynamoDbStore, LockError> {
    builder().build().await
}
