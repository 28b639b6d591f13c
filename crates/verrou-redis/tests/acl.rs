//! The ACL rule the README's "Production" section gives is enough for every
//! store operation: a private `redis-server` with a user limited to it.

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_redis::RedisStore;
use verrou_testkit::servers::RedisServer;

/// The README's rule, for the prefix `app:`.
const RULE: &[&str] = &[
    "on",
    ">verrou-acl-pw",
    "~app:*",
    "&app:*",
    "+evalsha",
    "+eval",
    "+exists",
    "+get",
    "+set",
    "+del",
    "+incr",
    "+persist",
    "+pexpire",
    "+pexpireat",
    "+time",
    "+type",
    "+publish",
    "+subscribe",
    "+unsubscribe",
    "+scan",
    "+ping",
    "+client|setname",
    "+cluster|slots",
];

#[tokio::test]
async fn the_documented_acl_rule_is_enough() {
    let Some(server) = verrou_conformance::require_service("redis-server", RedisServer::start())
    else {
        return;
    };
    let mut command = vec!["ACL", "SETUSER", "verrou"];
    command.extend_from_slice(RULE);
    assert_eq!(server.cli(&command).trim(), "OK");
    let url = format!("redis://verrou:verrou-acl-pw@127.0.0.1:{}", server.port());
    let store = RedisStore::builder()
        .url(&url)
        .prefix("app:")
        .build()
        .await
        .unwrap();
    let ttl = Expiry::After(Duration::from_secs(30));
    assert!(matches!(
        store.acquire("k", "a", ttl).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert!(matches!(
        store.acquire("k", "b", ttl).await.unwrap(),
        Acquisition::Held
    ));
    assert!(store.is_locked("k").await.unwrap());
    store.extend("k", "a", Expiry::Never).await.unwrap();
    let watch = store
        .watch_release("k")
        .await
        .unwrap()
        .expect("announcements");
    store.release("k", "a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the release was announced");
    store.acquire("k", "c", ttl).await.unwrap();
    store.force_release("k").await.unwrap();
    store.prune().await.unwrap();

    // And the rule is a limit: a prefix outside it is refused.
    let outside = RedisStore::builder()
        .url(&url)
        .prefix("other:")
        .build()
        .await
        .unwrap();
    let refused = outside.acquire("k", "a", ttl).await;
    assert!(
        matches!(&refused, Err(LockError::Store { .. })),
        "{refused:?}"
    );
}
