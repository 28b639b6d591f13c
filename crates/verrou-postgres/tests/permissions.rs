//! The rights the README's "Permissions" names are enough: a role with
//! `SELECT`, `INSERT`, `UPDATE` and `DELETE` on an existing table (no
//! `CREATE`, nothing for `LISTEN`/`NOTIFY`) runs every operation, release
//! wake-ups and pruning included; without `CREATE` on the schema a missing
//! table cannot be created, and the error says so.

mod common;

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_postgres::PostgresStore;
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

/// The test server's URL as `role` (the machine's server trusts local
/// logins, as for `postgres`).
fn url_as(role: &str) -> String {
    Service::Postgres
        .url()
        .replacen("postgres@", &format!("{role}@"), 1)
}

#[tokio::test]
async fn a_role_with_row_rights_on_the_table_runs_every_operation() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    if !Service::Postgres.url().contains("://postgres@") {
        eprintln!("SKIPPED: VERROU_POSTGRES_URL does not log in as `postgres`");
        return;
    }
    let table = unique("verrou_rights");
    let role = unique("verrou_role");
    // The table as an owner would create it (a migration, say).
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(&table)
        .max_connections(1)
        .build()
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON \"{table}\" TO \"{role}\";"
        ))
        .await
        .unwrap();

    let store = PostgresStore::builder()
        .url(&url_as(&role))
        .table_name(&table)
        .create_table(false)
        .max_connections(2)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    let ttl = Expiry::After(Duration::from_secs(60));
    assert!(matches!(
        store.acquire(&key, "a", ttl).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert!(matches!(
        store.acquire(&key, "b", ttl).await.unwrap(),
        Acquisition::Held
    ));
    store.extend(&key, "a", ttl).await.unwrap();
    assert!(store.is_locked(&key).await.unwrap());
    // `LISTEN` and `pg_notify` need no grant.
    let watch = store
        .watch_release(&key)
        .await
        .unwrap()
        .expect("the store listens");
    store.release(&key, "a").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .expect("the release was not announced");
    store.force_release(&key).await.unwrap();
    store.prune().await.unwrap();

    // Without `CREATE` on the schema (PostgreSQL 15 grants it to no one
    // by default), a missing table cannot be made.
    let missing = unique("verrou_rights_missing");
    let refused = PostgresStore::builder()
        .url(&url_as(&role))
        .table_name(&missing)
        .max_connections(1)
        .build()
        .await;
    let server_version: i32 = admin
        .query_one("SHOW server_version_num", &[])
        .await
        .unwrap()
        .get::<_, String>(0)
        .parse()
        .unwrap();
    if server_version >= 150_000 {
        let error = refused.expect_err("created a table without CREATE on the schema");
        let chain = verrou_conformance::builders::error_chain(&error);
        assert!(chain.contains("permission denied"), "{chain}");
    }

    drop(store);
    drop_table(&admin, &table).await;
    drop_table(&admin, &missing).await;
    let _ = admin
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"))
        .await;
}
