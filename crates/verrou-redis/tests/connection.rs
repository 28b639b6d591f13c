//! Connection failures: start-up against a dead address, killed connections,
//! a server restart. Each uses its own `redis-server`, never the shared one.

mod common;

use std::time::{Duration, Instant};

use common::{PrivateRedis, eventually, free_port};
use fred::interfaces::ClientLike;
use verrou_core::store::TimedOut;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_redis::{RedisStore, fred};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

fn private_redis() -> Option<PrivateRedis> {
    verrou_conformance::require_service("redis-server binary", PrivateRedis::start())
}

async fn store_on(server: &PrivateRedis) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .operation_timeout(Some(Duration::from_secs(2)))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("store on the private server")
}

#[tokio::test]
async fn closed_port_at_start_up_is_a_store_error_naming_the_address() {
    let port = free_port();
    let started = Instant::now();
    let result = RedisStore::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(error @ LockError::Store { .. }) => {
            let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        }
        other => panic!("expected a Store error, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn unroutable_address_at_start_up_fails_within_the_connect_timeout() {
    // TEST-NET-1: nothing answers, packets are dropped or refused.
    let started = Instant::now();
    let result = RedisStore::builder()
        .url("redis://192.0.2.1:6379")
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(LockError::Store { .. })), "{result:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn bad_url_is_invalid_config_without_leaking_the_password() {
    let error = RedisStore::builder()
        .url("redis://:hunter2@host:notaport")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("hunter2"), "{error}");
}

/// A call whose connection is killed while the server holds it fails with
/// `Store` (it is not resent: a resent acquire could report `Held` for the
/// lock it took itself), and the next call works on a new connection.
#[tokio::test]
async fn killed_connection_fails_the_in_flight_call_and_the_next_call_works() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = store_on(&server).await;
    let name = store.client().id().to_owned();
    assert!(store.acquire("before", "a", TTL).await.is_ok());
    assert_eq!(server.clients_named(&name).len(), 1);

    // Hold the store's next command on the server: writes are paused.
    server.cli(&["client", "pause", "5000", "write"]);
    let in_flight = tokio::spawn({
        let store = store.clone();
        async move { store.acquire("during", "a", TTL).await }
    });
    eventually(
        "the acquire to be held by the pause",
        Duration::from_secs(5),
        || async {
            server
                .clients_named(&name)
                .iter()
                .any(|l| l.contains(" flags=b "))
        },
    )
    .await;
    assert_eq!(server.kill_clients_named(&name), 1);
    server.cli(&["client", "unpause"]);

    let outcome = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight call hung")
        .unwrap();
    assert!(
        matches!(outcome, Err(LockError::Store { .. })),
        "{outcome:?}"
    );
    assert!(
        store.is_locked("before").await.unwrap(),
        "the next call failed"
    );
    assert!(store.release("before", "a").await.is_ok());
}

/// Killing the subscriber connection wakes every waiter (a release may have
/// been missed), and announcements work again once it has reconnected.
#[tokio::test]
async fn waiters_survive_a_killed_subscriber_connection() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = store_on(&server).await;
    store.acquire("k", "holder", TTL).await.unwrap();
    let watch = store
        .watch_release("k")
        .await
        .unwrap()
        .expect("announcements");
    server.cli(&["client", "kill", "type", "pubsub"]);
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("a subscriber reconnect must wake its waiters");

    // After the reconnect a release is announced again.
    let mut woken = false;
    let started = Instant::now();
    while !woken && started.elapsed() < Duration::from_secs(10) {
        let Ok(Some(watch)) = store.watch_release("k").await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        store.release("k", "holder").await.unwrap();
        woken = tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .is_ok();
        store.acquire("k", "holder", TTL).await.unwrap();
    }
    assert!(woken, "no announcement after the subscriber reconnected");
}

