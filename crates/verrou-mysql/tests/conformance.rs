//! The shared behaviour suite against MariaDB / MySQL at 127.0.0.1:3306
//! (override with `VERROU_MYSQL_URL`).

mod common;

verrou_conformance::conformance_tests!(
    async { verrou_testkit::require_service("mysql", common::store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    }
);
