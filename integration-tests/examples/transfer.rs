//! The bank-transfer race, without and with a verrou lock.
//!
//! `cargo run --example transfer`

use std::time::Duration;

use verrou_core::{LockFactory, RetryPolicy};
use verrou_integration_tests::bank::{race_with_lock, race_without_lock};
use verrou_memory::MemoryStore;

const ACCOUNTS: u32 = 10;
const TRANSFERS: u32 = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expected = i64::from(ACCOUNTS) * 1_000;

    let bank = race_without_lock(ACCOUNTS, TRANSFERS).await;
    let total = bank.total();
    println!(
        "without a lock: total {total} (expected {expected}): {} lost or created",
        (expected - total).abs()
    );

    let locks = LockFactory::new(MemoryStore::new())
        .with_retry(RetryPolicy::default().with_timeout(Some(Duration::from_secs(60))));
    let bank = race_with_lock(&locks, ACCOUNTS, TRANSFERS).await?;
    let total = bank.total();
    println!("with verrou (memory store): total {total} (expected {expected}): conserved = {}", total == expected);
    if total != expected {
        return Err("the lock did not protect the transfers".into());
    }
    Ok(())
}
