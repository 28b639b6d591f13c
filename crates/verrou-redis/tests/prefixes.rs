//! Prefixes and keys never share a lock unless both are equal: the Redis
//! names are injective over (prefix, key), on one server and on a Cluster
//! (where a lock and its counter must also stay in one slot, or the acquire
//! script fails with `CROSSSLOT`).

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_redis::RedisStore;
use verrou_testkit::{Service, unique};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

async fn store(service: Service, prefix: &str) -> Option<RedisStore> {
    let store = RedisStore::builder()
        .url(service.url())
        .prefix(prefix)
        .build()
        .await;
    verrou_conformance::require_service(service.name(), store)
}

async fn two_stores_whose_prefix_and_key_concatenate_alike(service: Service) {
    // A run id, so that parallel and repeated runs never meet.
    let run = unique("verrou-prefixes");
    // `app:` + `eu:1` and `app:eu:` + `1` spell the same text.
    let Some(app) = store(service, &format!("{run}:app:")).await else {
        return;
    };
    let Some(app_eu) = store(service, &format!("{run}:app:eu:")).await else {
        return;
    };
    let first = app.acquire("eu:1", "one", TTL).await.unwrap();
    assert!(matches!(first, Acquisition::Acquired { .. }), "{first:?}");
    let second = app_eu.acquire("1", "two", TTL).await.unwrap();
    assert!(
        matches!(second, Acquisition::Acquired { .. }),
        "the two stores share a lock: {second:?}"
    );
    assert!(app.is_locked("eu:1").await.unwrap());
    app.release("eu:1", "one").await.unwrap();
    assert!(
        app_eu.is_locked("1").await.unwrap(),
        "releasing one store's lock freed the other's"
    );
    app_eu.release("1", "two").await.unwrap();
}

#[tokio::test]
async fn prefix_boundaries_are_kept_on_one_server() {
    two_stores_whose_prefix_and_key_concatenate_alike(Service::Redis).await;
}

#[tokio::test]
async fn prefix_boundaries_are_kept_on_a_cluster() {
    two_stores_whose_prefix_and_key_concatenate_alike(Service::RedisCluster).await;
}

/// Prefixes and keys made of the characters that matter to the layout (`{`,
/// `}`, `\`, `:`, `(`, `)`), chosen so that many pairs concatenate to the
/// same text (`R:` + `a:` and `R:a` + `:`), plus an empty prefix. Every
/// (prefix, key) pair is held at once by its own owner: each acquire must
/// succeed (no pair shares a lock with another), and each release must find
/// its own owner.
async fn awkward_prefixes_and_keys_are_all_distinct(service: Service) {
    // A run id, so that parallel and repeated runs never meet.
    let run = unique("verrou-prefixes");
    let tails = [
        ":", "a", ":a", "a:", ":a:", "{", "}", "{}", "}{", "\\", "\\)", "\\(", ")", "(", "{a}",
        "a}",
    ];
    let prefixes: Vec<String> = std::iter::once(String::new())
        .chain(
            [
                "", ":", ":a", ":a:", "{", "}", "\\", "\\(", ":{x}:", "*?[x]",
            ]
            .iter()
            .map(|s| format!("{run}{s}")),
        )
        .collect();
    // The empty prefix takes the run id into its keys, so that it never
    // meets other runs; its pairs then spell the same text as the others'.
    let keys = |prefix: &str| -> Vec<String> {
        tails
            .iter()
            .map(|t| {
                if prefix.is_empty() {
                    format!("{run}{t}")
                } else {
                    (*t).to_owned()
                }
            })
            .collect()
    };
    let mut stores = Vec::new();
    for prefix in &prefixes {
        let Some(store) = store(service, prefix).await else {
            return;
        };
        stores.push(store);
    }
    let owner = |p: usize, k: usize| format!("owner-{p}-{k}");
    for (p, store) in stores.iter().enumerate() {
        for (k, key) in keys(&prefixes[p]).iter().enumerate() {
            let got = store.acquire(key, &owner(p, k), TTL).await.unwrap();
            assert!(
                matches!(got, Acquisition::Acquired { .. }),
                "prefix {:?} + key {key:?} shares a lock with an earlier pair: {got:?}",
                prefixes[p]
            );
        }
    }
    for (p, store) in stores.iter().enumerate() {
        for (k, key) in keys(&prefixes[p]).iter().enumerate() {
            store
                .release(key, &owner(p, k))
                .await
                .unwrap_or_else(|e| panic!("prefix {:?} + key {key:?}: {e}", prefixes[p]));
        }
    }
}

#[tokio::test]
async fn awkward_prefixes_and_keys_are_distinct_on_one_server() {
    awkward_prefixes_and_keys_are_all_distinct(Service::Redis).await;
}

#[tokio::test]
async fn awkward_prefixes_and_keys_are_distinct_on_a_cluster() {
    awkward_prefixes_and_keys_are_all_distinct(Service::RedisCluster).await;
}
