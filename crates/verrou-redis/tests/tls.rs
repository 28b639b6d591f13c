//! TLS: `rediss://` against the TLS-only Redis that `cargo xtask services
//! up redis-tls` starts on 6380 ([`Service::RedisTls`]), with the test CA
//! ([`TestCa`]), and a private TLS Cluster. What must hold: locks work over
//! TLS, pub/sub wake-ups included; a certificate the client must not trust
//! (another CA, another host name) fails the build with a `Store` error, in
//! bounded time; a TLS URL never talks plain text.

#![cfg(feature = "rustls")]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use verrou_conformance::Capabilities;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_redis::RedisStore;
use verrou_redis::fred::types::config::Config;
use verrou_redis::fred::util::redis_keyslot;
use verrou_testkit::Service;
use verrou_testkit::servers::{TestCa, TlsRedisCluster};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The connect timeout, the store's extra second for the whole start-up,
/// and scheduling slack on a loaded machine.
const BUILD_BOUND: Duration = Duration::from_secs(8);

fn ca() -> TestCa {
    TestCa::from_env()
}

fn tls_store(url: &str) -> verrou_redis::RedisStoreBuilder {
    RedisStore::builder()
        .url(url)
        .prefix("verrou-tls-test:")
        .connect_timeout(CONNECT_TIMEOUT)
}

async fn store() -> Option<Arc<dyn LockStore>> {
    let built = tls_store(&Service::RedisTls.url())
        .ca_file(ca().ca_file())
        .build()
        .await;
    verrou_conformance::require_service("redis-tls", built).map(|s| Arc::new(s) as _)
}

/// Whether the TLS server is there at all: the failure tests below would
/// pass against a closed port for the wrong reason.
async fn tls_server_is_up() -> bool {
    store().await.is_some()
}

/// Builds with `build`, which must fail with a `Store` error within
/// [`BUILD_BOUND`]; returns the error's whole chain as text.
async fn store_error_in_time<F>(what: &str, build: F) -> String
where
    F: Future<Output = Result<RedisStore, LockError>>,
{
    verrou_conformance::builders::store_error_within(what, BUILD_BOUND, build).await
}

#[tokio::test]
async fn locks_over_tls_acquire_and_exclude() {
    let Some(store) = store().await else { return };
    verrou_conformance::acquire_locks_the_key(store.clone(), Capabilities::default()).await;
    verrou_conformance::exclusivity(store, Capabilities::default()).await;
}

#[tokio::test]
async fn fencing_tokens_rise_over_tls() {
    let Some(store) = store().await else { return };
    verrou_conformance::fencing_tokens_strictly_increase(store, Capabilities::default()).await;
}

/// Release announcements travel on the store's second (subscriber)
/// connection: it must be TLS with the same trust, or waiters never wake.
#[tokio::test]
async fn a_release_over_tls_wakes_a_waiter() {
    let Some(store) = store().await else { return };
    verrou_conformance::release_wakes_a_waiter(store, Capabilities::default()).await;
}

