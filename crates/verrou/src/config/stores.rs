//! One store's configuration: which driver, and that driver's builder
//! options under the names its builder uses.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{Limit, Secret, StoreUrl, optional_duration};

/// One store: the `driver` field says which, the other fields are that
/// store's builder options (each optional: absent means the builder's
/// default, see each store crate's builder).
///
/// Every driver can be configured whatever the crate's features; building
/// a store whose feature is off fails with [`LockError::InvalidConfig`]
/// naming the feature to enable.
///
/// ```
/// use verrou::StoreConfig;
///
/// let store: StoreConfig = serde_json::from_str(r#"{
///     "driver": "postgres",
///     "url": "postgres://app:hunter2@db:5432/app",
///     "table_name": "locks",
///     "operation_timeout": "2s"
/// }"#).unwrap();
/// assert_eq!(store.driver(), "postgres");
/// assert!(!format!("{store:?}").contains("hunter2"));
/// ```
///
/// [`LockError::InvalidConfig`]: verrou_core::LockError::InvalidConfig
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreConfig {
    /// `driver = "memory"`: locks shared by the tasks of this process.
    Memory(MemoryConfig),
    /// `driver = "redis"`: Redis, Redis Cluster or Valkey.
    Redis(RedisConfig),
    /// `driver = "postgres"` (or `"postgresql"`).
    #[serde(alias = "postgresql")]
    Postgres(PostgresConfig),
    /// `driver = "mysql"` (or `"mariadb"`).
    #[serde(alias = "mariadb")]
    Mysql(MysqlConfig),
    /// `driver = "sqlite"`.
    Sqlite(SqliteConfig),
    /// `driver = "dynamodb"`.
    DynamoDb(DynamoDbConfig),
}

impl StoreConfig {
    /// An in-memory store.
    pub fn memory() -> Self {
        StoreConfig::Memory(MemoryConfig::default())
    }

    /// The driver's name, as written in the `driver` field.
    pub fn driver(&self) -> &'static str {
        match self {
            StoreConfig::Memory(_) => "memory",
            StoreConfig::Redis(_) => "redis",
            StoreConfig::Postgres(_) => "postgres",
            StoreConfig::Mysql(_) => "mysql",
            StoreConfig::Sqlite(_) => "sqlite",
            StoreConfig::DynamoDb(_) => "dynamodb",
        }
    }
}

/// The memory store has no options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {}

/// Options of the Redis store (see `verrou_redis::RedisStoreBuilder`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[[user:]password@]host[:port][/db]`,
    /// `redis-cluster://host:port[?node=host:port...]`, `valkey://...`
    /// (default `redis://127.0.0.1:6379`). `rediss://`, `rediss-cluster://`
    /// and `valkeys://` connect over TLS, checking the certificate against
    /// the platform's roots or [`ca_file`](Self::ca_file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<StoreUrl>,
    /// A PEM file of the CA certificates to trust for TLS instead of the
    /// platform's roots (a private CA, ElastiCache's own...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Put in front of every lock key, e.g. `"myapp:"` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Connections to open, per Cluster node (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How long connecting may take (default 3 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Limit>,
    /// How long one store call may take (default 5 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<Limit>,
    /// How long a key's fencing counter outlives its last token (default
    /// 1 h; above a century, e.g. `"101y"`, keeps counters forever).
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub counter_retention: Option<Duration>,
}

/// Options of the PostgreSQL store (see
/// `verrou_postgres::PostgresStoreBuilder`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// `postgres://user:password@host:5432/db` or a key-value connection
    /// string (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<StoreUrl>,
    /// A PEM file of the CA certificates to trust for TLS (the URL asks
    /// for it, e.g. `sslmode=verify-full`) instead of the platform's roots;
    /// the same as `sslrootcert` in the URL, which it may not repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The lock table (default `verrou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Create the table when it is missing (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<bool>,
    /// The pool's size (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How long opening a connection may take (default 5 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Limit>,
    /// How long one store call may take (default 10 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<Limit>,
    /// Wake waiters with `NOTIFY` on release (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_announcements: Option<bool>,
    /// Wait for each commit to reach disk (default `true`; see the
    /// builder's warning before turning it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_commit: Option<bool>,
}

/// Options of the MySQL/MariaDB store (see `verrou_mysql::MysqlStoreBuilder`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// `mysql://user:password@host:3306/db` (required; `mariadb://` works
    /// too). The URL must name a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<StoreUrl>,
    /// A PEM file of the CA certificates to trust for TLS (the URL asks
    /// for it, e.g. `ssl-mode=VERIFY_IDENTITY`) instead of the platform's roots;
    /// the same as `ssl-ca` in the URL, which it may not repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The lock table (default `verrou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Create the table when it is missing (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<bool>,
    /// The pool's size (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// How long getting a connection may take (default 5 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Limit>,
    /// How long one store call may take (default 10 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<Limit>,
}

/// Options of the SQLite store (see `verrou_sqlite::SqliteStoreBuilder`).
/// Exactly one of `path` and `in_memory = true` is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file, created if missing; shared by every process that
    /// opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A private in-memory database instead of a file (default `false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_memory: bool,
    /// The lock table (default `verrou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Create the table when it is missing (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<bool>,
    /// How long a write waits for another connection's (default 5 s;
    /// `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_timeout: Option<Limit>,
    /// Connections (and blocking threads) at most (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
}

/// Options of the DynamoDB store (see
/// `verrou_dynamodb::DynamoDbStoreBuilder`).
///
/// Without `access_key_id` and `secret_access_key`, credentials come from
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; without `region`, from
/// `AWS_REGION`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DynamoDbConfig {
    /// An endpoint URL for an emulator or a VPC endpoint
    /// (`http://127.0.0.1:8000`; default: AWS's HTTPS endpoint for the
    /// region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<StoreUrl>,
    /// A PEM file of the CA certificates to trust for an `https` endpoint
    /// instead of the platform's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Region and credentials from the AWS SDK's default chain (the
    /// environment, profiles, SSO, web identity, ECS and EC2 roles) instead
    /// of `region` and the keys below (default `false`). Needs the
    /// `aws-config` feature; `region` and explicit keys still win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_config: Option<bool>,
    /// The AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The lock table (default `verrou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Create the table when it is missing (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<bool>,
    /// Turn on DynamoDB's TTL clean-up of old items (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_ttl: Option<bool>,
    /// How long building waits for the table to be ACTIVE (default 60 s;
    /// `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_ready_timeout: Option<Limit>,
    /// Extra wait before taking over a lease seen unchanged (default 0).
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_skew_margin: Option<Duration>,
    /// How long one request may take, retries included (default 10 s;
    /// `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout: Option<Limit>,
    /// How long opening a connection may take (default 3 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Limit>,
    /// The AWS access key id (with `secret_access_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The AWS secret access key (with `access_key_id`); never shown by
    /// `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
}
