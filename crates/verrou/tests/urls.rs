//! Every store URL form reads into the store it names, and every malformed
//! one is `InvalidConfig` with its reason (never with its password).

use std::path::PathBuf;

use verrou::{
    Config, DynamoDbConfig, LockError, MysqlConfig, PostgresConfig, RedisConfig, SqliteConfig,
    StoreConfig, StoreUrl,
};

fn parse(url: &str) -> StoreConfig {
    StoreConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The reason of an `InvalidConfig`, failing on anything else.
fn refused(url: &str) -> String {
    match StoreConfig::from_url(url) {
        Err(LockError::InvalidConfig { reason, .. }) => reason,
        other => panic!("{url} should be InvalidConfig, got {other:?}"),
    }
}

#[test]
fn memory_urls() {
    for url in ["memory:", "memory://", " MEMORY: "] {
        assert_eq!(parse(url), StoreConfig::memory(), "{url}");
    }
}

#[test]
fn redis_urls_go_to_the_driver_as_written() {
    for url in [
        "redis://127.0.0.1:6379",
        "redis://:hunter2@cache:6379/2",
        "rediss://user:hunter2@cache:6380",
        "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001",
        "redis-sentinel://sentinel:26379/0?sentinelServiceName=locks",
        "redis+unix:///run/redis.sock",
        "valkey://127.0.0.1:6390",
        "valkey-cluster://127.0.0.1:7000",
    ] {
        let StoreConfig::Redis(RedisConfig { url: Some(got), .. }) = parse(url) else {
            panic!("{url} is not a redis store");
        };
        assert_eq!(got.as_str(), url);
    }
}

#[test]
fn postgres_urls() {
    for url in [
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql://app:hunter2@db/app?application_name=locks",
    ] {
        let StoreConfig::Postgres(PostgresConfig { url: Some(got), .. }) = parse(url) else {
            panic!("{url} is not a postgres store");
        };
        assert_eq!(got.as_str(), url);
    }
}

#[test]
fn mysql_and_mariadb_urls_read_as_mysql() {
    for (url, driver_url) in [
        (
            "mysql://root@127.0.0.1:3306/test",
            "mysql://root@127.0.0.1:3306/test",
        ),
        (
            "mariadb://app:hunter2@db:3306/app",
            "mysql://app:hunter2@db:3306/app",
        ),
    ] {
        let StoreConfig::Mysql(MysqlConfig { url: Some(got), .. }) = parse(url) else {
            panic!("{url} is not a mysql store");
        };
        assert_eq!(got.as_str(), driver_url);
    }
}

#[test]
fn sqlite_urls_name_a_file_or_memory() {
    for (url, path) in [
        ("sqlite://locks.db", "locks.db"),
        ("sqlite:///var/lib/app/locks.db", "/var/lib/app/locks.db"),
        ("sqlite:locks.db", "locks.db"),
        ("sqlite://data/locks.db", "data/locks.db"),
    ] {
        let StoreConfig::Sqlite(SqliteConfig {
            path: Some(got),
            in_memory: false,
            ..
        }) = parse(url)
        else {
            panic!("{url} is not a sqlite file");
        };
        assert_eq!(got, PathBuf::from(path), "{url}");
    }
    for url in ["sqlite::memory:", "sqlite://:memory:"] {
        let StoreConfig::Sqlite(SqliteConfig {
            path: None,
            in_memory: true,
            ..
        }) = parse(url)
        else {
            panic!("{url} is not an in-memory sqlite");
        };
    }
}

#[test]
fn dynamodb_urls_take_a_region_or_parameters() {
    let StoreConfig::DynamoDb(config) = parse("dynamodb://eu-west-1") else {
        panic!("not dynamodb");
    };
    assert_eq!(config.region.as_deref(), Some("eu-west-1"));
    assert_eq!(config.endpoint, None);

    let StoreConfig::DynamoDb(config) =
        parse("dynamodb://?endpoint=http://127.0.0.1:8000&region=us-east-1&table=locks")
    else {
        panic!("not dynamodb");
    };
    assert_eq!(
        config.endpoint,
        Some(StoreUrl::new("http://127.0.0.1:8000"))
    );
    assert_eq!(config.region.as_deref(), Some("us-east-1"));
    assert_eq!(config.table_name.as_deref(), Some("locks"));

    let StoreConfig::DynamoDb(config) =
        parse("dynamodb://us-east-1/?table=my%2Elocks&endpoint=http%3A%2F%2Flocalhost%3A8000")
    else {
        panic!("not dynamodb");
    };
    assert_eq!(config.table_name.as_deref(), Some("my.locks"));
    assert_eq!(
        config.endpoint,
        Some(StoreUrl::new("http://localhost:8000"))
    );

    let StoreConfig::DynamoDb(config) = parse(
        "dynamodb://eu-west-1?aws_config=true&ca_file=%2Fetc%2Fverrou%2Fca.pem&endpoint=https://ddb.internal",
    ) else {
        panic!("not dynamodb");
    };
    assert_eq!(config.aws_config, Some(true));
    assert_eq!(
        config.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/verrou/ca.pem"))
    );

    // No region at all: the builder falls back to AWS_REGION.
    assert_eq!(
        parse("dynamodb://"),
        StoreConfig::DynamoDb(DynamoDbConfig::default())
    );
}

#[test]
fn malformed_urls_say_why() {
    for (url, reason) in [
        ("", "no scheme"),
        ("127.0.0.1:6379", "unknown store URL scheme `127.0.0.1`"),
        ("localhost", "no scheme"),
        ("ftp://host", "unknown store URL scheme `ftp`"),
        ("memory://somewhere", "nothing after it"),
        ("redis:127.0.0.1", "starts with `redis://`"),
        ("postgres:db", "starts with `postgres://`"),
        ("mariadb:db", "starts with `mariadb://`"),
        ("sqlite://", "names nothing"),
        ("sqlite:", "names nothing"),
        ("sqlite://locks.db?mode=rwc", "takes no parameters"),
        ("dynamodb:eu-west-1", "starts with `dynamodb://`"),
        ("dynamodb://eu-west-1/locks", "not a region"),
        (
            "dynamodb://?tabel=locks",
            "unknown dynamodb URL parameter `tabel`",
        ),
        ("dynamodb://?region=", "`region` is empty"),
        ("dynamodb://?aws_config=yes", "`true` or `false`, got `yes`"),
        (
            "dynamodb://eu-west-1?region=us-east-1",
            "gives `region` twice",
        ),
        ("dynamodb://?table=a%zz", "two hex digits"),
        ("dynamodb://AKIA:hunter2@eu-west-1", "holds no credentials"),
    ] {
        let got = refused(url);
        assert!(
            got.contains(reason),
            "{url:?}: {got:?} should say {reason:?}"
        );
    }
}

#[test]
fn passwords_stay_out_of_errors() {
    for url in [
        "postgres:app:hunter2@db/app",
        "redis:user:hunter2@cache",
        "memory://user:hunter2@host",
        "dynamodb://AKIA:hunter2@eu-west-1",
        "mysql:root:hunter2@db/app",
    ] {
        let reason = refused(url);
        assert!(!reason.contains("hunter2"), "{url}: {reason}");
    }
    match Config::from_url("ftp://user:hunter2@host") {
        Err(error) => assert!(!error.to_string().contains("hunter2"), "{error}"),
        Ok(config) => panic!("ftp read as {config:?}"),
    }
}

#[test]
fn a_url_becomes_the_store_named_default() {
    let config = Config::from_url("redis://127.0.0.1:6379").unwrap();
    assert_eq!(config.stores.len(), 1);
    assert_eq!(config.stores["default"].driver(), "redis");
}
