//! The whole conformance suite against PostgreSQL (127.0.0.1:5432, or
//! `VERROU_POSTGRES_URL`).

use verrou_postgres::PostgresStore;
use verrou_testkit::Service;

async fn make_store() -> Result<PostgresStore, verrou_core::LockError> {
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .max_connections(4)
        .build()
        .await
}

verrou_conformance::conformance_tests!(
    async { verrou_testkit::require_service("postgres", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
