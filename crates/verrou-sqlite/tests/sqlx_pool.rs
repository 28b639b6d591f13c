//! A store on a sqlx pool beside the store's own connections (feature
//! `sqlx`): both link the same SQLite, share one table and exclude each
//! other; the table checks and the file checks hold on the pool too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::Connection;
use verrou_sqlite::sqlx::SqlitePool;
use verrou_sqlite::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use verrou_testkit::unique;

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

fn fresh_db(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}.db",
        unique(&format!("verrou-sqlite-sqlx-{name}"))
    ))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

async fn pool_on(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("sqlx pool")
}

fn token(acquisition: Acquisition) -> u64 {
    match acquisition {
        Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("expected an acquisition with a token, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_a_sqlx_pool_and_a_native_store_exclude_each_other() {
    let path = fresh_db("exclusion");
    let native = SqliteStore::builder().path(&path).build().await.unwrap();
    let on_sqlx = SqliteStore::from_sqlx(pool_on(&path).await)
        .build()
        .await
        .unwrap();

    let first = token(native.acquire("k", "native", TTL).await.unwrap());
    assert_eq!(
        on_sqlx.acquire("k", "sqlx", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(on_sqlx.is_locked("k").await.unwrap());
    assert!(matches!(
        on_sqlx.release("k", "sqlx").await,
        Err(LockError::NotOwned { .. })
    ));
    native.release("k", "native").await.unwrap();

    let second = token(on_sqlx.acquire("k", "sqlx", TTL).await.unwrap());
    assert!(
        second > first,
        "tokens must rise across backends: {first} then {second}"
    );
    assert_eq!(
        native.acquire("k", "native", TTL).await.unwrap(),
        Acquisition::Held
    );
    on_sqlx.extend("k", "sqlx", TTL).await.unwrap();
    on_sqlx.release("k", "sqlx").await.unwrap();
    assert!(!native.is_locked("k").await.unwrap());
    let third = token(native.acquire("k", "native", TTL).await.unwrap());
    assert!(
        third > second,
        "tokens must rise across backends: {second} then {third}"
    );
    remove_db(&path);
}

#[tokio::test]
async fn a_table_of_the_wrong_shape_is_refused_on_a_sqlx_pool() {
    // The collation is what sqlx cannot report; the check reads it anyway.
    let path = fresh_db("shape");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE verrou (key TEXT COLLATE NOCASE PRIMARY KEY, owner TEXT, \
             expires_at INTEGER, fencing_token INTEGER NOT NULL)",
        )
        .unwrap();
    let refused = SqliteStore::from_sqlx(pool_on(&path).await)
        .create_table(false)
        .build()
        .await
        .expect_err("a NOCASE key was accepted");
    let LockError::InvalidConfig { reason, .. } = &refused else {
        panic!("expected InvalidConfig, got {refused:?}");
    };
    assert!(
        reason.contains("`key`") && reason.contains("NOCASE"),
        "{reason}"
    );
    remove_db(&path);
}

#[tokio::test]
async fn a_missing_table_is_a_clear_error_on_a_sqlx_pool() {
    let path = fresh_db("missing");
    let refused = SqliteStore::from_sqlx(pool_on(&path).await)
        .table_name("absent")
        .create_table(false)
        .build()
        .await
        .expect_err("a missing table was accepted");
    let LockError::InvalidConfig { reason, .. } = &refused else {
        panic!("expected InvalidConfig, got {refused:?}");
    };
    assert!(reason.contains("`absent`"), "{reason}");
    remove_db(&path);
}

#[tokio::test]
async fn an_in_memory_sqlx_pool_is_checked_and_works() {
    // `sqlite::memory:` is one shared in-memory database per pool; no other
    // connection can open it, so its table is checked on a copy.
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx_execute(
        &pool,
        "CREATE TABLE locks (key TEXT COLLATE RTRIM PRIMARY KEY, owner TEXT, \
         expires_at INTEGER, fencing_token INTEGER NOT NULL)",
    )
    .await;
    let refused = SqliteStore::from_sqlx(pool.clone())
        .table_name("locks")
        .build()
        .await
        .expect_err("an RTRIM key was accepted");
    assert!(format!("{refused:?}").contains("RTRIM"), "{refused:?}");

    let store = SqliteStore::from_sqlx(pool).build().await.unwrap();
    let first = token(store.acquire("k", "me", TTL).await.unwrap());
    assert_eq!(
        store.acquire("k", "you", TTL).await.unwrap(),
        Acquisition::Held
    );
    store.release("k", "me").await.unwrap();
    assert!(token(store.acquire("k", "you", TTL).await.unwrap()) > first);
    assert!(format!("{store:?}").contains("in-memory"), "{store:?}");
}

#[tokio::test]
async fn a_replaced_database_file_fails_calls_instead_of_splitting_the_locks() {
    let path = fresh_db("replaced");
    let store = SqliteStore::from_sqlx(pool_on(&path).await)
        .build()
        .await
        .unwrap();
    store.acquire("k", "me", TTL).await.unwrap();

    remove_db(&path);
    let error = store.acquire("k", "you", TTL).await.unwrap_err();
    assert!(matches!(error, LockError::Store { .. }), "{error:?}");

    // A new file at the same path: the pool's connections may still be on
    // the old one, so every call fails until the application rebuilds.
    Connection::open(&path).unwrap();
    let error = store.is_locked("k").await.unwrap_err();
    assert!(
        matches!(&error, LockError::Store { .. }) && format!("{error:?}").contains("replaced"),
        "{error:?}"
    );
    remove_db(&path);
}

#[tokio::test]
async fn every_builder_option_applies_to_a_sqlx_pool() {
    let path = fresh_db("options");
    let store = SqliteStore::from_sqlx(pool_on(&path).await)
        .table_name("app_locks")
        .busy_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    assert_eq!(store.table_name(), "app_locks");
    store.acquire("k", "me", TTL).await.unwrap();
    let owner: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT owner FROM app_locks WHERE key = 'k'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owner, "me");

    let bad = SqliteStore::from_sqlx(pool_on(&path).await)
        .table_name("x; DROP TABLE app_locks")
        .build()
        .await;
    assert!(
        matches!(bad, Err(LockError::InvalidConfig { .. })),
        "{bad:?}"
    );
    remove_db(&path);
}

#[tokio::test]
async fn pruning_runs_on_a_sqlx_pool() {
    let path = fresh_db("prune");
    let store = SqliteStore::from_sqlx(pool_on(&path).await)
        .build()
        .await
        .unwrap();
    store.acquire("old", "me", TTL).await.unwrap();
    store.release("old", "me").await.unwrap();
    // Age the free row past the one-second margin instead of waiting.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE verrou SET fencing_token = fencing_token - 2000000",
            [],
        )
        .unwrap();
    store.acquire("held", "me", TTL).await.unwrap();
    assert_eq!(store.prune().await.unwrap(), 1);
    assert!(store.is_locked("held").await.unwrap());
    remove_db(&path);
}

async fn sqlx_execute(pool: &SqlitePool, sql: &'static str) {
    verrou_sqlite::sqlx::query(sql).execute(pool).await.unwrap();
}
