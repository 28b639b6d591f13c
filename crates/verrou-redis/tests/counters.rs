//! Fencing counters: tokens from the server clock, counters that expire once
//! the clock has passed them by the retention, and `prune` for counters
//! without an expiry. Against the shared Redis on 6379 and the Cluster.

use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::config::Config;
use fred::types::{ClusterHash, CustomCommand, Value};
use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_redis::{RedisStore, fred};
use verrou_testkit::{Service, unique};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

/// A prefix no other test or run uses.
fn prefix(name: &str) -> String {
    format!("{}:", unique(&format!("verrou-counters-{name}")))
}

async fn inspector(service: Service) -> Option<Client> {
    let client = Client::new(Config::from_url(&service.url()).unwrap(), None, None, None);
    let connected = match tokio::time::timeout(Duration::from_secs(3), client.init()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    verrou_conformance::require_service(service.name(), connected)
}

async fn store(service: Service, prefix: &str, retention: Duration) -> RedisStore {
    RedisStore::builder()
        .url(service.url())
        .prefix(prefix)
        .counter_retention(retention)
        .build()
        .await
        .unwrap()
}

/// The server's clock in microseconds (`TIME`).
async fn server_micros(client: &Client) -> u64 {
    let time: Vec<String> = client
        .custom(
            CustomCommand::new_static("TIME", ClusterHash::Random, false),
            Vec::<Value>::new(),
        )
        .await
        .unwrap();
    time[0].parse::<u64>().unwrap() * 1_000_000 + time[1].parse::<u64>().unwrap()
}

async fn token(store: &RedisStore, key: &str, owner: &str) -> u64 {
    match store.acquire(key, owner, TTL).await.unwrap() {
        Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("{key}: {other:?}"),
    }
}

/// Names under `pattern` on one server (`SCAN` skips expired keys).
async fn names_matching(client: &Client, pattern: &str) -> Vec<String> {
    let mut cursor = "0".to_owned();
    let mut names = Vec::new();
    loop {
        let reply: Value = client
            .custom(
                CustomCommand::new_static("SCAN", ClusterHash::Random, false),
                vec![cursor.as_str(), "MATCH", pattern, "COUNT", "1000"],
            )
            .await
            .unwrap();
        let Value::Array(mut parts) = reply else {
            panic!("SCAN replied {reply:?}")
        };
        let (Some(Value::Array(page)), Some(next)) = (parts.pop(), parts.pop()) else {
            panic!("SCAN replied {parts:?}")
        };
        names.extend(page.iter().filter_map(Value::as_string));
        cursor = next.as_string().unwrap();
        if cursor == "0" {
            return names;
        }
    }
}

/// Tokens are the server clock in microseconds, and they still rise when
/// acquisitions come faster than the clock can tell apart.
#[tokio::test]
async fn tokens_are_the_server_clock_and_always_rise() {
    let Some(client) = inspector(Service::Redis).await else {
        return;
    };
    let store = store(Service::Redis, &prefix("clock"), Duration::from_secs(3600)).await;
    let before = server_micros(&client).await;
    let mut last = 0;
    for _ in 0..300 {
        let token = token(&store, "k", "a").await;
        assert!(token > last, "{token} <= {last}");
        last = token;
        store.release("k", "a").await.unwrap();
    }
    let after = server_micros(&client).await;
    let first = last - 299;
    assert!(
        before <= first && last <= after + 300,
        "tokens {first}..={last} are not the server clock {before}..={after}"
    );
    client.quit().await.unwrap();
}

/// A counter outlives its token by the retention, and is gone after it; the
/// next token is still higher.
#[tokio::test]
async fn a_counter_expires_once_the_clock_has_passed_it_by_the_retention() {
    let Some(client) = inspector(Service::Redis).await else {
        return;
    };
    let prefix = prefix("expiry");
    let retention = Duration::from_millis(300);
    let store = store(Service::Redis, &prefix, retention).await;
    let first = token(&store, "k", "a").await;
    store.release("k", "a").await.unwrap();
    let counter = format!("{prefix}{{k}}:fence");
    let value: Option<String> = client.get(counter.as_str()).await.unwrap();
    assert_eq!(value, Some(first.to_string()));
    // Expires at the token's millisecond + retention + 1: never before the
    // clock has passed the token by the retention.
    let expires_at: i64 = client
        .custom(
            CustomCommand::new_static("PEXPIRETIME", ClusterHash::FirstKey, false),
            vec![counter.as_str()],
        )
        .await
        .unwrap();
    assert_eq!(expires_at as u64, first / 1000 + 300 + 1);

    let started = Instant::now();
    loop {
        let exists: i64 = client.exists(counter.as_str()).await.unwrap();
        if exists == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the counter outlived its retention"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server_micros(&client).await > first + 300_000);
    let next = token(&store, "k", "b").await;
    assert!(next > first, "{next} <= {first} after the counter expired");
    store.release("k", "b").await.unwrap();
    client.quit().await.unwrap();
}

/// Locking 10,000 ever-new keys leaves no Redis key behind once the
/// retention has passed: the state no longer grows with the keys locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_keys_leave_nothing_behind() {
    const KEYS: usize = 10_000;
    const TASKS: usize = 32;
    let Some(client) = inspector(Service::Redis).await else {
        return;
    };
    let prefix = prefix("churn");
    let retention = Duration::from_secs(1);
    let store = store(Service::Redis, &prefix, retention).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for i in (task..KEYS).step_by(TASKS) {
                    let key = format!("order:{i}");
                    last = last.max(token(&store, &key, "worker").await);
                    store.release(&key, "worker").await.unwrap();
                }
                last
            })
        })
        .collect();
    let mut last_token = 0;
    for task in tasks {
        last_token = last_token.max(task.await.unwrap());
    }
    // Anywhere in the name, not only at its start: the names of earlier
    // versions put the prefix inside the hash tag (`{prefix key}:fence`).
    let pattern = format!("*{prefix}*");
    let right_after = names_matching(&client, &pattern).await.len();
    println!("{right_after} keys under the prefix right after {KEYS} acquire/release");

    // Bounded wait for the server clock to pass the last token by the
    // retention; then every counter has expired or is prunable.
    let started = Instant::now();
    while server_micros(&client).await <= last_token + 1_000_000 {
        assert!(started.elapsed() < Duration::from_secs(30), "server clock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pruned = store.prune().await.unwrap();
    let left = names_matching(&client, &pattern).await;
    println!("pruned {pruned}; {} keys left", left.len());
    assert!(
        left.is_empty(),
        "left behind: {:?}",
        &left[..left.len().min(5)]
    );
    client.quit().await.unwrap();
}

/// `prune` deletes counters that have no expiry (as earlier versions wrote
/// them) once their lock is free and the clock has passed them by the
/// retention, and nothing else: not a held lock's counter, not a fresh
/// counter, not a key that only looks like a counter.
#[tokio::test]
async fn prune_removes_only_free_counters_the_clock_has_passed() {
    let Some(client) = inspector(Service::Redis).await else {
        return;
    };
    let prefix = prefix("prune");
    let store = store(Service::Redis, &prefix, Duration::from_secs(3600)).await;
    let name = |key: &str| format!("{prefix}{{{key}}}");
    let set = |key: String, value: &'static str| {
        let client = client.clone();
        async move {
            let _: () = client.set(key, value, None, None, false).await.unwrap();
        }
    };
    // Counters as versions before the expiry left them: small, no TTL.
    set(format!("{}:fence", name("legacy")), "7").await;
    set(format!("{}:fence", name("legacy-held")), "3").await;
    set(name("legacy-held"), "someone").await;
    // Not counters of ours, though the glob matches them.
    set(format!("{prefix}{{a}}b}}:fence"), "1").await;
    set(format!("{}:fence", name("text")), "hello").await;
    // A fresh counter, within its retention.
    let fresh = token(&store, "fresh", "a").await;
    store.release("fresh", "a").await.unwrap();

    assert_eq!(store.prune().await.unwrap(), 1);
    let exists = |key: String| {
        let client = client.clone();
        async move { client.exists::<i64, _>(key).await.unwrap() == 1 }
    };
    assert!(!exists(format!("{}:fence", name("legacy"))).await);
    assert!(exists(format!("{}:fence", name("legacy-held"))).await);
    assert!(exists(format!("{prefix}{{a}}b}}:fence")).await);
    assert!(exists(format!("{}:fence", name("text"))).await);
    assert!(exists(format!("{}:fence", name("fresh"))).await);
    // The next tokens are higher than the pruned and the kept ones.
    assert!(token(&store, "legacy", "b").await > 7);
    assert!(token(&store, "fresh", "b").await > fresh);
    assert_eq!(store.prune().await.unwrap(), 0);
    let _: i64 = client
        .del(vec![
            name("legacy"),
            format!("{}:fence", name("legacy")),
            name("legacy-held"),
            format!("{}:fence", name("legacy-held")),
            format!("{prefix}{{a}}b}}:fence"),
            format!("{}:fence", name("text")),
            name("fresh"),
            format!("{}:fence", name("fresh")),
        ])
        .await
        .unwrap();
    client.quit().await.unwrap();
}

