//! The clock-skew margin: a lease written by a client whose clock disagrees
//! with ours is not taken over until our clock is past its end plus the margin.
//!
//! A skewed client is simulated by writing its lock item directly, with the
//! lease end its clock would have produced.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::AttributeValue;

fn epoch_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The item a holder writes when its clock runs `behind_ms` behind ours and
/// it takes a lease of `ttl_ms`: by our clock the lease ends `behind_ms` early.
async fn write_skewed_lease(store: &DynamoDbStore, key: &str, behind_ms: u64, ttl_ms: u64) {
    let end = epoch_ms() - behind_ms + ttl_ms;
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item("key", AttributeValue::S(key.to_owned()))
        .item("owner", AttributeValue::S("skewed-holder".into()))
        .item("expires_at_ms", AttributeValue::N(end.to_string()))
        .item("fencing_token", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
}

async fn store_with_margin(margin: Duration) -> Option<DynamoDbStore> {
    verrou_conformance::require_service(
        "dynamodb",
        support::options().clock_skew_margin(margin).build().await,
    )
}

#[tokio::test]
async fn without_a_margin_a_holder_with_a_slow_clock_loses_its_running_lease() {
    // What the margin exists for: the holder has just taken a 10 s lease, but
    // its clock is 12 s behind ours, so by our clock the lease ended 2 s ago.
    let Some(store) = store_with_margin(Duration::ZERO).await else {
        return;
    };
    let key = support::fresh_table("skew-no-margin");
    write_skewed_lease(&store, &key, 12_000, 10_000).await;
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(matches!(
        store.acquire(&key, "us", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
}

#[tokio::test]
async fn a_margin_larger_than_the_skew_keeps_the_lease_held() {
    let Some(store) = store_with_margin(Duration::from_secs(20)).await else {
        return;
    };
    let key = support::fresh_table("skew-margin");
    write_skewed_lease(&store, &key, 12_000, 10_000).await;
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store.acquire(&key, "us", Expiry::Never).await.unwrap(),
        Acquisition::Held
    );
    assert_eq!(store.clock_skew_margin(), Duration::from_secs(20));
}

#[tokio::test]
async fn an_abandoned_lease_is_taken_over_after_its_end_plus_the_margin() {
    let margin = Duration::from_millis(400);
    let ttl = Duration::from_millis(200);
    let Some(store) = store_with_margin(margin).await else {
        return;
    };
    let key = support::fresh_table("skew-takeover");
    let taken = Instant::now();
    assert!(matches!(
        store
            .acquire(&key, "crashed", Expiry::After(ttl))
            .await
            .unwrap(),
        Acquisition::Acquired { .. }
    ));
    loop {
        let asked = Instant::now();
        match store
            .acquire(&key, "next", Expiry::After(ttl))
            .await
            .unwrap()
        {
            Acquisition::Held => {
                assert!(
                    asked.duration_since(taken) < Duration::from_secs(10),
                    "an abandoned lease was never taken over"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Acquisition::Acquired { .. } => {
                // The grant happened after we asked; our lease started before
                // `taken`, so the wait covers at least TTL plus margin.
                assert!(
                    taken.elapsed() >= ttl + margin,
                    "taken over after {:?}, before the lease end plus the margin",
                    taken.elapsed()
                );
                break;
            }
        }
    }
    store.release(&key, "next").await.unwrap();
}

#[tokio::test]
async fn a_release_frees_the_lock_at_once_whatever_the_margin() {
    let Some(store) = store_with_margin(Duration::from_secs(60)).await else {
        return;
    };
    let key = support::fresh_table("skew-release");
    store
        .acquire(&key, "a", Expiry::After(Duration::from_secs(30)))
        .await
        .unwrap();
    store.release(&key, "a").await.unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    assert!(matches!(
        store
            .acquire(&key, "b", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "b").await.unwrap();
}
