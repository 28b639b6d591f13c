//! Store options against the shared Redis on 6379: reusing a fred client or
//! pool, prefixes, and the documented key layout.

use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_redis::{RedisStore, fred};
use verrou_testkit::{Service, unique};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

fn url() -> String {
    Service::Redis.url()
}

async fn fred_client() -> Option<fred::clients::Client> {
    let client = fred::clients::Client::new(
        fred::types::config::Config::from_url(&url()).unwrap(),
        None,
        None,
        None,
    );
    let connected = tokio::time::timeout(Duration::from_secs(3), client.init()).await;
    let connected = match connected {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    verrou_conformance::require_service("redis", connected)
}

#[tokio::test]
async fn a_reused_client_is_left_open_when_the_store_is_dropped() {
    let Some(client) = fred_client().await else {
        return;
    };
    let store = RedisStore::from_client(client.clone())
        .build()
        .await
        .unwrap();
    let key = unique("verrou-options-reuse");
    assert!(matches!(
        store.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    // Waiting once opens the store's own subscriber connection.
    assert!(store.watch_release(&key).await.unwrap().is_some());
    store.release(&key, "a").await.unwrap();
    drop(store);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.is_connected());
    let pong: String = client.ping(None).await.unwrap();
    assert_eq!(pong, "PONG");
    client.quit().await.unwrap();
}

#[tokio::test]
async fn a_reused_pool_and_a_built_pool_both_work() {
    let Some(_) = fred_client().await else { return };
    let pool =
        fred::types::Builder::from_config(fred::types::config::Config::from_url(&url()).unwrap())
            .build_pool(3)
            .unwrap();
    pool.init().await.unwrap();
    let reused = RedisStore::from_pool(pool.clone()).build().await.unwrap();
    let built = RedisStore::builder()
        .url(url())
        .max_connections(3)
        .build()
        .await
        .unwrap();
    let key = unique("verrou-options-pool");
    // Same server, no prefix on either: one lock.
    assert!(matches!(
        reused.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert_eq!(
        built.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    reused.release(&key, "a").await.unwrap();
    assert!(matches!(
        built.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    built.release(&key, "b").await.unwrap();
    pool.quit().await.unwrap();
}

#[tokio::test]
async fn different_prefixes_are_different_locks() {
    let Some(_) = fred_client().await else { return };
    let a = RedisStore::builder()
        .url(url())
        .prefix("verrou-a:")
        .build()
        .await
        .unwrap();
    let a_again = RedisStore::builder()
        .url(url())
        .prefix("verrou-a:")
        .build()
        .await
        .unwrap();
    let b = RedisStore::builder()
        .url(url())
        .prefix("verrou-b:")
        .build()
        .await
        .unwrap();
    let key = unique("verrou-options-prefix");
    assert!(matches!(
        a.acquire(&key, "x", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert_eq!(
        a_again.acquire(&key, "y", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(matches!(
        b.acquire(&key, "y", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    a.release(&key, "x").await.unwrap();
    b.release(&key, "y").await.unwrap();
}

/// The README's layout: `prefix{escaped key}` holds the owner with a `PX`
/// expiry, `...:fence` the last token (the server clock in microseconds),
/// expiring the counter retention after the instant the token names.
#[tokio::test]
async fn keys_are_laid_out_as_documented() {
    let Some(client) = fred_client().await else {
        return;
    };
    let prefix = format!("{}:", unique("verrou-options-layout"));
    let store = RedisStore::builder()
        .url(url())
        .prefix(prefix.as_str())
        .build()
        .await
        .unwrap();
    let lock_key = format!("{prefix}{{job\\\\{{7\\)}}");
    let fence_key = format!("{lock_key}:fence");

    let Acquisition::Acquired {
        fencing_token: Some(first),
    } = store.acquire("job\\{7}", "owner-1", TTL).await.unwrap()
    else {
        panic!("not acquired");
    };
    let owner: Option<String> = client.get(lock_key.as_str()).await.unwrap();
    assert_eq!(owner.as_deref(), Some("owner-1"));
    let ttl: i64 = client.pttl(lock_key.as_str()).await.unwrap();
    assert!(ttl > 25_000 && ttl <= 30_000, "pttl {ttl}");
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        first / 1_000_000 + 60 > now_secs && first / 1_000_000 < now_secs + 60,
        "token {first} is not a clock in microseconds"
    );

    store.force_release("job\\{7}").await.unwrap();
    let gone: i64 = client.exists(lock_key.as_str()).await.unwrap();
    assert_eq!(gone, 0);
    let token: Option<String> = client.get(fence_key.as_str()).await.unwrap();
    assert_eq!(
        token,
        Some(first.to_string()),
        "force release keeps the counter"
    );
    // The default retention is one hour past the token.
    let counter_ttl: i64 = client.pttl(fence_key.as_str()).await.unwrap();
    assert!(
        counter_ttl > 3_590_000 && counter_ttl <= 3_600_001,
        "counter pttl {counter_ttl}"
    );

    let second = store
        .acquire("job\\{7}", "owner-2", Expiry::Never)
        .await
        .unwrap();
    assert!(
        matches!(second, Acquisition::Acquired { fencing_token: Some(t) } if t > first),
        "{second:?} after {first}"
    );
    let no_expiry: i64 = client.pttl(lock_key.as_str()).await.unwrap();
    assert_eq!(no_expiry, -1, "Expiry::Never sets no expiry");
    store.release("job\\{7}", "owner-2").await.unwrap();
    let _: i64 = client.del(fence_key.as_str()).await.unwrap();
    client.quit().await.unwrap();
}
