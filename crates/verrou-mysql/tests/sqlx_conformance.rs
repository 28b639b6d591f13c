//! The whole conformance suite on a store built on a sqlx pool (feature
//! `sqlx`), against MariaDB / MySQL at 127.0.0.1:3306 (override with
//! `VERROU_MYSQL_URL`).

use std::time::Duration;

use verrou_core::LockError;
use verrou_mysql::MysqlStore;
use verrou_mysql::sqlx::mysql::MySqlPoolOptions;
use verrou_testkit::Service;

async fn make_store() -> Result<MysqlStore, LockError> {
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&Service::Mysql.url())
        .await
        .map_err(|e| LockError::store("mysql", e))?;
    MysqlStore::from_sqlx(pool).build().await
}

verrou_conformance::conformance_tests!(
    async { verrou_testkit::require_service("mysql", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    }
);
