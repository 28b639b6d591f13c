//! Configuration documents: what they build, and every way they are refused.

use std::time::Duration;

use serde_json::json;
use verrou::{
    Backoff, Config, Expiry, Limit, LockError, RedisConfig, RetryPolicy, StoreConfig, StoreUrl,
};

fn read(document: serde_json::Value) -> Result<Config, LockError> {
    Config::from_deserializer(document)
}

/// The reason of an `InvalidConfig`, failing on anything else.
fn reason<T: std::fmt::Debug>(result: Result<T, LockError>) -> String {
    match result {
        Err(LockError::InvalidConfig { reason, .. }) => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test]
async fn a_document_with_named_memory_stores_builds_working_locks() {
    let config = read(json!({
        "default": "primary",
        "ttl": "7s",
        "retry": { "timeout": "300ms", "delay": "20ms" },
        "stores": {
            "primary": { "driver": "memory" },
            "secondary": { "driver": "memory" },
        },
    }))
    .unwrap();
    let verrou = config.build().await.unwrap();
    assert_eq!(verrou.default_store_name(), "primary");

    let key = verrou_testkit::unique("documents");
    let holder = verrou.create_lock(&key, verrou::Ttl::Default).unwrap();
    assert_eq!(holder.ttl(), Expiry::After(Duration::from_secs(7)));
    assert!(holder.try_acquire().await.unwrap());

    // The configured retry policy: a waiter gives up after 300 ms.
    let waiter = verrou.create_lock(&key, "5s").unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        waiter.acquire().await,
        Err(LockError::Timeout { .. })
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Each named store is its own: the same key is free in the other one.
    let elsewhere = verrou
        .use_store("secondary")
        .unwrap()
        .create_lock(&key, "5s")
        .unwrap();
    assert!(elsewhere.try_acquire().await.unwrap());

    holder.release().await.unwrap();
    assert!(waiter.try_acquire().await.unwrap());
    waiter.release().await.unwrap();
    elsewhere.release().await.unwrap();
}

#[tokio::test]
async fn without_a_default_the_store_named_default_or_the_only_one_is_chosen() {
    let only = read(json!({ "stores": { "mine": { "driver": "memory" } } })).unwrap();
    assert_eq!(only.build().await.unwrap().default_store_name(), "mine");

    let named = read(json!({ "stores": {
        "a": { "driver": "memory" },
        "default": { "driver": "memory" },
        "z": { "driver": "memory" },
    }}))
    .unwrap();
    assert_eq!(named.build().await.unwrap().default_store_name(), "default");

    let ambiguous = read(json!({ "stores": {
        "a": { "driver": "memory" },
        "b": { "driver": "memory" },
    }}))
    .unwrap();
    let why = reason(ambiguous.build().await);
    assert!(why.contains("several stores (a, b)"), "{why}");
}

#[tokio::test]
async fn a_default_that_names_no_store_or_no_store_at_all_is_refused() {
    let config = read(json!({ "default": "nope", "stores": { "a": { "driver": "memory" } } }));
    let why = reason(config.unwrap().build().await);
    assert!(why.contains("`nope`") && why.contains("stores: a"), "{why}");

    let why = reason(Config::new().build().await);
    assert!(why.contains("no store configured"), "{why}");
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    for (document, field) in [
        (json!({ "stores": {}, "defualt": "a" }), "defualt"),
        (
            json!({ "stores": { "a": { "driver": "memory", "url": "x" } } }),
            "url",
        ),
        (
            json!({ "stores": { "a": { "driver": "redis", "tabel_name": "x" } } }),
            "tabel_name",
        ),
        (
            json!({ "stores": { "a": { "driver": "postgres", "pool_size": 4 } } }),
            "pool_size",
        ),
        (json!({ "retry": { "attempt": 3 } }), "attempt"),
    ] {
        let why = reason(read(document));
        assert!(why.contains(&format!("unknown field `{field}`")), "{why}");
    }
}

#[test]
fn unknown_or_missing_drivers_are_refused() {
    let why = reason(read(json!({ "stores": { "a": { "driver": "etcd" } } })));
    assert!(why.contains("unknown variant `etcd`"), "{why}");
    assert!(
        why.contains("dynamodb"),
        "the known drivers are listed: {why}"
    );

    let why = reason(read(json!({ "stores": { "a": { "url": "redis://x" } } })));
    assert!(why.contains("missing field `driver`"), "{why}");
}

#[test]
fn aliases_read_as_their_driver() {
    let config = read(json!({ "stores": {
        "pg": { "driver": "postgresql", "url": "postgres://db/app" },
        "maria": { "driver": "mariadb", "url": "mysql://db/app" },
    }}))
    .unwrap();
    assert_eq!(config.stores["pg"].driver(), "postgres");
    assert_eq!(config.stores["maria"].driver(), "mysql");
}

#[test]
fn bad_durations_are_refused_with_the_text() {
    for (document, text) in [
        (json!({ "ttl": "soon" }), "soon"),
        (json!({ "ttl": "-1s" }), "-1s"),
        (json!({ "ttl": -5 }), "-5"),
        (
            json!({ "retry": { "delay": "1 fortnight" } }),
            "1 fortnight",
        ),
        (
            json!({ "stores": { "r": { "driver": "redis", "operation_timeout": "5 parsecs" } } }),
            "5 parsecs",
        ),
        (
            json!({ "stores": { "r": { "driver": "redis", "counter_retention": "none" } } }),
            "none",
        ),
    ] {
        let why = reason(read(document));
        assert!(why.contains(&format!("`{text}`")), "{text}: {why}");
    }
    let why = reason(read(json!({ "ttl": 1.5 })));
    assert!(why.contains("a duration such as"), "{why}");
}

#[tokio::test]
async fn durations_that_cannot_work_are_refused_at_build() {
    for (document, what) in [
        (json!({ "ttl": "0s" }), "ttl"),
        (json!({ "retry": { "attempts": 0 } }), "retry.attempts"),
        (json!({ "retry": { "delay": 0 } }), "retry.delay"),
        (json!({ "retry": { "timeout": "0ms" } }), "retry.timeout"),
        (
            json!({ "retry": { "delay": "1s", "max_delay": "10ms" } }),
            "retry.max_delay",
        ),
    ] {
        let mut document = document;
        document["stores"] = json!({ "a": { "driver": "memory" } });
        let why = reason(read(document).unwrap().build().await);
        assert!(why.contains(what), "{what}: {why}");
    }
}

#[test]
fn durations_and_limits_read_every_form() {
    let config = read(json!({
        "ttl": "never",
        "retry": { "attempts": 3, "delay": 250, "timeout": "none", "max_delay": "1.5s" },
        "stores": { "r": {
            "driver": "redis",
            "url": "redis://:hunter2@cache:6379",
            "connect_timeout": "2 seconds",
            "operation_timeout": "unbounded",
            "counter_retention": "1h",
            "max_connections": 4,
            "prefix": "app:",
        }},
    }))
    .unwrap();
    assert_eq!(config.ttl, Some(Limit::Unbounded));
    let policy = config.retry.as_ref().unwrap().policy().unwrap();
    let expected = RetryPolicy::default()
        .with_attempts(Some(3))
        .with_delay(Duration::from_millis(250))
        .with_timeout(None)
        .with_backoff(Backoff::Exponential {
            max_delay: Duration::from_millis(1500),
        });
    assert_eq!(policy, expected);
    let StoreConfig::Redis(redis) = &config.stores["r"] else {
        panic!("not redis");
    };
    let mut want = RedisConfig::default();
    want.url = Some(StoreUrl::new("redis://:hunter2@cache:6379"));
    want.connect_timeout = Some(Limit::After(Duration::from_secs(2)));
    want.operation_timeout = Some(Limit::Unbounded);
    want.counter_retention = Some(Duration::from_secs(3600));
    want.max_connections = Some(4);
    want.prefix = Some("app:".to_owned());
    assert_eq!(redis, &want);
}

#[test]
fn a_document_reads_back_what_it_writes() {
    let config = read(json!({
        "default": "main",
        "default_from_env": "LOCK_STORE",
        "ttl": "1.5s",
        "retry": { "timeout": "none", "delay": "20ms" },
        "stores": {
            "main": { "driver": "postgres", "url": "postgres://app:hunter2@db/app",
                      "table_name": "locks", "create_table": false, "max_connections": 3,
                      "connect_timeout": "1s", "operation_timeout": "none",
                      "release_announcements": false, "synchronous_commit": false },
            "cache": { "driver": "redis", "prefix": "p:", "counter_retention": "30m" },
            "sql": { "driver": "mysql", "url": "mysql://root@db/app", "table_name": "t" },
            "file": { "driver": "sqlite", "path": "/tmp/locks.db", "busy_timeout": "250ms" },
            "mem": { "driver": "sqlite", "in_memory": true },
            "aws": { "driver": "dynamodb", "region": "eu-west-1", "native_ttl": false,
                     "clock_skew_margin": 0, "table_ready_timeout": "2m",
                     "access_key_id": "AKIA", "secret_access_key": "hunter2" },
            "local": { "driver": "memory" },
        },
    }))
    .unwrap();
    let written = serde_json::to_value(&config).unwrap();
    assert_eq!(read(written.clone()).unwrap(), config, "{written}");
    // Written durations are whole milliseconds, which every reader takes.
    assert_eq!(written["ttl"], "1500ms");
    assert_eq!(written["stores"]["aws"]["clock_skew_margin"], "0ms");
}

#[test]
fn secrets_stay_out_of_debug() {
    let config = read(json!({ "stores": {
        "main": { "driver": "postgres", "url": "postgres://app:hunter2@db/app?password=hunter2" },
        "cache": { "driver": "redis", "url": "redis://:hunter2@cache" },
        "aws": { "driver": "dynamodb", "access_key_id": "AKIA", "secret_access_key": "hunter2" },
    }}))
    .unwrap();
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://app:***@db/app"),
        "what is not secret stays readable: {shown}"
    );
}

