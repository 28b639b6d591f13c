//! Clocks that disagree cannot let two holders in: another client's lease is
//! taken over only once this store has seen it unchanged (same
//! `lease_version`) for its whole length, whatever its `expires_at_ms` says
//! by our clock.
//!
//! A client with a skewed clock is simulated by writing its lock item
//! directly, as it would: the lease end by its own clock, the lease length
//! and a lease version. Each store value stands for one process: it has its
//! own memory of the leases it has seen.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use verrou_core::{Acquisition, Expiry, LockError, LockFactory, LockStore, RetryPolicy};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
use verrou_testkit::unique;

const HOUR_MS: i64 = 3_600_000;

fn epoch_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The item a holder writes when its clock is `ahead_ms` ahead of ours
/// (negative: behind) and it takes a lease of `length_ms` under `version`.
async fn write_skewed_lease(
    store: &DynamoDbStore,
    key: &str,
    ahead_ms: i64,
    length_ms: u64,
    version: &str,
) {
    let end = epoch_ms() + ahead_ms + i64::try_from(length_ms).unwrap();
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item("key", AttributeValue::S(key.to_owned()))
        .item("owner", AttributeValue::S("skewed-holder".into()))
        .item("expires_at_ms", AttributeValue::N(end.to_string()))
        .item("lease_ms", AttributeValue::N(length_ms.to_string()))
        .item("lease_version", AttributeValue::S(version.to_owned()))
        .item("fencing_token", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
}

async fn store_with_margin(margin: Duration) -> Option<DynamoDbStore> {
    verrou_conformance::require_service(
        "dynamodb",
        support::builder().clock_skew_margin(margin).build().await,
    )
}

/// Polls `acquire` every 20 ms until it is granted; how long that took from
/// `since`.
async fn poll_until_acquired(store: &DynamoDbStore, key: &str, since: Instant) -> Duration {
    loop {
        match store
            .acquire(key, "contender", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap()
        {
            Acquisition::Acquired { .. } => return since.elapsed(),
            Acquisition::Held => {
                assert!(
                    since.elapsed() < Duration::from_secs(10),
                    "an abandoned lease was never taken over"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_running_lease_stays_held_whatever_the_holders_clock_says() {
    // The default margin (zero) is enough: no end is compared with our clock.
    let Some(store) = store_with_margin(Duration::ZERO).await else {
        return;
    };
    // Holders whose clocks run an hour or 12 s behind ours (so by our clock
    // their 10 s leases ended long ago: what a client whose clock runs ahead
    // sees) or ahead of ours.
    for ahead_ms in [-HOUR_MS, -12_000, 12_000, HOUR_MS] {
        let key = unique("skew-running");
        write_skewed_lease(&store, &key, ahead_ms, 10_000, "v1").await;
        assert!(store.is_locked(&key).await.unwrap(), "skew {ahead_ms} ms");
        assert_eq!(
            store.acquire(&key, "us", Expiry::Never).await.unwrap(),
            Acquisition::Held,
            "skew {ahead_ms} ms: a running lease was taken over"
        );
        assert!(matches!(
            store.release(&key, "us").await,
            Err(LockError::NotOwned { .. })
        ));
    }
}

#[tokio::test]
async fn an_abandoned_lease_is_taken_over_once_seen_unchanged_for_its_length() {
    let Some(store) = store_with_margin(Duration::ZERO).await else {
        return;
    };
    let length = Duration::from_millis(300);
    for ahead_ms in [-HOUR_MS, HOUR_MS] {
        let key = unique("skew-abandoned");
        let length_ms = u64::try_from(length.as_millis()).unwrap();
        write_skewed_lease(&store, &key, ahead_ms, length_ms, "v1").await;
        let first_look = Instant::now();
        let took = poll_until_acquired(&store, &key, first_look).await;
        // The first sighting came after `first_look`, and the wait counts
        // from there: the whole length, never less.
        assert!(
            took >= length,
            "skew {ahead_ms} ms: taken over after {took:?}"
        );
        assert!(
            took < length + Duration::from_secs(2),
            "skew {ahead_ms} ms: {took:?}"
        );
        store.release(&key, "contender").await.unwrap();
    }
}

#[tokio::test]
async fn a_renewed_lease_is_never_taken_over_even_with_its_end_in_our_past() {
    let Some(store) = store_with_margin(Duration::ZERO).await else {
        return;
    };
    // With `is_locked` reading the lease at every step, and with acquire
    // attempts alone (which, on an emulator that does not send the refused
    // item back, read it only when a wait is over).
    for with_reads in [true, false] {
        let key = unique("skew-renewed");
        // The holder's clock is an hour behind; it renews its 1 s lease every
        // 100 ms, each time under a new version, for three lease lengths.
        let started = Instant::now();
        let mut renewals = 0;
        let mut renewed = started;
        write_skewed_lease(&store, &key, -HOUR_MS, 1_000, "v0").await;
        while started.elapsed() < Duration::from_secs(3) {
            if renewed.elapsed() >= Duration::from_millis(100) {
                renewals += 1;
                renewed = Instant::now();
                write_skewed_lease(&store, &key, -HOUR_MS, 1_000, &format!("v{renewals}")).await;
            }
            assert_eq!(
                store
                    .acquire(&key, "us", Expiry::After(Duration::from_secs(30)))
                    .await
                    .unwrap(),
                Acquisition::Held,
                "a renewed lease was taken over after {:?} (reads: {with_reads})",
                started.elapsed()
            );
            if with_reads {
                assert!(store.is_locked(&key).await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(renewals >= 10, "only {renewals} renewals");
        // The holder stops renewing: its last lease is taken over, at most
        // two lease lengths later (one to notice the last renewal, one to
        // wait it out).
        let stopped = Instant::now();
        let took = poll_until_acquired(&store, &key, stopped).await;
        assert!(
            took < Duration::from_secs(3),
            "{took:?} (reads: {with_reads})"
        );
        store.release(&key, "contender").await.unwrap();
    }
}

#[tokio::test]
async fn a_newcomer_watches_a_whole_lease_before_taking_it_over() {
    let (Some(writer), Some(newcomer)) = (
        store_with_margin(Duration::ZERO).await,
        store_with_margin(Duration::ZERO).await,
    ) else {
        return;
    };
    let key = unique("skew-newcomer");
    let ttl = Duration::from_millis(300);
    writer
        .acquire(&key, "crashed", Expiry::After(ttl))
        .await
        .unwrap();
    // Over by every clock, and the client that wrote it knows it.
    tokio::time::sleep(ttl * 2).await;
    assert!(!writer.is_locked(&key).await.unwrap());
    // A client that never saw the lease must watch it for its length first.
    let first_look = Instant::now();
    assert!(newcomer.is_locked(&key).await.unwrap());
    let took = poll_until_acquired(&newcomer, &key, first_look).await;
    assert!(took >= ttl, "taken over {took:?} after the first look");
    newcomer.release(&key, "contender").await.unwrap();
}

#[tokio::test]
async fn the_margin_adds_to_the_wait() {
    let margin = Duration::from_millis(400);
    let Some(store) = store_with_margin(margin).await else {
        return;
    };
    assert_eq!(store.clock_skew_margin(), margin);
    let key = unique("skew-margin");
    write_skewed_lease(&store, &key, -HOUR_MS, 200, "v1").await;
    let first_look = Instant::now();
    let took = poll_until_acquired(&store, &key, first_look).await;
    assert!(
        took >= Duration::from_millis(600),
        "taken over {took:?} after the first look, before the length plus the margin"
    );
    store.release(&key, "contender").await.unwrap();
}

#[tokio::test]
async fn a_lease_taken_and_extended_through_a_lock_is_released_at_once() {
    // A long margin on both sides: a release must not wait for it.
    let margin = Duration::from_secs(60);
    let (Some(ours), Some(theirs)) = (
        store_with_margin(margin).await,
        store_with_margin(margin).await,
    ) else {
        return;
    };
    let key = unique("skew-release");
    let lock = LockFactory::new(ours)
        .create_lock(&key, Duration::from_secs(30))
        .unwrap();
    lock.acquire().await.unwrap();
    lock.extend().await.unwrap();
    lock.extend_by(Duration::from_secs(45)).await.unwrap();
    // The other process has seen the running lease.
    assert!(theirs.is_locked(&key).await.unwrap());
    let other = LockFactory::new(theirs.clone())
        .with_retry(RetryPolicy::default().with_attempts(Some(1)))
        .create_lock(&key, Duration::from_secs(30))
        .unwrap();
    assert!(!other.try_acquire().await.unwrap());

    lock.release().await.unwrap();
    assert!(!theirs.is_locked(&key).await.unwrap());
    assert!(
        other.try_acquire().await.unwrap(),
        "the first attempt after a release must win"
    );
    other.release().await.unwrap();
}

#[tokio::test]
async fn an_item_without_a_lease_length_is_held_until_released() {
    // Written by something other than this store (by hand, another tool):
    // guessing its length could let two holders in, so only a release or a
    // force release frees it, however old its end looks.
    let Some(store) = store_with_margin(Duration::ZERO).await else {
        return;
    };
    let key = unique("skew-foreign");
    store
        .client()
        .put_item()
        .table_name(store.table_name())
        .item("key", AttributeValue::S(key.clone()))
        .item("owner", AttributeValue::S("someone".into()))
        .item(
            "expires_at_ms",
            AttributeValue::N((epoch_ms() - HOUR_MS).to_string()),
        )
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(store.is_locked(&key).await.unwrap());
        assert_eq!(
            store.acquire(&key, "us", Expiry::Never).await.unwrap(),
            Acquisition::Held
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.force_release(&key).await.unwrap();
    assert!(matches!(
        store.acquire(&key, "us", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "us").await.unwrap();
}
