//! What the test files share: the emulator's address and a store on it.

#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use verrou_core::LockError;
use verrou_dynamodb::{DynamoDbOptions, DynamoDbStore};

/// The emulator `cargo xtask services up` starts, or `VERROU_DYNAMODB_ENDPOINT`.
pub fn endpoint() -> String {
    std::env::var("VERROU_DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned())
}

/// Options for `endpoint` with dummy credentials, failing fast when it is down.
pub fn options_for(endpoint: &str) -> DynamoDbOptions {
    DynamoDbStore::builder()
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("verrou-test", "verrou-test-secret")
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
}

pub fn options() -> DynamoDbOptions {
    options_for(&endpoint())
}

/// A store on the shared emulator and the default table.
pub async fn make_store() -> Result<DynamoDbStore, LockError> {
    options().build().await
}

/// A table name no other test or run uses.
pub fn fresh_table(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{suffix}")
}