#[tokio::test]
async fn a_fred_config_with_tls_takes_the_ca_file() {
    let Some(_) = store().await else { return };
    let config = Config::from_url(&Service::RedisTls.url()).unwrap();
    let store = RedisStore::builder()
        .config(config)
        .ca_file(ca().ca_file())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .await
        .unwrap();
    let key = verrou_testkit::unique("tls-config");
    let ttl = Expiry::After(Duration::from_secs(30));
    assert!(matches!(
        store.acquire(&key, "a", ttl).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "a").await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_store_error_at_build() {
    if !tls_server_is_up().await {
        return;
    }
    let chain = store_error_in_time(
        "another CA",
        tls_store(&Service::RedisTls.url())
            .ca_file(ca().other_ca_file())
            .build(),
    )
    .await;
    assert!(
        chain.contains("not signed by a CA this client trusts"),
        "{chain}"
    );
    assert!(
        chain.contains("localhost:6380 over TLS"),
        "names the server: {chain}"
    );
}

/// Without `ca_file` the platform's roots decide, and they do not know the
/// test CA: refused, not trusted by default.
#[tokio::test]
async fn the_platform_roots_do_not_trust_a_private_ca() {
    if !tls_server_is_up().await {
        return;
    }
    let chain = store_error_in_time(
        "platform roots",
        tls_store(&Service::RedisTls.url()).build(),
    )
    .await;
    assert!(
        chain.contains("not signed by a CA this client trusts"),
        "{chain}"
    );
}

/// The server also listens on 127.0.0.2, an address its certificate does
/// not name (it names `localhost` and `127.0.0.1`).
#[tokio::test]
async fn a_certificate_for_another_host_name_is_a_store_error_at_build() {
    if !tls_server_is_up().await {
        return;
    }
    let port = Service::RedisTls
        .url()
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse::<u16>().ok())
        .expect("a port in the redis-tls URL");
    let chain = store_error_in_time(
        "another host name",
        tls_store(&format!("rediss://127.0.0.2:{port}"))
            .ca_file(ca().ca_file())
            .build(),
    )
    .await;
    assert!(
        chain.contains("not for the host name in the URL"),
        "{chain}"
    );
}

/// A `rediss://` URL pointed at a plain-text server: the handshake fails
/// (the server reads the ClientHello as a garbled command), and nothing is
/// ever sent in plain text.
#[tokio::test]
async fn a_tls_url_on_a_plain_text_server_is_a_store_error_in_time() {
    let plain = Service::Redis.url();
    let Some(_) = verrou_conformance::require_service(
        "redis",
        RedisStore::builder().url(&plain).build().await,
    ) else {
        return;
    };
    let tls_url = plain.replacen("redis://", "rediss://", 1);
    assert!(tls_url.starts_with("rediss://"), "{plain}");
    store_error_in_time(
        "rediss:// on a plain port",
        tls_store(&tls_url).ca_file(ca().ca_file()).build(),
    )
    .await;
}

#[tokio::test]
async fn a_ca_file_for_a_plain_connection_is_invalid_config() {
    let result = RedisStore::builder()
        .url("redis://127.0.0.1:1")
        .ca_file(ca().ca_file())
        .build()
        .await;
    assert!(
        matches!(&result, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("rediss://")),
        "{result:?}"
    );
    let result = RedisStore::builder()
        .config(Config::from_url("redis://127.0.0.1:1").unwrap())
        .ca_file(ca().ca_file())
        .build()
        .await;
    assert!(
        matches!(&result, Err(LockError::InvalidConfig { reason, .. }) if reason.contains("TLS")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unusable_ca_file_is_invalid_config_before_connecting() {
    // Port 1: were the file accepted, the build would fail differently
    // (a Store error), not with InvalidConfig.
    verrou_conformance::builders::rejects_unusable_ca_files(&["ca_file"], |file| {
        RedisStore::builder()
            .url("rediss://127.0.0.1:1")
            .ca_file(file)
            .build()
    })
    .await;
}

#[test]
fn debug_shows_the_ca_file() {
    let builder = RedisStore::builder().ca_file("/etc/verrou/ca.pem");
    assert!(format!("{builder:?}").contains("/etc/verrou/ca.pem"));
}

/// TLS to a Cluster: the nodes found through `CLUSTER SLOTS` are dialled
/// with the same trust, and named by the address they announce
/// (`127.0.0.1`, which the certificate carries).
#[tokio::test]
async fn a_tls_cluster_serves_locks_on_every_primary() {
    let Some(cluster) = verrou_conformance::require_service(
        "TLS redis cluster (redis-server with TLS, the test CA)",
        TlsRedisCluster::start(&ca()),
    ) else {
        return;
    };
    let store = RedisStore::builder()
        .url(cluster.url())
        .ca_file(ca().ca_file())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .await
        .unwrap();
    let ttl = Expiry::After(Duration::from_secs(30));
    for key in key_per_primary() {
        assert!(matches!(
            store.acquire(&key, "a", ttl).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        assert!(matches!(
            store.acquire(&key, "b", ttl).await.unwrap(),
            Acquisition::Held
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
    assert_eq!(cluster.ports().len(), 3);
}

/// One key per primary of a three-primary Cluster (slots 0-5460,
/// 5461-10922, 10923-16383, as `redis-cli --cluster create` splits them),
/// for a store without prefix: the key is stored as `{key}`.
fn key_per_primary() -> Vec<String> {
    let run = verrou_testkit::unique("tls-cluster");
    let mut keys: Vec<Option<String>> = vec![None; 3];
    for i in 0.. {
        let key = format!("{run}:{i}");
        let shard = match redis_keyslot(format!("{{{key}}}").as_bytes()) {
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
