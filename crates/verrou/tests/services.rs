//! Each server store, configured by a document or by its URL, builds a
//! `Verrou` whose locks work on the local service. A service that is down
//! skips (or fails with `VERROU_REQUIRE_SERVICES=1`).

#![cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "sqlite",
    feature = "dynamodb"
))]

use std::time::Duration;

use serde_json::{Value, json};
use verrou::{Config, Expiry, StoreConfig, Ttl, Verrou};
use verrou_testkit::servers::TestCa;
use verrou_testkit::{Service, require_service, unique};

/// Tables these tests create once and reuse: fixed names, so that runs do
/// not leave one table each behind, and apart from other tests' tables.
const TABLE: &str = "verrou_config_test";

/// `store` as the default of a document that also has a memory store, with
/// a 7 s TTL: what every test below builds.
fn document(store: Value) -> Config {
    Config::from_deserializer(json!({
        "default": "server",
        "ttl": "7s",
        "stores": { "server": store, "local": { "driver": "memory" } },
    }))
    .unwrap()
}

/// Two holders contend on the default store, which is `driver`'s.
async fn locks_work(verrou: &Verrou, driver: &str) {
    assert_eq!(verrou.default_store_name(), "server");
    assert_eq!(verrou.default_factory().store().name(), driver);
    let key = unique("verrou-config");
    let first = verrou.create_lock(&key, Ttl::Default).unwrap();
    assert_eq!(first.ttl(), Expiry::After(Duration::from_secs(7)));
    assert!(first.try_acquire().await.unwrap(), "{driver}: first");
    let second = verrou.create_lock(&key, "5s").unwrap();
    assert!(!second.try_acquire().await.unwrap(), "{driver}: held");
    first.release().await.unwrap();
    assert!(second.try_acquire().await.unwrap(), "{driver}: released");
    second.release().await.unwrap();
    // The memory store beside it is a store of its own.
    let local = verrou.use_store("local").unwrap();
    assert_eq!(local.store().name(), "memory");
}

