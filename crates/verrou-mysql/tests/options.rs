//! Builder options: table names, creating (or not) the table, checking its
//! shape, unusable configurations and unreachable servers.

mod common;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use verrou_conformance::require_service;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};

use common::{admin, builder, drop_table, store_on, unique, url};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

#[tokio::test]
async fn a_custom_table_name_is_created_and_used() {
    let table = unique("verrou_custom");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    assert_eq!(store.table_name(), table);
    assert!(matches!(
        store.acquire("k", "owner", TTL).await.unwrap(),
        Acquisition::Acquired {
            fencing_token: Some(_)
        }
    ));

    let mut conn = admin().await.unwrap();
    let owner: Option<Vec<u8>> = conn
        .exec_first(
            format!("SELECT owner FROM `{table}` WHERE lock_key = ?"),
            ("k",),
        )
        .await
        .unwrap();
    assert_eq!(
        owner.as_deref(),
        Some(&b"owner"[..]),
        "the row is in the custom table"
    );
    conn.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn a_missing_table_without_auto_create_is_a_clear_error() {
    let table = unique("verrou_missing");
    let result = builder()
        .table_name(&table)
        .auto_create_table(false)
        .build()
        .await;
    // Skip only when the server is unreachable, not on the error under test.
    if let Err(LockError::Store { .. }) = &result {
        require_service("mysql", result.map(|_| ()));
        return;
    }
    match result {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(
                reason.contains(&table),
                "the error names the table: {reason}"
            );
            assert!(reason.contains("auto_create_table"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // And nothing was created behind our back.
    let mut conn = admin().await.unwrap();
    let found: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (&table,),
        )
        .await
        .unwrap();
    assert_eq!(found, None);
    conn.disconnect().await.ok();
}

#[tokio::test]
async fn an_existing_table_works_without_auto_create() {
    let table = unique("verrou_premade");
    let Some(first) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    first.acquire("k", "a", TTL).await.unwrap();
    let second = builder()
        .table_name(&table)
        .auto_create_table(false)
        .build()
        .await
        .unwrap();
    assert!(second.is_locked("k").await.unwrap());
    drop_table(&table).await;
}

#[tokio::test]
async fn a_table_with_a_text_key_is_refused() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_wrong_shape");
    // A hand-written migration with a collated key would make `a` and `A`
    // one lock: the store must refuse it rather than run on it.
    conn.query_drop(format!(
        "CREATE TABLE `{table}` (lock_key VARCHAR(767) NOT NULL PRIMARY KEY, \
         owner VARBINARY(255), expires_at BIGINT, fencing_token BIGINT UNSIGNED NOT NULL)"
    ))
    .await
    .unwrap();
    match builder().table_name(&table).build().await {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(
                reason.contains(&table) && reason.contains("lock_key"),
                "{reason}"
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    conn.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn hostile_table_names_are_invalid_config() {
    let long = "t".repeat(64);
    for name in [
        "verrou; DROP TABLE x",
        "\"quoted\"",
        "`quoted`",
        "",
        long.as_str(),
        "1starts_with_digit",
        "test.verrou",
        "verrou` (x INT); --",
    ] {
        // An unreachable URL: a name must be refused before anything is sent.
        let result = MysqlStore::builder()
            .url("mysql://root@127.0.0.1:1/test")
            .table_name(name)
            .build()
            .await;
        match result {
            Err(LockError::InvalidConfig { store, .. }) => assert_eq!(store, "mysql"),
            other => panic!("table name {name:?}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn keys_over_the_limit_are_invalid_before_any_sql() {
    let table = unique("verrou_keys");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let max = store.max_key_bytes();
    assert!(max >= 255);
    // Multi-byte characters: the limit is in bytes, and a key right at it works.
    let at_limit = format!(
        "{}{}",
        "é".repeat((max - 1) / 2),
        "x".repeat((max - 1) % 2 + 1)
    );
    assert_eq!(at_limit.len(), max);
    assert!(matches!(
        store.acquire(&at_limit, "o", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert!(store.is_locked(&at_limit).await.unwrap());
    let over = format!("{at_limit}x");
    for result in [
        store.acquire(&over, "o", TTL).await.map(|_| ()),
        store.release(&over, "o").await,
        store.extend(&over, "o", TTL).await,
        store.force_release(&over).await,
        store.is_locked(&over).await.map(|_| ()),
        store.acquire("nul\0key", "o", TTL).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(LockError::InvalidKey { .. })),
            "{result:?}"
        );
    }
    // An owner the column cannot hold is refused too (never truncated into
    // another owner's prefix).
    let long_owner = "o".repeat(256);
    assert!(matches!(
        store.acquire("k", &long_owner, TTL).await,
        Err(LockError::InvalidKey { .. })
    ));
    drop_table(&table).await;
}

#[tokio::test]
async fn unusable_configurations_are_invalid_config() {
    let cases = [
        ("no source", MysqlStore::builder()),
        (
            "bad URL",
            MysqlStore::builder().url("postgres://localhost/test"),
        ),
        (
            "zero pool",
            MysqlStore::builder().url(&url()).max_connections(0),
        ),
    ];
    for (what, builder) in cases {
        assert!(
            matches!(builder.build().await, Err(LockError::InvalidConfig { .. })),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_url_without_a_database_is_invalid_config() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let without_db = url()
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .unwrap();
    match MysqlStore::builder().url(&without_db).build().await {
        Err(LockError::InvalidConfig { reason, .. }) => {
            assert!(reason.contains("database"), "{reason}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_refuses_connections_is_a_store_error() {
    let result = MysqlStore::builder()
        .url("mysql://root@127.0.0.1:1/test")
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await;
    assert!(
        matches!(result, Err(LockError::Store { store: "mysql", .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_store_error_not_a_hang() {
    // Accepts TCP connections and never says a word, like a stuck server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let result = MysqlStore::builder()
        .url(&format!("mysql://root@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await;
    assert!(matches!(result, Err(LockError::Store { .. })), "{result:?}");
    let message = format!(
        "{}",
        std::error::Error::source(&result.unwrap_err()).unwrap()
    );
    assert!(message.contains("timed out"), "{message}");
    // Generous: the point is "bounded", not "fast".
    assert!(started.elapsed() < Duration::from_secs(10));
    accepting.abort();
}

#[tokio::test]
async fn debug_output_hides_the_password() {
    let builder = MysqlStore::builder().url("mysql://app:s3cret-pass@127.0.0.1:1/test");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("s3cret-pass"), "{shown}");

    let table = unique("verrou_debug");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let shown = format!("{store:?}");
    assert!(shown.contains(&table), "{shown}");
    drop_table(&table).await;
}