#[tokio::test]
async fn missing_required_options_name_the_option() {
    for (document, what) in [
        (json!({ "driver": "postgres" }), "`url` is required"),
        (json!({ "driver": "mysql" }), "`url` is required"),
        (json!({ "driver": "sqlite" }), "`path` is required"),
        (
            json!({ "driver": "sqlite", "path": "x.db", "in_memory": true }),
            "choose one",
        ),
        (
            json!({ "driver": "dynamodb", "secret_access_key": "hunter2" }),
            "give both or neither",
        ),
    ] {
        let driver = document["driver"].as_str().unwrap().to_owned();
        let store: StoreConfig = serde_json::from_value(document).unwrap();
        let config = Config::new().store("s", store);
        let why = reason(config.build().await);
        #[allow(
            clippy::match_like_matches_macro,
            reason = "which arms are true depends on the features"
        )]
        let compiled = match driver.as_str() {
            "postgres" => cfg!(feature = "postgres"),
            "mysql" => cfg!(feature = "mysql"),
            "sqlite" => cfg!(feature = "sqlite"),
            _ => cfg!(feature = "dynamodb"),
        };
        if compiled {
            assert!(why.contains(what) && why.contains("store `s`"), "{why}");
            assert!(!why.contains("hunter2"), "{why}");
        } else {
            assert!(why.contains("not compiled in"), "{why}");
        }
    }
}

