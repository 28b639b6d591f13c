//! The transfer race: money is created without a lock and conserved with one.

use std::time::Duration;

use verrou_core::{LockFactory, RetryPolicy};
use verrou_integration_tests::bank::{race_with_lock, race_without_lock};
use verrou_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_race_creates_money_without_a_lock() {
    // Proves the scenario is a real race, so the locked run below means
    // something. Only debits can be lost, so the error never cancels out and
    // one run is enough.
    let total = race_without_lock(10, 200).await.total();
    assert!(
        total > 10_000,
        "an unlocked run did not create money: {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lock_conserves_the_total() {
    let locks = LockFactory::new(MemoryStore::new())
        .with_retry(RetryPolicy::default().with_timeout(Some(Duration::from_secs(60))));
    let bank = race_with_lock(&locks, 10, 200).await.unwrap();
    assert_eq!(bank.total(), 10_000);
}
