//! Options: table names, auto-creation, key limits, unreachable servers.

mod common;

use std::time::Duration;

use verrou_conformance::require_service;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_postgres::PostgresStore;

use common::{admin, drop_table, unique, url};

#[tokio::test]
async fn a_custom_table_name_is_created_and_used() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // Mixed case on purpose: the name is quoted, so its case is kept.
    let table = unique("Verrou_Custom");
    let store = PostgresStore::builder()
        .url(&url())
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
async fn a_missing_table_without_auto_create_is_a_clear_error() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_missing");
    let error = PostgresStore::builder()
        .url(&url())
        .table_name(&table)
        .auto_create_table(false)
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
async fn an_existing_table_works_without_auto_create() {
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
        .url(&url())
        .table_name(&table)
        .auto_create_table(false)
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
        .url(&url())
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
    // Rejected before any connection is made, so no server is needed.
    for name in [
        "verrou; DROP TABLE x",
        "\"quoted\"",
        "",
        &"a".repeat(64),
        "1verrou",
        "public.verrou",
        "verrou--",
        "ver rou",
        "verrou\0",
    ] {
        let error = PostgresStore::builder()
            .url("postgres://postgres@127.0.0.1:1/test")
            .table_name(name)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{name:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn oversized_and_empty_keys_are_invalid_before_any_sql() {
    let Some(store) = require_service(
        "postgres",
        PostgresStore::builder()
            .url(&url())
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    let max = store.max_key_bytes();
    assert!(max >= 255);
    let base = unique("verrou_key");
    let at_limit = format!("{base}{}", "k".repeat(max - base.len()));
    let over = format!("{at_limit}k");
    assert!(matches!(
        store.acquire(&at_limit, "o", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&at_limit, "o").await.unwrap();
    // Multi-byte characters count in bytes, not characters.
    let wide = "é".repeat(max / 2 + 1);
    for key in [over.as_str(), wide.as_str(), "", "nul\0byte"] {
        assert!(
            matches!(
                store.acquire(key, "o", Expiry::Never).await,
                Err(LockError::InvalidKey { .. })
            ),
            "{key:?}"
        );
        assert!(matches!(
            store.is_locked(key).await,
            Err(LockError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.release(key, "o").await,
            Err(LockError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.extend(key, "o", Expiry::Never).await,
            Err(LockError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.force_release(key).await,
            Err(LockError::InvalidKey { .. })
        ));
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_store_error() {
    // Nothing listens on port 1: the connection is refused at once.
    let error = PostgresStore::builder()
        .url("postgres://postgres@127.0.0.1:1/test")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, LockError::Store { .. }), "{error:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_store_error_not_a_hang() {
    // Accepts the TCP connection, then never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let build = PostgresStore::builder()
        .url(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_millis(300))
        .build();
    let error = tokio::time::timeout(Duration::from_secs(30), build)
        .await
        .expect("build hung on a silent server")
        .unwrap_err();
    assert!(matches!(error, LockError::Store { .. }), "{error:?}");
    silent.abort();
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
        .url(&url())
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
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let Some(store) = require_service(
        "postgres",
        PostgresStore::builder()
            .url(&url().replace("postgres@", "postgres:hunter2@"))
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("verrou"), "{shown}");
}

async fn session_setting(store: &PostgresStore, name: &str) -> String {
    let client = store.pool().get().await.unwrap();
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
            .url(&url())
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    assert_eq!(session_setting(&durable, "synchronous_commit").await, "on");

    let sep = if url().contains('?') { '&' } else { '?' };
    let with_options = format!("{}{sep}options=-c%20statement_timeout%3D4321", url());
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