/// `SHUTDOWN NOSAVE`: calls fail with `Store` within the operation timeout,
/// never hang; once the server is back the same store works again. Without
/// persistence the restarted server has forgotten every lock and counter,
/// yet the next token is still higher: tokens come from the server clock,
/// which has moved on. The server is this test's own, so it runs everywhere;
/// its name avoids `server_restart`, the mark of tests that restart a shared
/// server and run alone.
#[tokio::test]
async fn restarting_the_server_is_a_store_error_then_the_store_recovers() {
    let Some(mut server) = private_redis() else {
        return;
    };
    let store = store_on(&server).await;
    let mut last = 0;
    for _ in 0..3 {
        if let Acquisition::Acquired {
            fencing_token: Some(token),
        } = store.acquire("k", "a", TTL).await.unwrap()
        {
            last = token;
        }
        store.release("k", "a").await.unwrap();
    }
    assert!(last > 0, "no token before the restart");
    server.shutdown();

    let started = Instant::now();
    let down = tokio::time::timeout(Duration::from_secs(10), store.is_locked("k"))
        .await
        .expect("a call to a dead server hung");
    assert!(matches!(down, Err(LockError::Store { .. })), "{down:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let acquire = tokio::time::timeout(Duration::from_secs(10), store.acquire("k", "a", TTL))
        .await
        .expect("an acquire on a dead server hung");
    assert!(
        matches!(acquire, Err(LockError::Store { .. })),
        "{acquire:?}"
    );

    server.restart().expect("restart the private server");
    eventually(
        "the store to reconnect",
        Duration::from_secs(20),
        || async { store.is_locked("k").await.is_ok() },
    )
    .await;
    let after = store.acquire("k", "a", TTL).await.unwrap();
    assert!(
        matches!(after, Acquisition::Acquired { fencing_token: Some(t) } if t > last),
        "{after:?} after the restart, {last} before"
    );
    // Announcements recover too.
    eventually(
        "announcements to come back",
        Duration::from_secs(20),
        || async { store.watch_release("k").await.is_ok_and(|w| w.is_some()) },
    )
    .await;
    store.release("k", "a").await.unwrap();
}

/// Waiters share one subscriber connection and one `SUBSCRIBE` per key; the
/// subscription goes away with the last waiter of its key.
#[tokio::test]
async fn waiters_share_one_subscription_per_key() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = store_on(&server).await;
    // Per connection in pub/sub mode: how many channels it listens to.
    let subscriptions = || {
        server
            .cli(&["client", "list"])
            .lines()
            .map(|l| l.split(' ').find_map(|f| f.strip_prefix("sub=")).unwrap())
            .map(|sub| sub.parse::<usize>().unwrap())
            .filter(|&sub| sub > 0)
            .collect::<Vec<_>>()
    };
    let mut watches = Vec::new();
    for i in 0..20 {
        let key = if i % 2 == 0 { "even" } else { "odd" };
        watches.push(store.watch_release(key).await.unwrap().unwrap());
    }
    assert_eq!(
        subscriptions(),
        vec![2],
        "one connection, one channel per key"
    );
    watches.truncate(1);
    eventually(
        "the `odd` subscription to go",
        Duration::from_secs(5),
        || async { subscriptions() == vec![1] },
    )
    .await;
    drop(watches);
    eventually(
        "the last subscription to go",
        Duration::from_secs(5),
        || async { subscriptions().is_empty() },
    )
    .await;
}

