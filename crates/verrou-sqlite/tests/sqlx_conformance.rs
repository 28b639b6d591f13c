//! The whole conformance suite on a store built on a sqlx pool (feature
//! `sqlx`): the same statements as the store's own connections, run by sqlx.
//!
//! Every test uses the same file, as `conformance.rs` does, so the suite also
//! exercises several pools (and processes, under nextest) sharing it.

use std::path::Path;

use verrou_sqlite::SqliteStore;
use verrou_sqlite::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

async fn make_store() -> SqliteStore {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verrou-sqlite-sqlx-conformance.db");
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("sqlx pool");
    // SQLite needs no service: a store that cannot be built is a bug, never a skip.
    SqliteStore::from_sqlx(pool)
        .build()
        .await
        .expect("sqlite store on a sqlx pool")
}

verrou_conformance::conformance_tests!(
    async { Some(make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    }
);
