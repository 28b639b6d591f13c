//! Builder options: table names, creating (or not) the table, checking its
//! shape, unusable configurations and unreachable servers. The checks every
//! store's builder passes come from `verrou_conformance::builders`; the rest
//! is MySQL's own.

mod common;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockFactory, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{Service, require_service, unique};

use common::{admin, builder, drop_table, store_on};

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
async fn a_missing_table_without_create_table_is_a_clear_error() {
    let table = unique("verrou_missing");
    let result = builder()
        .table_name(&table)
        .create_table(false)
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
            assert!(reason.contains("create_table"), "{reason}");
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
async fn an_existing_table_works_without_create_table() {
    let table = unique("verrou_premade");
    let Some(first) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    first.acquire("k", "a", TTL).await.unwrap();
    let second = builder()
        .table_name(&table)
        .create_table(false)
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
    // An unreachable URL: a name must be refused before anything is sent.
    let build = |name: String| {
        MysqlStore::builder()
            .url("mysql://root@127.0.0.1:1/test")
            .table_name(name)
            .build()
    };
    builders::rejects_table_names(builders::BAD_TABLE_NAMES, build).await;
    builders::rejects_table_names(builders::BAD_SQL_TABLE_NAMES, build).await;
    // MySQL quotes with backquotes: one in the name must not close them.
    builders::rejects_table_names(&["verrou` (x INT); --", "test.verrou"], build).await;
}

#[tokio::test]
async fn keys_at_the_limit_fit_and_long_owners_are_refused() {
    let table = unique("verrou_keys");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let max = store.max_key_bytes();
    assert!(max >= 255);
    // Multi-byte characters: the limit is in bytes, and a key right at it
    // fits the column.
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
    // One byte more is refused by the handle, which checks keys against the
    // store's limit before any SQL is sent.
    let locks = LockFactory::new(store.clone());
    assert!(matches!(
        locks.create_lock(format!("{at_limit}x"), "30s"),
        Err(LockError::InvalidKey { .. })
    ));
    // An owner the column cannot hold is refused by the store itself (never
    // truncated into another owner's prefix).
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
            MysqlStore::builder()
                .url(&Service::Mysql.url())
                .max_connections(0),
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
    let without_db = Service::Mysql
        .url()
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
    builders::a_refused_connection_is_a_store_error(|address| {
        MysqlStore::builder()
            .url(&format!("mysql://root@{address}/test"))
            .connect_timeout(Duration::from_secs(5))
            .build()
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_store_error_not_a_hang() {
    builders::a_silent_server_is_a_store_error(|address| async move {
        let result = MysqlStore::builder()
            .url(&format!("mysql://root@{address}/test"))
            .connect_timeout(Duration::from_millis(300))
            .build()
            .await;
        // Ended by the connect timeout, not by anything else.
        if let Err(error) = &result {
            let source = std::error::Error::source(error).map(ToString::to_string);
            assert!(
                source.as_deref().is_some_and(|s| s.contains("timed out")),
                "{error:?}"
            );
        }
        result
    })
    .await;
}

#[tokio::test]
async fn connect_is_the_builder_with_a_url() {
    let Some(store) = require_service("mysql", MysqlStore::connect(&Service::Mysql.url()).await)
    else {
        return;
    };
    assert_eq!(store.table_name(), "verrou");
    let lock = LockFactory::new(store)
        .create_lock(unique("verrou_connect"), "30s")
        .unwrap();
    lock.acquire().await.unwrap();
    lock.release().await.unwrap();
    let error = MysqlStore::connect("postgres://localhost/test")
        .await
        .unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn config_takes_the_driver_s_own_settings() {
    let Ok(opts) = mysql_async::Opts::from_url(&Service::Mysql.url()) else {
        panic!("the test server's URL does not parse");
    };
    let table = unique("verrou_config");
    let built = MysqlStore::builder()
        .config(mysql_async::OptsBuilder::from_opts(opts))
        .table_name(&table)
        .max_connections(1)
        .build()
        .await;
    let Some(store) = require_service("mysql", built) else {
        return;
    };
    assert!(matches!(
        store.acquire("k", "o", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    drop_table(&table).await;
}

#[tokio::test]
async fn debug_output_hides_the_password() {
    let builder = MysqlStore::builder().url("mysql://app:s3cret-pass@127.0.0.1:1/test");
    builders::debug_hides(&builder, "s3cret-pass");
    let opts = mysql_async::OptsBuilder::default().pass(Some("s3cret-pass"));
    builders::debug_hides(&MysqlStore::builder().config(opts), "s3cret-pass");

    let table = unique("verrou_debug");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let shown = format!("{store:?}");
    assert!(shown.contains(&table), "{shown}");
    drop_table(&table).await;
}

/// `statements()` is what the store runs, parameters as documented: the
/// acquire issued bare on the driver grants a lock the store then sees and
/// releases, and the release issued bare frees it.
#[tokio::test]
async fn the_public_statements_are_the_ones_the_store_runs() {
    let Some(store) = require_service(
        "mysql",
        MysqlStore::builder()
            .url(&Service::Mysql.url())
            .max_connections(2)
            .build()
            .await,
    ) else {
        return;
    };
    let sql = store.statements();
    assert!(sql.acquire.contains("`verrou`"), "{}", sql.acquire);
    let mut conn = store.pool().expect("own pool").get_conn().await.unwrap();
    let key = unique("bare");
    let ttl: Option<i64> = Some(5_000);
    conn.exec_drop(&sql.acquire, (&key, "bare-owner", ttl, "bare-owner", ttl))
        .await
        .unwrap();
    assert!(conn.last_insert_id().unwrap_or(0) > 0, "no token");
    assert!(store.is_locked(&key).await.unwrap());
    assert_eq!(
        store.acquire(&key, "other", Expiry::Never).await.unwrap(),
        Acquisition::Held
    );
    conn.exec_drop(&sql.release, (&key, "bare-owner"))
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    assert!(!store.is_locked(&key).await.unwrap());
}
