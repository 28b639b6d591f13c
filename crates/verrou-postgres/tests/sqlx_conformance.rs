//! The whole conformance suite on a store built on a sqlx pool (feature
//! `sqlx`), against PostgreSQL (127.0.0.1:5432, or `VERROU_POSTGRES_URL`).
//! Release announcements included: the store listens on a session of its
//! own, opened with the pool's connect options.

use std::time::Duration;

use verrou_postgres::PostgresStore;
use verrou_postgres::sqlx::postgres::PgPoolOptions;
use verrou_testkit::Service;

async fn make_store() -> Result<PostgresStore, verrou_core::LockError> {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&Service::Postgres.url())
        .await
        .map_err(|e| verrou_core::LockError::store("postgres", e))?;
    PostgresStore::from_sqlx(pool).build().await
}

verrou_conformance::conformance_tests!(
    async { verrou_testkit::require_service("postgres", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
