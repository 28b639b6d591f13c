//! Servers started from code, each bootstrap written once: for tests and
//! the torture tool, which kill, pause, restart or fail over a server of
//! their own on a free port so the shared ones are never disturbed, and for
//! `cargo xtask services`, which starts the shared ones on their fixed ports
//! with the same code (daemonized, so they outlive it).
//!
//! - [`RedisServer`]: one `redis-server` (or `valkey-server`), with or
//!   without an append-only file.
//! - [`RedisCluster`]: three primaries and three replicas, and a manual
//!   failover.
//! - [`Postgres`], [`Mariadb`]: a data directory of their own, crash
//!   restarts.
//! - [`Dynalite`]: the DynamoDB emulator, found by [`dynalite_command`].
//! - [`TestCa`], [`TlsRedis`], [`TlsRedisCluster`], [`dynalite_tls`],
//!   [`TlsPostgres`], [`TlsMariadb`]: TLS servers with a certificate
//!   authority generated for the tests.
//!
//! Only the standard library: starting a server is running its program.
//! Errors are messages (`String`) that say what to install or where the log
//! is.

mod dynalite;
mod mariadb;
mod postgres;
mod process;
mod redis;
mod redis_cluster;
mod tls;
mod tls_sql;

pub use dynalite::{Dynalite, DynaliteBuilder, dynalite_command};
pub use mariadb::Mariadb;
pub use postgres::Postgres;
pub use process::{PRIVATE_PORTS, free_port, port_open};
pub use redis::{Persistence, RedisServer, RedisServerBuilder};
pub use redis_cluster::{RedisCluster, RedisClusterBuilder};
pub use tls::{TestCa, TlsRedis, TlsRedisBuilder, TlsRedisCluster, dynalite_tls, tls_port_up};
pub use tls_sql::{TlsMariadb, TlsPostgres, mariadb_tls_up, postgres_tls_up};

/// Where state shared by every checkout on this machine lives (the test CA,
/// the lock that keeps `cargo xtask services up` runs apart): the shared
/// servers listen on fixed ports, so they belong to the machine, not to a
/// checkout. `~/.cache/verrou`, or `verrou` in the temporary directory
/// without a home.
pub fn machine_dir() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| std::path::PathBuf::from(home).join(".cache/verrou"))
        .unwrap_or_else(|| std::env::temp_dir().join("verrou"))
}
