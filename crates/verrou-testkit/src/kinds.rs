//! The stores the tools know, by name.

use std::fmt;
use std::str::FromStr;

use crate::Service;

/// A store the bench and the torture tool can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StoreKind {
    /// `verrou-memory`.
    Memory,
    /// `verrou-redis` on one server.
    Redis,
    /// `verrou-redis` on a Redis Cluster.
    RedisCluster,
    /// `verrou-redis` on Valkey.
    Valkey,
    /// `verrou-postgres`.
    Postgres,
    /// `verrou-mysql` on MariaDB.
    Mysql,
    /// `verrou-sqlite` on a file.
    Sqlite,
    /// `verrou-dynamodb` on the emulator.
    DynamoDb,
}

impl StoreKind {
    /// Every store, in report order.
    pub const ALL: [StoreKind; 8] = [
        StoreKind::Memory,
        StoreKind::Redis,
        StoreKind::RedisCluster,
        StoreKind::Valkey,
        StoreKind::Postgres,
        StoreKind::Mysql,
        StoreKind::Sqlite,
        StoreKind::DynamoDb,
    ];

    /// The name used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
            StoreKind::RedisCluster => "redis-cluster",
            StoreKind::Valkey => "valkey",
            StoreKind::Postgres => "postgres",
            StoreKind::Mysql => "mysql",
            StoreKind::Sqlite => "sqlite",
            StoreKind::DynamoDb => "dynamodb",
        }
    }

    /// The server the store runs on (`None`: in-process or a local file).
    pub fn service(self) -> Option<Service> {
        match self {
            StoreKind::Memory | StoreKind::Sqlite => None,
            StoreKind::Redis => Some(Service::Redis),
            StoreKind::RedisCluster => Some(Service::RedisCluster),
            StoreKind::Valkey => Some(Service::Valkey),
            StoreKind::Postgres => Some(Service::Postgres),
            StoreKind::Mysql => Some(Service::Mysql),
            StoreKind::DynamoDb => Some(Service::DynamoDb),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        StoreKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = StoreKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown store {name:?} (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for kind in StoreKind::ALL {
            assert_eq!(kind.name().parse::<StoreKind>(), Ok(kind));
        }
        let error = "mongo".parse::<StoreKind>().unwrap_err();
        assert!(error.contains("redis-cluster"), "{error}");
    }
}
