//! Built without the `rustls` feature (`cargo test -p verrou-postgres
//! --no-default-features --test without_tls`, which `cargo xtask ci` runs):
//! a TLS mode is refused before any connection, never served in plain text.

#![cfg(not(feature = "rustls"))]

use verrou_core::LockError;
use verrou_postgres::PostgresStore;
use verrou_postgres::tokio_postgres::Config;
use verrou_postgres::tokio_postgres::config::SslMode;

fn refused_for_want_of_rustls(what: &str, result: Result<PostgresStore, LockError>) {
    match result {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(reason.contains("`rustls` feature"), "{what}: {reason}");
        }
        other => panic!("{what}: expected InvalidConfig, got {other:?}"),
    }
}

/// The machine's plain-text server on 5432 would accept every one of these
/// in plain text; the store must refuse them instead, whether the server
/// is there or not.
#[tokio::test]
async fn every_tls_mode_is_invalid_config() {
    for conn in [
        "postgres://postgres@127.0.0.1:5432/test?sslmode=require",
        "postgres://postgres@127.0.0.1:5432/test?sslmode=verify-full&sslrootcert=system",
        "postgres://postgres@127.0.0.1:5432/test?sslmode=verify-ca&sslrootcert=%2Fca.pem",
        "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=verify-full",
    ] {
        refused_for_want_of_rustls(conn, PostgresStore::builder().url(conn).build().await);
    }
    refused_for_want_of_rustls(
        "ca_file",
        PostgresStore::builder()
            .url("postgres://postgres@127.0.0.1:5432/test?sslmode=verify-full")
            .ca_file("/ca.pem")
            .build()
            .await,
    );
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(5432)
        .user("postgres")
        .dbname("test")
        .ssl_mode(SslMode::Require);
    refused_for_want_of_rustls(
        "Config with ssl_mode Require",
        PostgresStore::builder().config(config).build().await,
    );
}
