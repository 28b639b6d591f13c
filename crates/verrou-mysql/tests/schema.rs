//! Existing tables that would merge keys or fail late are refused at `build`
//! with `InvalidConfig` naming the column or index: padded and collated key
//! types, primary keys that are not the whole key alone, other unique
//! indexes, NOT NULL columns the statements write NULL into.

mod common;

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{require_service, unique};

use common::{admin, builder, drop_table};

const OWNER: &str = "owner VARBINARY(255) NULL";
const EXPIRES: &str = "expires_at BIGINT NULL";
const TOKEN: &str = "fencing_token BIGINT UNSIGNED NOT NULL";

/// Creates `table` with `columns` (and `extra` statements about it, with
/// `{t}` standing for its quoted name), then builds a store on it.
async fn build_on(
    conn: &mut mysql_async::Conn,
    table: &str,
    columns: &[&str],
    extra: &str,
) -> Result<MysqlStore, LockError> {
    let quoted = format!("`{table}`");
    conn.query_drop(format!(
        "CREATE TABLE {quoted} ({}) ENGINE = InnoDB",
        columns.join(", ")
    ))
    .await
    .unwrap();
    if !extra.is_empty() {
        conn.query_drop(extra.replace("{t}", &quoted))
            .await
            .unwrap();
    }
    builder()
        .table_name(table)
        .create_table(false)
        .build()
        .await
}

fn assert_refused(result: Result<MysqlStore, LockError>, table: &str, needles: &[&str]) {
    let error = result.expect_err("a table of the wrong shape was accepted");
    let LockError::InvalidConfig { store, reason } = &error else {
        panic!("expected InvalidConfig, got {error:?}");
    };
    assert_eq!(*store, "mysql");
    assert!(reason.contains(table), "the table is not named: {reason}");
    for needle in needles {
        assert!(reason.contains(needle), "{needle:?} is not named: {reason}");
    }
}

#[tokio::test]
async fn padded_or_collated_key_types_are_refused() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    for key in [
        // PAD SPACE: 'k' = 'k ' under utf8mb4_bin, though it tells case apart.
        "lock_key VARCHAR(767) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY",
        // Case-insensitive, and padded.
        "lock_key VARCHAR(767) NOT NULL PRIMARY KEY",
        "lock_key CHAR(255) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL PRIMARY KEY",
        // Padded with zero bytes: a stored 'k' no longer equals the key 'k'.
        "lock_key BINARY(255) NOT NULL PRIMARY KEY",
        // Too short for the 767-byte limit.
        "lock_key VARBINARY(64) NOT NULL PRIMARY KEY",
    ] {
        let table = unique("verrou_key_type");
        let result = build_on(&mut conn, &table, &[key, OWNER, EXPIRES, TOKEN], "").await;
        assert_refused(result, &table, &["`lock_key`", "VARBINARY(767)"]);
        drop_table(&table).await;
    }
    conn.disconnect().await.ok();
}

#[tokio::test]
async fn primary_keys_other_than_the_whole_key_alone_are_refused() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    let key = "lock_key VARBINARY(767) NOT NULL";
    for (columns, extra, needles) in [
        // (lock_key, owner): used to build, and a second owner could take a
        // held key (the upsert only conflicts on the same pair).
        (
            vec![
                key,
                "owner VARBINARY(255) NOT NULL DEFAULT ''",
                EXPIRES,
                TOKEN,
                "PRIMARY KEY (lock_key, owner)",
            ],
            "",
            &[
                "`lock_key` must be the primary key",
                "PRIMARY (lock_key, owner)",
            ][..],
        ),
        // A prefix: keys sharing their first 100 bytes would be one lock.
        (
            vec![key, OWNER, EXPIRES, TOKEN, "PRIMARY KEY (lock_key(100))"],
            "",
            &[
                "`lock_key` must be the primary key",
                "PRIMARY (lock_key(100))",
            ][..],
        ),
        // A unique owner: the upsert of a second key by the same owner would
        // take over the first key's row.
        (
            vec![key, OWNER, EXPIRES, TOKEN, "PRIMARY KEY (lock_key)"],
            "CREATE UNIQUE INDEX by_owner ON {t} (owner)",
            &["unique index by_owner (owner)"][..],
        ),
        (
            vec![key, OWNER, EXPIRES, TOKEN],
            "",
            &["unique indexes found: none"][..],
        ),
    ] {
        let table = unique("verrou_pk");
        let result = build_on(&mut conn, &table, &columns, extra).await;
        assert_refused(result, &table, needles);
        drop_table(&table).await;
    }
    conn.disconnect().await.ok();
}

#[tokio::test]
async fn not_null_columns_that_the_statements_set_to_null_are_refused() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    let key = "lock_key VARBINARY(767) NOT NULL PRIMARY KEY";
    for (columns, needle) in [
        // Outside strict mode a NULL expiry would be stored as 0: a lock
        // meant to never expire would be free at once.
        (
            [key, OWNER, "expires_at BIGINT NOT NULL", TOKEN],
            "`expires_at` must allow NULL",
        ),
        (
            [key, "owner VARBINARY(255) NOT NULL", EXPIRES, TOKEN],
            "`owner` must allow NULL",
        ),
    ] {
        let table = unique("verrou_not_null");
        let result = build_on(&mut conn, &table, &columns, "").await;
        assert_refused(result, &table, &[needle]);
        drop_table(&table).await;
    }
    conn.disconnect().await.ok();
}

#[tokio::test]
async fn generated_columns_are_refused() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    // MariaDB prepares the acquire against it: only the shape check stands
    // between this table and an acquire that fails (strict mode) or keeps
    // the column's own value (otherwise).
    let table = unique("verrou_generated");
    let result = build_on(
        &mut conn,
        &table,
        &[
            "lock_key VARBINARY(767) NOT NULL PRIMARY KEY",
            OWNER,
            EXPIRES,
            "fencing_token BIGINT UNSIGNED AS (1) STORED",
        ],
        "",
    )
    .await;
    assert_refused(result, &table, &["`fencing_token`", "generated"]);
    drop_table(&table).await;
    conn.disconnect().await.ok();
}

#[tokio::test]
async fn a_table_of_an_older_version_is_accepted_and_its_tokens_keep_rising() {
    let Some(mut conn) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_old");
    // The README's migration, plus a harmless unique index that includes
    // the key, and a row whose token counted up from 1 (the previous scheme).
    let store = build_on(
        &mut conn,
        &table,
        &[
            "lock_key VARBINARY(767) NOT NULL",
            OWNER,
            EXPIRES,
            TOKEN,
            "PRIMARY KEY (lock_key)",
        ],
        "CREATE UNIQUE INDEX key_owner ON {t} (lock_key, owner)",
    )
    .await
    .unwrap();
    conn.exec_drop(
        format!("INSERT INTO `{table}` VALUES ('k', NULL, 0, 41)"),
        (),
    )
    .await
    .unwrap();
    let Acquisition::Acquired {
        fencing_token: Some(token),
    } = store.acquire("k", "o", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired");
    };
    assert!(token > 41, "{token}");
    for key in ["K", "k "] {
        assert!(matches!(
            store.acquire(key, "o", Expiry::Never).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
    }
    conn.disconnect().await.ok();
    drop_table(&table).await;
}
