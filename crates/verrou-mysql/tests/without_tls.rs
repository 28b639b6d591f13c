//! Built without the `rustls` feature (`cargo test -p verrou-mysql
//! --no-default-features --test without_tls`, which `cargo xtask ci` runs):
//! a TLS mode is refused before any connection, never served in plain text.

#![cfg(not(feature = "rustls"))]

use verrou_core::LockError;
use verrou_mysql::MysqlStore;

/// The machine's plain-text server on 3306 would accept every one of these
/// in plain text; the store must refuse them instead, whether the server
/// is there or not.
#[tokio::test]
async fn every_tls_mode_is_invalid_config() {
    for url in [
        "mysql://root@127.0.0.1:3306/test?ssl-mode=REQUIRED",
        "mysql://root@127.0.0.1:3306/test?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem",
        "mysql://root@127.0.0.1:3306/test?ssl-mode=verify_identity",
    ] {
        match MysqlStore::builder().url(url).build().await {
            Err(LockError::InvalidConfig { reason, .. }) => {
                assert!(reason.contains("`rustls` feature"), "{url}: {reason}");
            }
            other => panic!("{url}: expected InvalidConfig, got {other:?}"),
        }
    }
}
