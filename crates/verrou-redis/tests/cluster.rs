//! Redis Cluster specifics: release announcements reach the store's single
//! subscriber whichever primary holds the lock.

use std::time::Duration;

use fred::util::redis_keyslot;
use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_redis::{RedisStore, fred};
use verrou_testkit::Service;

const PREFIX: &str = "verrou-cluster-test:";

/// One key per primary of the local cluster (slots 0-5460, 5461-10922,
/// 10923-16383, as `redis-cli --cluster create` splits them).
fn key_per_primary() -> Vec<String> {
    let run = verrou_testkit::unique("wake");
    let mut keys: Vec<Option<String>> = vec![None; 3];
    for i in 0.. {
        let key = format!("{run}:{i}");
        // The README's layout for a key without braces: `prefix{key}`.
        let slot = redis_keyslot(format!("{PREFIX}{{{key}}}").as_bytes());
        let shard = match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        keys[shard].get_or_insert(key);
        if keys.iter().all(Option::is_some) {
            break;
        }
    }
    keys.into_iter().flatten().collect()
}

#[tokio::test]
async fn releases_on_every_primary_wake_their_waiters() {
    let store = RedisStore::builder()
        .url(Service::RedisCluster.url())
        .prefix(PREFIX)
        .build()
        .await;
    let Some(store) = verrou_conformance::require_service("redis-cluster", store) else {
        return;
    };
    for key in key_per_primary() {
        let ttl = Expiry::After(Duration::from_secs(30));
        assert!(matches!(
            store.acquire(&key, "a", ttl).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        let watch = store
            .watch_release(&key)
            .await
            .unwrap()
            .expect("announcements");
        store.release(&key, "a").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), watch)
            .await
            .unwrap_or_else(|_| panic!("release of {key} was not announced"));
    }
}
