//! The whole conformance suite against an SQLite file.
//!
//! Every test (nextest runs each in its own process) uses the same file, so
//! the suite also exercises several processes sharing one database.

use std::path::Path;

use verrou_sqlite::SqliteStore;

async fn make_store() -> SqliteStore {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verrou-sqlite-conformance.db");
    // SQLite needs no service: a store that cannot be built is a bug, never a skip.
    SqliteStore::builder()
        .path(path)
        .build()
        .await
        .expect("sqlite store")
}

verrou_conformance::conformance_tests!(
    async { Some(make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    }
);
