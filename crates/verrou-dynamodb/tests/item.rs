//! The item layout the README documents, and fencing tokens that keep rising
//! when DynamoDB's TTL sweeper deletes an item.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::AttributeValue;
use verrou_testkit::unique;

async fn raw_item(store: &DynamoDbStore, key: &str) -> Option<HashMap<String, AttributeValue>> {
    store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("key", AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
}

fn attributes(item: &HashMap<String, AttributeValue>) -> Vec<&str> {
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item[name].as_n().unwrap().parse().unwrap()
}

fn token(acquisition: Acquisition) -> u64 {
    match acquisition {
        Acquisition::Acquired { fencing_token } => {
            fencing_token.expect("dynamodb has fencing tokens")
        }
        Acquisition::Held => panic!("expected to acquire"),
    }
}

#[tokio::test]
async fn the_item_holds_owner_expiry_counter_and_sweep_time() {
    let Some(store) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let key = unique("item-layout");
    let token = token(
        store
            .acquire(&key, "owner-a", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap(),
    );

    let item = raw_item(&store, &key).await.unwrap();
    assert_eq!(
        attributes(&item),
        [
            "delete_after",
            "expires_at_ms",
            "fencing_token",
            "key",
            "lease_ms",
            "lease_version",
            "owner"
        ]
    );
    assert_eq!(item["owner"].as_s().unwrap(), "owner-a");
    assert_eq!(number(&item, "fencing_token"), token);
    let expires_at_ms = number(&item, "expires_at_ms");
    // The length other clients time the lease by: the TTL, rounded up, plus
    // the millisecond `expires_at_ms` adds for the holder's clock.
    assert_eq!(number(&item, "lease_ms"), 30_001);
    let version = item["lease_version"].as_s().unwrap().clone();
    // The sweeper runs on epoch seconds, at least an hour after the lease.
    assert!(number(&item, "delete_after") >= expires_at_ms / 1000 + 3600);

    // An extension writes a new lease version: whoever was timing the old
    // one starts again.
    store
        .extend(&key, "owner-a", Expiry::After(Duration::from_secs(30)))
        .await
        .unwrap();
    let item = raw_item(&store, &key).await.unwrap();
    assert_ne!(item["lease_version"].as_s().unwrap(), &version);

    // Released: the counter stays (tokens keep rising), the lease goes.
    store.release(&key, "owner-a").await.unwrap();
    let item = raw_item(&store, &key).await.unwrap();
    assert_eq!(attributes(&item), ["delete_after", "fencing_token", "key"]);

    // Held forever: no length to time, nothing the sweeper could act on.
    store.acquire(&key, "owner-b", Expiry::Never).await.unwrap();
    let item = raw_item(&store, &key).await.unwrap();
    assert_eq!(
        attributes(&item),
        ["fencing_token", "key", "lease_version", "owner"]
    );
    store.force_release(&key).await.unwrap();
}

#[tokio::test]
async fn force_release_of_a_never_locked_key_writes_nothing() {
    let Some(store) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let key = unique("never-locked");
    store.force_release(&key).await.unwrap();
    assert_eq!(raw_item(&store, &key).await, None);
}

#[tokio::test]
async fn tokens_keep_rising_after_the_sweeper_deletes_the_item() {
    let Some(store) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let key = unique("swept");
    let mut last = 0;
    for _ in 0..3 {
        let next = token(
            store
                .acquire(&key, "a", Expiry::After(Duration::from_secs(30)))
                .await
                .unwrap(),
        );
        assert!(next > last, "{next} after {last}");
        last = next;
        store.release(&key, "a").await.unwrap();
    }
    // What DynamoDB's TTL sweeper does to an item whose `delete_after` passed.
    store
        .client()
        .delete_item()
        .table_name(store.table_name())
        .key("key", AttributeValue::S(key.clone()))
        .send()
        .await
        .unwrap();
    // Let the client clock move on, as it does over the sweeper's grace hour.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = token(
        store
            .acquire(&key, "a", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap(),
    );
    assert!(after > last, "the counter restarted: {after} after {last}");
    store.release(&key, "a").await.unwrap();
}

/// The requests `acquire_request` and `release_request` expose are the
/// store's own: sent bare on the store's client, the acquire takes the key
/// (with a fencing token, as the store's acquire answers) so that the store
/// sees it held, and the release frees it for the store.
#[tokio::test]
async fn the_public_requests_are_the_ones_the_store_sends() {
    let Some(store) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let key = unique("bare");
    let acquired = store
        .acquire_request(&key, "bare-owner", Expiry::After(Duration::from_secs(30)))
        .unwrap()
        .send()
        .await
        .unwrap();
    let token = acquired
        .attributes()
        .and_then(|a| a.get("fencing_token"))
        .map(|t| t.as_n().unwrap().parse::<u64>().unwrap())
        .expect("UPDATED_NEW hands the fencing token back");
    assert!(token > 0);
    let item = raw_item(&store, &key).await.expect("the item");
    assert_eq!(item["owner"].as_s().unwrap(), "bare-owner");
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store
            .acquire(&key, "other", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap(),
        Acquisition::Held
    );
    // Another owner's release is refused by its condition.
    let refused = store.release_request(&key, "other").send().await;
    assert!(
        refused.as_ref().is_err_and(|e| e
            .as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception())),
        "{refused:?}"
    );
    store
        .release_request(&key, "bare-owner")
        .send()
        .await
        .unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
    // The counter stayed: the store's next acquire gets a higher token.
    let next = self::token(
        store
            .acquire(&key, "next", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap(),
    );
    assert!(next > token, "{next} after {token}");
    store.release(&key, "next").await.unwrap();

    // Without a TTL too: the store's acquire for `Expiry::Never`.
    let key = unique("bare-never");
    store
        .acquire_request(&key, "bare-owner", Expiry::Never)
        .unwrap()
        .send()
        .await
        .unwrap();
    let item = raw_item(&store, &key).await.expect("the item");
    assert_eq!(
        attributes(&item),
        ["fencing_token", "key", "lease_version", "owner"]
    );
    store
        .release_request(&key, "bare-owner")
        .send()
        .await
        .unwrap();
    assert!(!store.is_locked(&key).await.unwrap());
}