/// Without a store's feature, its driver is refused by name, before any
/// other store is built, and nothing falls back to memory.
#[tokio::test]
async fn a_driver_without_its_feature_names_the_feature() {
    let drivers = [
        ("redis", "redis://127.0.0.1:6379", cfg!(feature = "redis")),
        (
            "postgres",
            "postgres://127.0.0.1/test",
            cfg!(feature = "postgres"),
        ),
        ("mysql", "mysql://127.0.0.1/test", cfg!(feature = "mysql")),
        ("sqlite", "sqlite::memory:", cfg!(feature = "sqlite")),
        (
            "dynamodb",
            "dynamodb://us-east-1",
            cfg!(feature = "dynamodb"),
        ),
    ];
    // With every feature on (CI's `--all-features` run) there is nothing
    // to refuse; `cargo test -p verrou` checks them all.
    for (driver, url, compiled) in drivers {
        if compiled {
            continue;
        }
        let config = Config::new()
            .store("default", StoreConfig::from_url(url).unwrap())
            .store("local", StoreConfig::memory());
        match config.build().await {
            Err(LockError::InvalidConfig { store, reason }) => {
                assert_eq!(store, driver);
                assert!(
                    reason.contains(&format!("enable the `{driver}` feature")),
                    "{reason}"
                );
            }
            other => panic!("{driver} without its feature gave {other:?}"),
        }
    }
}
