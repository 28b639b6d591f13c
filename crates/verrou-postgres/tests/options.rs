//! Options: table names, creating the table, unreachable servers, secrets.
//! The checks every store's builder passes come from
//! `verrou_conformance::builders`; the rest is PostgreSQL's own.

mod common;

use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockFactory, LockStore};
use verrou_postgres::PostgresStore;
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

#[tokio::test]
async fn a_custom_table_name_is_created_and_used() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // Mixed case on purpose: the name is quoted, so its case is kept.
    let table = unique("Verrou_Custom");
    let store = PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(&table)
        .max_connections(2)
        .build()
        .await
        .unwrap();
    assert_eq!(store.table_name(), table);
    let Acquisition::Acquired {
        fencing_token: Some(token),
    } = store.acquire("k", "owner", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired with a token");
    };
    let row = admin
        .query_one(
            &format!("SELECT owner, fencing_token FROM \"{table}\" WHERE key = 'k'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("owner"));
    assert_eq!(row.get::<_, i64>(1).unsigned_abs(), token);
    store.release("k", "owner").await.unwrap();
    // Released rows are kept (owner cleared) so the token keeps counting.
    let row = admin
        .query_one(
            &format!("SELECT owner FROM \"{table}\" WHERE key = 'k'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_missing_table_without_create_table_is_a_clear_error() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_missing");
    let error = PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&table),
        "the error does not name the table: {message}"
    );
    assert!(message.contains("does not exist"), "{message}");
    // And nothing was created behind our back.
    let row = admin
        .query_one(
            "SELECT to_regclass($1::text) IS NULL",
            &[&format!("\"{table}\"")],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
}

#[tokio::test]
async fn an_existing_table_works_without_create_table() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_migrated");
    // The migration from the README, as a user would run it.
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (
                key           text COLLATE \"C\" PRIMARY KEY,
                owner         text,
                expires_at    timestamptz,
                fencing_token bigint NOT NULL
            )"
        ))
        .await
        .unwrap();
    let store = PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(&table)
        .create_table(false)
        .max_connections(1)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        store.acquire("k", "o", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_table_of_the_wrong_shape_is_refused_at_build() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_wrong");
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (key text PRIMARY KEY, holder text)"
        ))
        .await
        .unwrap();
    let error = PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(&table)
        .max_connections(1)
        .build()
        .await
        .unwrap_err();
    let LockError::InvalidConfig { reason, .. } = &error else {
        panic!("expected InvalidConfig, got {error:?}");
    };
    assert!(reason.contains(&table), "{reason}");
    for column in ["`owner`", "`expires_at`", "`fencing_token`"] {
        assert!(reason.contains(column), "{column} not named: {reason}");
    }
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn hostile_table_names_are_invalid_config() {
    // Refused before any connection is made: nothing listens on port 1, so
    // a name that got through would fail differently.
    let build = |name: String| {
        PostgresStore::builder()
            .url("postgres://postgres@127.0.0.1:1/test")
            .table_name(name)
            .build()
    };
    builders::rejects_table_names(builders::BAD_TABLE_NAMES, build).await;
    builders::rejects_table_names(builders::BAD_SQL_TABLE_NAMES, build).await;
}

#[tokio::test]
async fn a_server_that_is_down_is_a_store_error() {
    builders::a_refused_connection_is_a_store_error(|address| {
        PostgresStore::builder()
            .url(&format!("postgres://postgres@{address}/test"))
            .build()
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_store_error_not_a_hang() {
    builders::a_silent_server_is_a_store_error(|address| {
        PostgresStore::builder()
            .url(&format!("postgres://postgres@{address}/test"))
            .connect_timeout(Duration::from_millis(300))
            .build()
    })
    .await;
}

#[tokio::test]
async fn connect_is_the_builder_with_a_url() {
    let Some(store) = require_service(
        "postgres",
        PostgresStore::connect(&Service::Postgres.url()).await,
    ) else {
        return;
    };
    assert_eq!(store.table_name(), "verrou");
    let lock = LockFactory::new(store)
        .create_lock(unique("verrou_connect"), "30s")
        .unwrap();
    lock.acquire().await.unwrap();
    lock.release().await.unwrap();
    let error = PostgresStore::connect("postgres://postgres@127.0.0.1:99999999/test")
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_urls_and_missing_sources_are_invalid_config() {
    let error = PostgresStore::builder()
        .url("postgres://u:secret@host/db?nonsense_option=1")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("secret"), "{error}");
    let error = PostgresStore::builder().build().await.unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
    let error = PostgresStore::builder()
        .url(&Service::Postgres.url())
        .max_connections(0)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let builder = PostgresStore::builder().url("postgres://user:hunter2@127.0.0.1:1/test");
    builders::debug_hides(&builder, "hunter2");
    let Some(store) = require_service(
        "postgres",
        PostgresStore::builder()
            .url(
                &Service::Postgres
                    .url()
                    .replace("postgres@", "postgres:hunter2@"),
            )
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    builders::debug_hides(&store, "hunter2");
    let shown = format!("{store:?}");
    assert!(shown.contains("verrou"), "{shown}");
}

async fn session_setting(store: &PostgresStore, name: &str) -> String {
    let client = store.pool().expect("a deadpool pool").get().await.unwrap();
    client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn synchronous_commit_is_on_unless_turned_off_and_keeps_the_url_options() {
    let Some(durable) = require_service(
        "postgres",
        PostgresStore::builder()
            .url(&Service::Postgres.url())
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    assert_eq!(session_setting(&durable, "synchronous_commit").await, "on");

    let sep = if Service::Postgres.url().contains('?') {
        '&'
    } else {
        '?'
    };
    let with_options = format!(
        "{}{sep}options=-c%20statement_timeout%3D4321",
        Service::Postgres.url()
    );
    let fast = PostgresStore::builder()
        .url(&with_options)
        .max_connections(1)
        .synchronous_commit(false)
        .build()
        .await
        .unwrap();
    assert_eq!(session_setting(&fast, "synchronous_commit").await, "off");
    assert_eq!(session_setting(&fast, "statement_timeout").await, "4321ms");
    let key = unique("key");
    assert!(matches!(
        fast.acquire(&key, "o", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    fast.release(&key, "o").await.unwrap();
}

/// `statements()` is what the store runs, parameters as documented: the
/// acquire issued bare on the driver grants a lock the store then sees and
/// releases, and the release issued bare frees it.
#[tokio::test]
async fn the_public_statements_are_the_ones_the_store_runs() {
    let Some(store) = require_service(
        "postgres",
        PostgresStore::builder()
            .url(&Service::Postgres.url())
            .max_connections(2)
            .build()
            .await,
    ) else {
        return;
    };
    let sql = store.statements();
    assert!(sql.acquire.contains("\"verrou\""), "{}", sql.acquire);
    let client = store.pool().expect("own pool").get().await.unwrap();
    let key = unique("bare");
    let ttl: Option<i64> = Some(5_000);
    let row = client
        .query_opt(&sql.acquire, &[&key, &"bare-owner", &ttl])
        .await
        .unwrap()
        .expect("a token row");
    let token: i64 = row.get(0);
    assert!(token > 0);
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store.acquire(&key, "other", Expiry::Never).await.unwrap(),
        Acquisition::Held
    );
    let released = client
        .query(&sql.release, &[&key, &"bare-owner"])
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert!(!store.is_locked(&key).await.unwrap());
}