/// On a Cluster, `prune` scans every primary: a legacy counter on each of
/// the three shards is removed.
#[tokio::test]
async fn prune_reaches_every_primary_of_a_cluster() {
    let Some(client) = inspector(Service::RedisCluster).await else {
        return;
    };
    let prefix = prefix("cluster-prune");
    let store = store(Service::RedisCluster, &prefix, Duration::from_secs(3600)).await;
    // One key per primary of the local cluster (slots split in three).
    let mut per_shard: [Option<String>; 3] = [None, None, None];
    for i in 0.. {
        let key = format!("k{i}");
        // As `redis-cli --cluster create` splits the slots.
        let shard = match fred::util::redis_keyslot(key.as_bytes()) {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        per_shard[shard].get_or_insert(key);
        if per_shard.iter().all(Option::is_some) {
            break;
        }
    }
    let counters: Vec<String> = per_shard
        .iter()
        .flatten()
        .map(|key| format!("{prefix}{{{key}}}:fence"))
        .collect();
    for counter in &counters {
        let _: () = client
            .set(counter.as_str(), "5", None, None, false)
            .await
            .unwrap();
    }
    assert_eq!(store.prune().await.unwrap(), 3);
    for counter in &counters {
        let exists: i64 = client.exists(counter.as_str()).await.unwrap();
        assert_eq!(exists, 0, "{counter} was not pruned");
    }
    client.quit().await.unwrap();
}

/// A retention of "forever" (anything above a century) keeps counters
/// without expiry, as earlier versions did, and `prune` leaves them.
#[tokio::test]
async fn a_retention_of_forever_keeps_counters() {
    let Some(client) = inspector(Service::Redis).await else {
        return;
    };
    let prefix = prefix("forever");
    let store = store(Service::Redis, &prefix, Duration::MAX).await;
    let first = token(&store, "k", "a").await;
    store.release("k", "a").await.unwrap();
    let counter = format!("{prefix}{{k}}:fence");
    let ttl: i64 = client.pttl(counter.as_str()).await.unwrap();
    assert_eq!(ttl, -1, "the counter has an expiry");
    assert_eq!(store.prune().await.unwrap(), 0);
    assert!(token(&store, "k", "b").await > first);
    store.release("k", "b").await.unwrap();
    let _: i64 = client.del(counter.as_str()).await.unwrap();
    client.quit().await.unwrap();
}