/// A store read from `url`, with `adjust` applied, as the default `server`.
fn from_url(url: &str, adjust: impl FnOnce(&mut StoreConfig)) -> Config {
    let mut store = StoreConfig::from_url(url).unwrap();
    adjust(&mut store);
    let mut config = Config::new()
        .store("server", store)
        .store("local", StoreConfig::memory());
    config.default = Some("server".to_owned());
    config.ttl = Some(Duration::from_secs(7).into());
    config
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    #[tokio::test]
    async fn from_a_document() {
        let config = document(json!({
            "driver": "redis",
            "url": Service::Redis.url(),
            "prefix": unique("config") + ":",
            "connect_timeout": "2s",
            "operation_timeout": "5s",
            "counter_retention": "10m",
            "max_connections": 2,
        }));
        if let Some(verrou) = require_service("redis", config.build().await) {
            locks_work(&verrou, "redis").await;
        }
    }

    #[tokio::test]
    async fn cluster_from_its_url() {
        let config = from_url(&Service::RedisCluster.url(), |_| {});
        if let Some(verrou) = require_service("redis-cluster", config.build().await) {
            locks_work(&verrou, "redis").await;
        }
    }

    #[tokio::test]
    async fn valkey_from_its_url() {
        let config = from_url(&Service::Valkey.url(), |_| {});
        if let Some(verrou) = require_service("valkey", config.build().await) {
            locks_work(&verrou, "redis").await;
        }
    }

    /// The TLS server's certificate is signed by the test CA only: the
    /// document's `ca_file` must reach the store for the handshake to pass.
    #[tokio::test]
    async fn over_tls_with_the_documents_ca_file() {
        let config = document(json!({
            "driver": "redis",
            "url": Service::RedisTls.url(),
            "ca_file": TestCa::from_env().ca_file(),
            "connect_timeout": "2s",
        }));
        if let Some(verrou) = require_service("redis-tls", config.build().await) {
            locks_work(&verrou, "redis").await;
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    #[tokio::test]
    async fn from_a_document() {
        let config = document(json!({
            "driver": "postgres",
            "url": Service::Postgres.url(),
            "table_name": TABLE,
            "max_connections": 2,
            "connect_timeout": "2s",
            "operation_timeout": "5s",
            "release_announcements": true,
            "synchronous_commit": false,
        }));
        if let Some(verrou) = require_service("postgres", config.build().await) {
            locks_work(&verrou, "postgres").await;
        }
    }

    #[tokio::test]
    async fn from_a_postgresql_url() {
        let url = Service::Postgres
            .url()
            .replacen("postgres://", "postgresql://", 1);
        let config = from_url(&url, |store| {
            if let StoreConfig::Postgres(postgres) = store {
                postgres.table_name = Some(TABLE.to_owned());
            }
        });
        if let Some(verrou) = require_service("postgres", config.build().await) {
            locks_work(&verrou, "postgres").await;
        }
    }

    /// The TLS server takes TCP over TLS only, with a certificate of the
    /// test CA: the URL's mode and the document's `ca_file` must both
    /// reach the store.
    #[tokio::test]
    async fn over_tls_with_the_documents_ca_file() {
        let config = document(json!({
            "driver": "postgres",
            "url": format!("{}?sslmode=verify-full", Service::PostgresTls.url()),
            "ca_file": TestCa::from_env().ca_file(),
            "table_name": TABLE,
            "connect_timeout": "2s",
        }));
        if let Some(verrou) = require_service("postgres-tls", config.build().await) {
            locks_work(&verrou, "postgres").await;
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    #[tokio::test]
    async fn from_a_document() {
        let config = document(json!({
            "driver": "mysql",
            "url": Service::Mysql.url(),
            "table_name": TABLE,
            "max_connections": 2,
            "connect_timeout": "2s",
            "operation_timeout": "5s",
        }));
        if let Some(verrou) = require_service("mysql", config.build().await) {
            locks_work(&verrou, "mysql").await;
        }
    }

    #[tokio::test]
    async fn from_a_mariadb_url() {
        let url = Service::Mysql.url().replacen("mysql://", "mariadb://", 1);
        let config = from_url(&url, |store| {
            if let StoreConfig::Mysql(mysql) = store {
                mysql.table_name = Some(TABLE.to_owned());
            }
        });
        if let Some(verrou) = require_service("mysql", config.build().await) {
            locks_work(&verrou, "mysql").await;
        }
    }

    /// The TLS server requires secure transport and has a certificate of
    /// the test CA: everything comes from the URL alone, as with
    /// `LOCK_STORE_URL`.
    #[tokio::test]
    async fn over_tls_from_its_url_alone() {
        let url = format!(
            "{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
            Service::MysqlTls.url(),
            TestCa::from_env().ca_file().display()
        );
        let config = from_url(&url, |store| {
            if let StoreConfig::Mysql(mysql) = store {
                mysql.table_name = Some(TABLE.to_owned());
            }
        });
        if let Some(verrou) = require_service("mariadb-tls", config.build().await) {
            locks_work(&verrou, "mysql").await;
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    #[tokio::test]
    async fn a_file_from_a_document() {
        let path = std::env::temp_dir().join(format!("{}.db", unique("verrou-config")));
        let config = document(json!({
            "driver": "sqlite",
            "path": path,
            "table_name": TABLE,
            "busy_timeout": "2s",
            "max_connections": 2,
        }));
        let verrou = config.build().await.unwrap();
        locks_work(&verrou, "sqlite").await;
        drop(verrou);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn in_memory_from_its_url() {
        let verrou = from_url("sqlite::memory:", |_| {}).build().await.unwrap();
        locks_work(&verrou, "sqlite").await;
    }
}

#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;

    /// The emulator takes any credentials; these are what testkit uses.
    fn credentials(store: &mut StoreConfig) {
        if let StoreConfig::DynamoDb(dynamodb) = store {
            dynamodb.access_key_id = Some("verrou-test".to_owned());
            dynamodb.secret_access_key = Some(verrou::Secret::new("verrou-test-secret"));
        }
    }

    #[tokio::test]
    async fn from_a_document() {
        let config = document(json!({
            "driver": "dynamodb",
            "endpoint": Service::DynamoDb.url(),
            "region": "us-east-1",
            "access_key_id": "verrou-test",
            "secret_access_key": "verrou-test-secret",
            "table_name": TABLE,
            "native_ttl": true,
            "connect_timeout": "2s",
            "operation_timeout": "5s",
            "table_ready_timeout": "30s",
            "clock_skew_margin": "0ms",
        }));
        if let Some(verrou) = require_service("dynamodb", config.build().await) {
            locks_work(&verrou, "dynamodb").await;
        }
    }

    #[tokio::test]
    async fn from_its_url() {
        let url = format!(
            "dynamodb://?endpoint={}&region=us-east-1&table={TABLE}",
            Service::DynamoDb.url()
        );
        let config = from_url(&url, credentials);
        if let Some(verrou) = require_service("dynamodb", config.build().await) {
            locks_work(&verrou, "dynamodb").await;
        }
    }

    /// HTTPS to the emulator, trusting the test CA named in the URL; with
    /// `aws_config=true` the chain is loaded, and the explicit keys win.
    #[cfg(feature = "aws-config")]
    #[tokio::test]
    async fn over_https_with_the_urls_ca_file_and_the_aws_chain() {
        let url = format!(
            "dynamodb://?endpoint={}&region=us-east-1&table={TABLE}&ca_file={}&aws_config=true",
            Service::DynamoDbTls.url(),
            TestCa::from_env().ca_file().display()
        );
        let config = from_url(&url, credentials);
        if let Some(verrou) = require_service("dynamodb-tls", config.build().await) {
            locks_work(&verrou, "dynamodb").await;
        }
    }

    #[cfg(not(feature = "aws-config"))]
    #[tokio::test]
    async fn the_aws_chain_without_its_feature_is_invalid_config() {
        let config = from_url("dynamodb://us-east-1?aws_config=true", credentials);
        let err = config.build().await.unwrap_err();
        assert!(
            matches!(err, verrou::LockError::InvalidConfig { .. })
                && err.to_string().contains("`aws-config` feature"),
            "{err}"
        );
    }
}
