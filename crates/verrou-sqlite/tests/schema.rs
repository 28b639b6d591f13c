//! Existing tables of the wrong shape are refused at `build` with
//! `InvalidConfig` naming the column, instead of merging keys or failing at
//! the first lock; tables of the right shape (older versions' included) work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::Connection;
use verrou_testkit::unique;

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

/// A database file no other test uses, holding the table `verrou` created
/// by `ddl`.
fn database_with(ddl: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", unique("verrou-sqlite-schema")));
    Connection::open(&path).unwrap().execute_batch(ddl).unwrap();
    path
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

async fn build(path: &Path) -> Result<SqliteStore, LockError> {
    SqliteStore::builder()
        .path(path)
        .create_table(false)
        .build()
        .await
}

/// Asserts `InvalidConfig` whose reason names every needle.
fn assert_refused(result: Result<SqliteStore, LockError>, needles: &[&str]) {
    let error = result.expect_err("a table of the wrong shape was accepted");
    let LockError::InvalidConfig { store, reason } = &error else {
        panic!("expected InvalidConfig, got {error:?}");
    };
    assert_eq!(*store, "sqlite");
    assert!(
        reason.contains("`verrou`"),
        "the table is not named: {reason}"
    );
    for needle in needles {
        assert!(reason.contains(needle), "{needle:?} is not named: {reason}");
    }
}

const REST: &str = "owner TEXT, expires_at INTEGER, fencing_token INTEGER NOT NULL";

#[tokio::test]
async fn a_case_insensitive_key_is_refused() {
    // Under NOCASE, `k` and `K` are one lock.
    let path = database_with(&format!(
        "CREATE TABLE verrou (key TEXT COLLATE NOCASE PRIMARY KEY, {REST})"
    ));
    assert_refused(build(&path).await, &["`key`", "NOCASE"]);
    remove_db(&path);
}

#[tokio::test]
async fn keys_that_sqlite_would_trim_or_convert_are_refused() {
    for (ddl, needles) in [
        // RTRIM: `k` and `k ` are one lock.
        (
            format!("CREATE TABLE verrou (key TEXT COLLATE RTRIM PRIMARY KEY, {REST})"),
            &["`key`", "RTRIM"][..],
        ),
        // INTEGER affinity: "0123" is stored as 123, the same key as "123".
        (
            format!("CREATE TABLE verrou (key INT NOT NULL PRIMARY KEY, {REST})"),
            &["`key`", "Integer affinity"][..],
        ),
        (
            format!("CREATE TABLE verrou (key NUMERIC NOT NULL PRIMARY KEY, {REST})"),
            &["`key`", "Numeric affinity"][..],
        ),
    ] {
        let path = database_with(&ddl);
        assert_refused(build(&path).await, needles);
        remove_db(&path);
    }
}

#[tokio::test]
async fn other_columns_of_the_wrong_shape_are_refused() {
    let key = "key TEXT NOT NULL PRIMARY KEY";
    for (ddl, needles) in [
        // Release writes NULL into both.
        (
            format!(
                "CREATE TABLE verrou ({key}, owner TEXT NOT NULL, expires_at INTEGER, \
                 fencing_token INTEGER NOT NULL)"
            ),
            &["`owner`", "NOT NULL"][..],
        ),
        (
            format!(
                "CREATE TABLE verrou ({key}, owner TEXT COLLATE NOCASE, expires_at INTEGER, \
                 fencing_token INTEGER NOT NULL)"
            ),
            &["`owner`", "NOCASE"][..],
        ),
        // A text expiry compares above every number: the lock would never expire.
        (
            format!(
                "CREATE TABLE verrou ({key}, owner TEXT, expires_at TEXT, \
                 fencing_token INTEGER NOT NULL)"
            ),
            &["`expires_at`", "INTEGER"][..],
        ),
        (
            format!("CREATE TABLE verrou ({key}, owner TEXT, expires_at INTEGER)"),
            &["`fencing_token`", "missing"][..],
        ),
    ] {
        let path = database_with(&ddl);
        assert_refused(build(&path).await, needles);
        remove_db(&path);
    }
}

#[tokio::test]
async fn a_table_the_statements_do_not_fit_is_invalid_config() {
    // Passes the column checks (an INTEGER token), but the acquire cannot
    // write a generated column: SQLite refuses the statement when `build`
    // prepares it, and that is the table's fault, like any other shape.
    let path = database_with(
        "CREATE TABLE verrou (key TEXT NOT NULL PRIMARY KEY, owner TEXT, expires_at INTEGER, \
         fencing_token INTEGER GENERATED ALWAYS AS (1) STORED)",
    );
    assert_refused(build(&path).await, &["generated column"]);
    remove_db(&path);
}

#[tokio::test]
async fn unique_constraints_that_do_not_fit_the_upsert_are_refused() {
    for (ddl, needles) in [
        // No unique key: used to build, then fail every acquire.
        (
            format!("CREATE TABLE verrou (key TEXT NOT NULL, {REST})"),
            &["primary key"][..],
        ),
        // Two keys differing in case would collide on this index.
        (
            format!(
                "CREATE TABLE verrou (key TEXT NOT NULL PRIMARY KEY, {REST}); \
                 CREATE UNIQUE INDEX verrou_ci ON verrou (key COLLATE NOCASE)"
            ),
            &["unique index verrou_ci"][..],
        ),
        (
            format!("CREATE TABLE verrou (key TEXT NOT NULL, {REST}, PRIMARY KEY (key, owner))"),
            &["primary key"][..],
        ),
    ] {
        let path = database_with(&ddl);
        assert_refused(build(&path).await, needles);
        remove_db(&path);
    }
}

#[tokio::test]
async fn tables_of_the_right_shape_are_accepted() {
    for ddl in [
        // What earlier versions created.
        "CREATE TABLE verrou (key TEXT NOT NULL PRIMARY KEY, owner TEXT, expires_at INTEGER, \
         fencing_token INTEGER NOT NULL) STRICT",
        "CREATE TABLE verrou (key TEXT NOT NULL PRIMARY KEY, owner TEXT, expires_at INTEGER, \
         fencing_token INTEGER NOT NULL) WITHOUT ROWID",
        // SQLite ignores the length of a VARCHAR: no key limit below 1024.
        "CREATE TABLE verrou (key VARCHAR(10) NOT NULL PRIMARY KEY, owner VARCHAR(10), \
         expires_at BIGINT, fencing_token BIGINT NOT NULL)",
        // A unique index that includes the key changes nothing.
        "CREATE TABLE verrou (key TEXT PRIMARY KEY, owner TEXT, expires_at INTEGER, \
         fencing_token INTEGER NOT NULL); CREATE UNIQUE INDEX both ON verrou (key, owner)",
    ] {
        let path = database_with(ddl);
        let store = build(&path)
            .await
            .unwrap_or_else(|e| panic!("{ddl}: {e:?}"));
        for key in ["k", "K", "k ", &"x".repeat(1024)] {
            assert!(
                matches!(
                    store.acquire(key, "o", TTL).await.unwrap(),
                    Acquisition::Acquired { .. }
                ),
                "{ddl}: {key:?} collided"
            );
        }
        drop(store);
        remove_db(&path);
    }
}

#[tokio::test]
async fn an_older_table_s_tokens_keep_rising() {
    let path = database_with(
        "CREATE TABLE verrou (key TEXT NOT NULL PRIMARY KEY, owner TEXT, expires_at INTEGER, \
         fencing_token INTEGER NOT NULL) STRICT; \
         INSERT INTO verrou VALUES ('k', NULL, NULL, 41)",
    );
    let store = build(&path).await.unwrap();
    let Acquisition::Acquired {
        fencing_token: Some(token),
    } = store.acquire("k", "o", TTL).await.unwrap()
    else {
        panic!("not acquired");
    };
    assert!(token > 41, "{token}");
    drop(store);
    remove_db(&path);
}
