//! Where each local service is.

use std::fmt::Display;

/// A server that tests, the bench or the torture tool talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// PostgreSQL (the machine's own, database `test`).
    Postgres,
    /// MariaDB or MySQL (the machine's own, database `test`).
    Mysql,
    /// A single Redis server (the machine's own).
    Redis,
    /// The local Redis Cluster that `cargo xtask services up` starts.
    RedisCluster,
    /// The Valkey server that `cargo xtask services up` starts.
    Valkey,
    /// The DynamoDB emulator that `cargo xtask services up` starts.
    DynamoDb,
    /// A Redis server speaking only TLS, with the test CA's certificate
    /// (`cargo xtask services up redis-tls`; see
    /// [`TestCa`](crate::servers::TestCa)).
    RedisTls,
    /// The DynamoDB emulator over HTTPS, with the test CA's certificate
    /// (`cargo xtask services up dynamodb-tls`).
    DynamoDbTls,
    /// A PostgreSQL server that takes TCP connections over TLS only, with
    /// the test CA's certificate (`cargo xtask services up postgres-tls`).
    /// The URL names no TLS mode: tests add `sslmode=...` themselves.
    PostgresTls,
    /// A MariaDB server that requires TLS of every account, with the test
    /// CA's certificate (`cargo xtask services up mariadb-tls`). The URL
    /// names no TLS mode: tests add `ssl-mode=...` themselves.
    MysqlTls,
}

impl Service {
    /// Every service, in the order `cargo xtask services` lists them.
    pub const ALL: [Service; 10] = [
        Service::Postgres,
        Service::Mysql,
        Service::Redis,
        Service::RedisCluster,
        Service::Valkey,
        Service::DynamoDb,
        Service::RedisTls,
        Service::DynamoDbTls,
        Service::PostgresTls,
        Service::MysqlTls,
    ];

    /// The environment variable that overrides [`Service::default_url`].
    pub fn env_var(self) -> &'static str {
        match self {
            Service::Postgres => "VERROU_POSTGRES_URL",
            Service::Mysql => "VERROU_MYSQL_URL",
            Service::Redis => "VERROU_REDIS_URL",
            Service::RedisCluster => "VERROU_REDIS_CLUSTER_URL",
            Service::Valkey => "VERROU_VALKEY_URL",
            Service::DynamoDb => "VERROU_DYNAMODB_ENDPOINT",
            Service::RedisTls => "VERROU_REDIS_TLS_URL",
            Service::DynamoDbTls => "VERROU_DYNAMODB_TLS_ENDPOINT",
            Service::PostgresTls => "VERROU_POSTGRES_TLS_URL",
            Service::MysqlTls => "VERROU_MYSQL_TLS_URL",
        }
    }

    /// Where the service is on a machine set up by `cargo xtask services up`.
    pub fn default_url(self) -> &'static str {
        match self {
            Service::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Service::Mysql => "mysql://root@127.0.0.1:3306/test",
            Service::Redis => "redis://127.0.0.1:6379",
            Service::RedisCluster => "redis-cluster://127.0.0.1:7000",
            Service::Valkey => "redis://127.0.0.1:6390",
            Service::DynamoDb => "http://127.0.0.1:8000",
            // The name the test certificate carries, as a client in
            // production would name its server.
            Service::RedisTls => "rediss://localhost:6380",
            Service::DynamoDbTls => "https://localhost:8443",
            Service::PostgresTls => "postgres://postgres@localhost:5433/postgres",
            Service::MysqlTls => "mysql://root@localhost:3307/test",
        }
    }

    /// Where the service is: [`Service::env_var`] if set and not empty,
    /// else [`Service::default_url`].
    pub fn url(self) -> String {
        match std::env::var(self.env_var()) {
            Ok(url) if !url.is_empty() => url,
            _ => self.default_url().to_owned(),
        }
    }

    /// A short name for messages ("postgres", "redis-cluster", ...).
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Mysql => "mysql",
            Service::Redis => "redis",
            Service::RedisCluster => "redis-cluster",
            Service::Valkey => "valkey",
            Service::DynamoDb => "dynamodb",
            Service::RedisTls => "redis-tls",
            Service::DynamoDbTls => "dynamodb-tls",
            Service::PostgresTls => "postgres-tls",
            Service::MysqlTls => "mariadb-tls",
        }
    }
}

impl Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_its_own_variable_and_a_loopback_default() {
        let mut vars: Vec<_> = Service::ALL.iter().map(|s| s.env_var()).collect();
        vars.sort();
        vars.dedup();
        assert_eq!(vars.len(), Service::ALL.len());
        for service in Service::ALL {
            let url = service.default_url();
            assert!(
                url.contains("127.0.0.1")
                    || url.contains("://localhost:")
                    || url.contains("@localhost:"),
                "{service}"
            );
        }
    }
}
