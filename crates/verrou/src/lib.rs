#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod build;
mod config;
mod url;

/// Everything of `verrou-core`: [`Verrou`], [`LockFactory`], [`Lock`], the
/// errors, durations, retry policy and the [`store`] contract.
pub use verrou_core::*;

pub use config::{
    Config, DEFAULT_STORE, DynamoDbConfig, Limit, MemoryConfig, MysqlConfig, PostgresConfig,
    RedisConfig, RetryConfig, STORE_URL_VAR, Secret, SqliteConfig, StoreConfig, StoreUrl,
};

/// The in-process store (feature `memory`, on by default).
#[cfg(feature = "memory")]
pub use verrou_memory as memory;

/// The Redis, Redis Cluster and Valkey store (feature `redis`).
#[cfg(feature = "redis")]
pub use verrou_redis as redis;

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
pub use verrou_postgres as postgres;

/// The MySQL and MariaDB store (feature `mysql`).
#[cfg(feature = "mysql")]
pub use verrou_mysql as mysql;

/// The SQLite store (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use verrou_sqlite as sqlite;

/// The DynamoDB store (feature `dynamodb`; `aws-config` for the AWS SDK's
/// credential chain).
#[cfg(feature = "dynamodb")]
pub use verrou_dynamodb as dynamodb;
