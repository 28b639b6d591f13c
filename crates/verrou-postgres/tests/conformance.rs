//! The whole conformance suite against PostgreSQL (127.0.0.1:5432, or
//! `VERROU_POSTGRES_URL`).

use verrou_postgres::PostgresStore;

async fn make_store() -> Result<PostgresStore, verrou_core::LockError> {
    let url = std::env::var("VERROU_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    PostgresStore::builder()
        .url(&url)
        .max_connections(4)
        .build()
        .await
}

verrou_conformance::conformance_tests!(
    async { verrou_conformance::require_service("postgres", make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: true,
    }
);