/// A store on a reused fred client bounds its scripts by the store's
/// operation timeout and sends them once, whatever the client's own settings
/// (here none: fred's default is no timeout). A paused server shows it: the
/// acquire fails with a `Store` error whose source is `TimedOut` after the
/// timeout instead of waiting out the pause.
#[tokio::test]
async fn scripts_on_a_reused_client_keep_the_operation_timeout() {
    let Some(server) = private_redis() else {
        return;
    };
    let client = fred::clients::Client::new(
        fred::types::config::Config::from_url(&server.url()).unwrap(),
        None,
        None,
        None,
    );
    client.init().await.unwrap();
    let store = RedisStore::from_client(client.clone())
        .operation_timeout(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    assert!(store.acquire("before", "a", TTL).await.is_ok());

    server.cli(&["client", "pause", "4000", "write"]);
    let started = Instant::now();
    let paused = tokio::time::timeout(Duration::from_secs(10), store.acquire("k", "a", TTL))
        .await
        .expect("the acquire hung");
    let elapsed = started.elapsed();
    server.cli(&["client", "unpause"]);
    let Err(error @ LockError::Store { .. }) = paused else {
        panic!("expected a Store error, got {paused:?}");
    };
    let timed_out = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<TimedOut>());
    assert!(
        timed_out.is_some_and(|t| t.what == "acquire" && t.after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let _ = client.quit().await;
}

/// fred completes a `SUBSCRIBE` once it is written, so a watch that returned
/// then could miss a release published before the server ran it. A server
/// paused for every client holds the `SUBSCRIBE`: the watch returns only
/// after the pause, and the next release wakes it.
#[tokio::test]
async fn a_watch_returns_only_once_the_server_has_subscribed() {
    let Some(server) = private_redis() else {
        return;
    };
    // Both limits far above the pause: the subscriber's `SUBSCRIBE` is
    // bounded by the connect timeout, and each of its commands by fred's
    // limit, the operation timeout.
    let store = RedisStore::builder()
        .url(server.url())
        .connect_timeout(Duration::from_secs(30))
        .operation_timeout(Some(Duration::from_secs(30)))
        .build()
        .await
        .expect("store on the private server");
    // Connects the subscriber; kept, so that no UNSUBSCRIBE queues first.
    let _connected = store.watch_release("connect").await.unwrap();
    assert!(store.acquire("k", "a", TTL).await.is_ok());

    // Long enough that only a stall of seconds could end it before the
    // check below; `CLIENT UNPAUSE` cannot cut it short (it is paused too).
    server.cli(&["client", "pause", "5000", "all"]);
    let watching = tokio::spawn({
        let store = store.clone();
        async move { store.watch_release("k").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !watching.is_finished(),
        "the watch returned while the server held its SUBSCRIBE"
    );
    let watch = tokio::time::timeout(Duration::from_secs(20), watching)
        .await
        .expect("the watch hung after the pause")
        .unwrap()
        .unwrap()
        .expect("announcements");
    assert!(store.release("k", "a").await.is_ok());
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the release was not announced");
}

/// A server that lost its scripts (`SCRIPT FLUSH`, as after a restart or a
/// failover) answers `EVALSHA` with `NOSCRIPT`; every operation falls back
/// to `EVAL` with the same keys and arguments, and works.
#[tokio::test]
async fn every_operation_works_after_the_server_flushed_its_scripts() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = store_on(&server).await;
    assert!(store.acquire("warm", "a", TTL).await.is_ok());
    let watch = store
        .watch_release("k")
        .await
        .unwrap()
        .expect("announcements");
    for step in ["acquire", "extend", "release", "force_release"] {
        assert_eq!(server.cli(&["script", "flush"]).trim(), "OK");
        match step {
            "acquire" => assert!(matches!(
                store.acquire("k", "a", TTL).await.unwrap(),
                Acquisition::Acquired {
                    fencing_token: Some(_)
                }
            )),
            "extend" => {
                store.extend("k", "a", TTL).await.unwrap();
                assert!(store.is_locked("k").await.unwrap());
            }
            "release" => store.release("k", "a").await.unwrap(),
            _ => {
                assert!(store.acquire("k", "b", TTL).await.is_ok());
                assert_eq!(server.cli(&["script", "flush"]).trim(), "OK");
                store.force_release("k").await.unwrap();
            }
        }
    }
    assert!(!store.is_locked("k").await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the release after the flush was not announced");
}
