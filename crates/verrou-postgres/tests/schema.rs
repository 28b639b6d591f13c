//! Existing tables of the wrong shape are refused at `build` with
//! `InvalidConfig` naming the column, instead of merging keys or failing at
//! the first lock; tables of the right shape (older versions' included) work.

mod common;

use verrou_core::{Acquisition, Expiry, LockError, LockFactory, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::tokio_postgres::Client;
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

const OWNER: &str = "owner         text";
const EXPIRES: &str = "expires_at    timestamptz";
const TOKEN: &str = "fencing_token bigint NOT NULL";

/// Creates a table with `columns` (and `extra` statements about it, with
/// `{t}` standing for its quoted name), then builds a store on it without
/// letting the store create anything.
async fn build_on(
    admin: &Client,
    table: &str,
    columns: &[&str],
    extra: &str,
) -> Result<PostgresStore, LockError> {
    let quoted = format!("\"{table}\"");
    admin
        .batch_execute(&format!(
            "CREATE TABLE {quoted} ({});{}",
            columns.join(", "),
            extra.replace("{t}", &quoted)
        ))
        .await
        .unwrap();
    PostgresStore::builder()
        .url(&Service::Postgres.url())
        .table_name(table)
        .create_table(false)
        .max_connections(2)
        .build()
        .await
}

/// Asserts `InvalidConfig` whose reason names the table and every needle.
fn assert_refused(result: Result<PostgresStore, LockError>, table: &str, needles: &[&str]) {
    let error = result.expect_err("a table of the wrong shape was accepted");
    let LockError::InvalidConfig { store, reason } = &error else {
        panic!("expected InvalidConfig, got {error:?}");
    };
    assert_eq!(*store, "postgres");
    assert!(reason.contains(table), "the table is not named: {reason}");
    for needle in needles {
        assert!(reason.contains(needle), "{needle:?} is not named: {reason}");
    }
}

#[tokio::test]
async fn a_blank_padded_key_is_refused() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_char_key");
    // Under char(n), 'k' and 'k ' are one value: two keys would be one lock.
    let result = build_on(
        &admin,
        &table,
        &["key char(1024) PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "",
    )
    .await;
    assert_refused(result, &table, &["`key`", "blank-padded"]);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_non_deterministic_key_collation_is_refused() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let icu: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_collation WHERE collprovider = 'i'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    if icu == 0 {
        // Only an ICU-enabled server can create a non-deterministic collation.
        eprintln!("SKIPPED: this PostgreSQL has no ICU collations");
        return;
    }
    // Level 2 strength: case is ignored, so 'k' = 'K'. Shared by every run
    // (collations are per database); creating it twice is harmless.
    let created = admin
        .batch_execute(
            "CREATE COLLATION IF NOT EXISTS verrou_test_case_insensitive \
             (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
        )
        .await;
    if let Err(error) = created {
        // Two runs creating it at once: one of them reports the race.
        assert!(
            error.to_string().contains("already exists"),
            "cannot create the collation: {error}"
        );
    }
    let equal: bool = admin
        .query_one("SELECT 'k' = 'K' COLLATE verrou_test_case_insensitive", &[])
        .await
        .unwrap()
        .get(0);
    assert!(equal, "the collation does not ignore case");

    let table = unique("verrou_ci_key");
    let result = build_on(
        &admin,
        &table,
        &[
            "key text COLLATE verrou_test_case_insensitive PRIMARY KEY",
            OWNER,
            EXPIRES,
            TOKEN,
        ],
        "",
    )
    .await;
    assert_refused(
        result,
        &table,
        &["`key`", "verrou_test_case_insensitive", "non-deterministic"],
    );
    drop_table(&admin, &table).await;

    // The same collation on the owner would let one owner release another's
    // lock; on a unique index of its own, it would make `k` and `K` collide.
    let table = unique("verrou_ci_owner");
    let result = build_on(
        &admin,
        &table,
        &[
            "key text COLLATE \"C\" PRIMARY KEY",
            "owner text COLLATE verrou_test_case_insensitive",
            EXPIRES,
            TOKEN,
        ],
        "",
    )
    .await;
    assert_refused(result, &table, &["`owner`", "non-deterministic"]);
    drop_table(&admin, &table).await;

    let table = unique("verrou_ci_index");
    let result = build_on(
        &admin,
        &table,
        &["key text COLLATE \"C\" PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "CREATE UNIQUE INDEX ON {t} (key COLLATE verrou_test_case_insensitive);",
    )
    .await;
    assert_refused(result, &table, &["unique index", "`key`"]);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_deterministic_collation_other_than_c_is_accepted_and_keeps_keys_apart() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // Deterministic collations break ties byte by byte: `=` stays byte
    // equality whatever the sort order. "POSIX" exists on every server.
    let table = unique("verrou_posix_key");
    let store = build_on(
        &admin,
        &table,
        &[
            "key text COLLATE \"POSIX\" PRIMARY KEY",
            OWNER,
            EXPIRES,
            TOKEN,
        ],
        "",
    )
    .await
    .unwrap();
    for key in ["k", "K", "k "] {
        assert!(
            matches!(
                store.acquire(key, "o", Expiry::Never).await.unwrap(),
                Acquisition::Acquired { .. }
            ),
            "{key:?} collided"
        );
    }
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_short_varchar_key_is_refused_and_a_long_one_sets_the_key_limit() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // varchar(64): a 204-byte key used to be a late `Store` error ("value
    // too long"); every store must take keys of 255 bytes, so it is refused.
    let table = unique("verrou_varchar64");
    let result = build_on(
        &admin,
        &table,
        &["key varchar(64) PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "",
    )
    .await;
    assert_refused(result, &table, &["`key`", "character varying(64)", "255"]);
    drop_table(&admin, &table).await;

    // varchar(300) holds 300 characters, so every key of up to 300 bytes.
    let table = unique("verrou_varchar300");
    let store = build_on(
        &admin,
        &table,
        &["key varchar(300) PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "",
    )
    .await
    .unwrap();
    assert_eq!(store.max_key_bytes(), 300);
    let at_limit = "k".repeat(300);
    assert!(matches!(
        store.acquire(&at_limit, "o", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    // 301 bytes, and 300 characters of 2 bytes: the handle, which checks
    // keys against the table's limit, refuses both with `InvalidKey` before
    // any SQL runs, never the server's "value too long".
    let locks = LockFactory::new(store);
    for key in ["k".repeat(301), "é".repeat(300), "k".repeat(1024)] {
        assert!(
            matches!(
                locks.create_lock(key.as_str(), "30s"),
                Err(LockError::InvalidKey { .. })
            ),
            "{} bytes",
            key.len()
        );
    }
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn columns_of_the_wrong_type_are_refused() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let key = "key text COLLATE \"C\" PRIMARY KEY";
    let cases: [(&[&str], &[&str]); 6] = [
        // Used to build, then fail every call with a type error.
        (&[key, "owner int", EXPIRES, TOKEN], &["`owner`", "integer"]),
        // Release writes NULL into both.
        (
            &[key, "owner text NOT NULL", EXPIRES, TOKEN],
            &["`owner`", "NOT NULL"],
        ),
        // Read through each session's time zone.
        (
            &[key, OWNER, "expires_at timestamp", TOKEN],
            &["`expires_at`", "timestamp without time zone"],
        ),
        // Rounded to whole seconds: a lease could end before its TTL.
        (
            &[key, OWNER, "expires_at timestamptz(0)", TOKEN],
            &["`expires_at`", "timestamp(0) with time zone"],
        ),
        // Tokens are microseconds of the server clock.
        (
            &[key, OWNER, EXPIRES, "fencing_token int NOT NULL"],
            &["`fencing_token`", "integer"],
        ),
        (&["key text", OWNER, EXPIRES, TOKEN], &["primary key"]),
    ];
    for (columns, needles) in cases {
        let table = unique("verrou_wrong_type");
        let result = build_on(&admin, &table, columns, "").await;
        assert_refused(result, &table, needles);
        drop_table(&admin, &table).await;
    }
}

#[tokio::test]
async fn unique_constraints_that_do_not_fit_the_upsert_are_refused() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // (key, owner) unique: the same key under two owners would be two rows,
    // two holders. (Used to be a `Store` error from preparing the upsert.)
    let table = unique("verrou_composite");
    let result = build_on(
        &admin,
        &table,
        &[
            "key text COLLATE \"C\"",
            OWNER,
            EXPIRES,
            TOKEN,
            "PRIMARY KEY (key, owner)",
        ],
        "",
    )
    .await;
    assert_refused(result, &table, &["primary key"]);
    drop_table(&admin, &table).await;

    // A unique owner: one owner holding two keys would fail the second acquire.
    let table = unique("verrou_unique_owner");
    let result = build_on(
        &admin,
        &table,
        &["key text COLLATE \"C\" PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "CREATE UNIQUE INDEX verrou_unique_owner_idx ON {t} (owner);",
    )
    .await;
    assert_refused(result, &table, &["unique index", "verrou_unique_owner_idx"]);
    drop_table(&admin, &table).await;

    // A unique index that includes the key is harmless.
    let table = unique("verrou_extra_unique");
    build_on(
        &admin,
        &table,
        &["key text COLLATE \"C\" PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "CREATE UNIQUE INDEX ON {t} (key, owner);",
    )
    .await
    .unwrap();
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_table_the_statements_do_not_fit_is_invalid_config() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // Passes the column checks (a bigint token), but the acquire cannot
    // write a generated column: the server refuses the statement when `build`
    // prepares it, and that is the table's fault, not the server's.
    let table = unique("verrou_generated");
    let result = build_on(
        &admin,
        &table,
        &[
            "key text COLLATE \"C\" PRIMARY KEY",
            OWNER,
            EXPIRES,
            "fencing_token bigint GENERATED ALWAYS AS (1) STORED",
        ],
        "",
    )
    .await;
    assert_refused(result, &table, &["fencing_token", "generated column"]);
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn a_table_of_an_older_version_is_accepted_and_its_tokens_keep_rising() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    // The migration of earlier READMEs, with a key whose token counted up
    // from 1 (the previous scheme).
    let table = unique("verrou_old");
    let store = build_on(
        &admin,
        &table,
        &["key text COLLATE \"C\" PRIMARY KEY", OWNER, EXPIRES, TOKEN],
        "INSERT INTO {t} VALUES ('k', NULL, NULL, 41);",
    )
    .await
    .unwrap();
    assert_eq!(store.max_key_bytes(), 1024);
    let Acquisition::Acquired {
        fencing_token: Some(token),
    } = store.acquire("k", "o", Expiry::Never).await.unwrap()
    else {
        panic!("not acquired");
    };
    assert!(token > 41, "{token}");
    drop_table(&admin, &table).await;
}
