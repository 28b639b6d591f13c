//! The SQLite store's own behaviour beyond the conformance suite: options,
//! schema checks, concurrent first use, keys, and a database that goes away.
//! The checks every store's builder passes come from
//! `verrou_conformance::builders` (the connection ones do not apply: there is
//! no server).

use std::path::{Path, PathBuf};
use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockFactory, LockStore};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::Connection;
use verrou_testkit::unique;

/// A database file path no other test or run uses.
fn fresh_db(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", unique(&format!("verrou-sqlite-{name}"))))
}

/// Deletes the database and its WAL and shared-memory files.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn token(acquisition: Acquisition) -> u64 {
    match acquisition {
        Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("expected an acquisition with a token, got {other:?}"),
    }
}

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

#[tokio::test]
async fn a_custom_table_name_holds_the_locks() {
    let path = fresh_db("custom-table");
    let store = SqliteStore::builder()
        .path(&path)
        .table_name("app_locks")
        .build()
        .await
        .unwrap();
    assert_eq!(store.table_name(), "app_locks");
    token(store.acquire("job", "me", TTL).await.unwrap());

    let conn = Connection::open(&path).unwrap();
    let owner: String = conn
        .query_row("SELECT owner FROM app_locks WHERE key = 'job'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owner, "me");
    let default_table: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'verrou'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(default_table, 0, "the default table was created too");
    store.release("job", "me").await.unwrap();
    drop((store, conn));
    remove_db(&path);
}

#[tokio::test]
async fn without_create_table_a_missing_table_is_a_clear_error() {
    let path = fresh_db("no-auto-create");
    let error = SqliteStore::builder()
        .path(&path)
        .table_name("missing_locks")
        .create_table(false)
        .build()
        .await
        .unwrap_err();
    let LockError::InvalidConfig { store, reason } = &error else {
        panic!("expected InvalidConfig, got {error:?}");
    };
    assert_eq!(*store, "sqlite");
    assert!(reason.contains("missing_locks"), "{reason}");
    assert!(reason.contains("create_table"), "{reason}");

    // Once the table exists (created by a store that may), it is accepted.
    SqliteStore::builder()
        .path(&path)
        .table_name("missing_locks")
        .build()
        .await
        .unwrap();
    let store = SqliteStore::builder()
        .path(&path)
        .table_name("missing_locks")
        .create_table(false)
        .build()
        .await
        .unwrap();
    token(store.acquire("k", "o", TTL).await.unwrap());
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn a_table_without_the_store_s_columns_is_refused() {
    let path = fresh_db("wrong-columns");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE verrou (key TEXT PRIMARY KEY, holder TEXT)")
        .unwrap();
    let error = SqliteStore::builder()
        .path(&path)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LockError::InvalidConfig { reason, .. } if reason.contains("verrou")),
        "{error:?}"
    );
    remove_db(&path);
}

#[tokio::test]
async fn hostile_table_names_are_invalid_config_and_touch_nothing() {
    let path = fresh_db("hostile");
    let build = |name: String| SqliteStore::builder().path(&path).table_name(name).build();
    builders::rejects_table_names(builders::BAD_TABLE_NAMES, build).await;
    builders::rejects_table_names(builders::BAD_SQL_TABLE_NAMES, build).await;
    assert!(!path.exists(), "a refused configuration created the file");
    // The longest valid name is fine.
    let store = SqliteStore::builder()
        .path(&path)
        .table_name("a".repeat(63))
        .build()
        .await
        .unwrap();
    token(store.acquire("k", "o", TTL).await.unwrap());
    drop(store);
    remove_db(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_stores_opening_a_new_file_at_once_all_work_and_exclude_each_other() {
    let path = fresh_db("first-use");
    let builds: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::builder().path(path).build().await })
        })
        .collect();
    let mut stores = Vec::new();
    for build in builds {
        stores.push(build.await.unwrap().expect("concurrent first use failed"));
    }
    let saves: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move { store.acquire("shared", &format!("owner{i}"), TTL).await })
        })
        .collect();
    let mut acquired = 0;
    for save in saves {
        if let Acquisition::Acquired { .. } = save.await.unwrap().unwrap() {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 1, "exactly one of the eight stores gets the lock");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop((stores, conn));
    remove_db(&path);
}

#[tokio::test]
async fn keys_up_to_1024_bytes_work_and_longer_ones_are_invalid() {
    let path = fresh_db("keys");
    let store = SqliteStore::builder().path(&path).build().await.unwrap();
    assert_eq!(store.max_key_bytes(), 1024);
    let at_limit = "k".repeat(1024);
    let over = "k".repeat(1025);
    token(store.acquire(&at_limit, "o", TTL).await.unwrap());
    assert!(store.is_locked(&at_limit).await.unwrap());
    assert!(!store.is_locked(&at_limit[..1023]).await.unwrap());
    store.extend(&at_limit, "o", TTL).await.unwrap();
    store.release(&at_limit, "o").await.unwrap();

    // The handle checks keys against the store's limit, so a longer one is
    // refused before the store is asked anything.
    let locks = LockFactory::new(store.clone());
    assert!(matches!(
        locks.create_lock(over.as_str(), "30s"),
        Err(LockError::InvalidKey { .. })
    ));
    // Nothing reached the table.
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM verrou WHERE length(key) > 1024",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn fencing_tokens_keep_growing_across_store_instances() {
    let path = fresh_db("tokens");
    let first = SqliteStore::builder().path(&path).build().await.unwrap();
    let t1 = token(first.acquire("k", "a", TTL).await.unwrap());
    first.force_release("k").await.unwrap();
    drop(first);
    let second = SqliteStore::builder().path(&path).build().await.unwrap();
    let t2 = token(second.acquire("k", "b", TTL).await.unwrap());
    assert!(t2 > t1, "{t2} <= {t1}");
    drop(second);
    remove_db(&path);
}

#[tokio::test]
async fn expiry_is_stored_in_milliseconds_from_sqlite_s_clock() {
    let path = fresh_db("clock");
    let store = SqliteStore::builder().path(&path).build().await.unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    store
        .acquire("k", "o", Expiry::After(Duration::from_millis(1500)))
        .await
        .unwrap();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let expires_at: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT expires_at FROM verrou WHERE key = 'k'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let expires_at = u128::try_from(expires_at).unwrap();
    // Same machine, same clock: the expiry is "now + 1.5 s" to the millisecond.
    assert!(
        (before + 1500..=after + 1501).contains(&expires_at),
        "{before} {expires_at} {after}"
    );
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn in_memory_and_caller_connections_work() {
    let memory = SqliteStore::open_in_memory().await.unwrap();
    let t1 = token(memory.acquire("k", "a", TTL).await.unwrap());
    assert_eq!(
        memory.acquire("k", "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    memory.release("k", "a").await.unwrap();
    assert!(token(memory.acquire("k", "b", TTL).await.unwrap()) > t1);
    // Another in-memory store is another database.
    let other = SqliteStore::open_in_memory().await.unwrap();
    assert!(!other.is_locked("k").await.unwrap());

    // A caller's connection to a file sees the same locks as a path store.
    let path = fresh_db("from-connection");
    let by_path = SqliteStore::builder().path(&path).build().await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let reused = SqliteStore::from_connection(conn).build().await.unwrap();
    token(by_path.acquire("shared", "a", TTL).await.unwrap());
    assert_eq!(
        reused.acquire("shared", "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(matches!(
        reused.release("shared", "b").await,
        Err(LockError::NotOwned { .. })
    ));
    reused.release("shared", "a").await.unwrap();
    assert!(!by_path.is_locked("shared").await.unwrap());
    drop((by_path, reused));
    remove_db(&path);
}

#[tokio::test]
async fn a_deleted_database_file_is_a_store_error_not_a_panic() {
    let path = fresh_db("deleted");
    let store = SqliteStore::builder().path(&path).build().await.unwrap();
    token(store.acquire("k", "o", TTL).await.unwrap());
    remove_db(&path);
    // The open connection notices that its file is gone; later calls reopen
    // the path, which no longer exists and is not silently recreated.
    for _ in 0..3 {
        let error = store.acquire("k2", "o", TTL).await.unwrap_err();
        assert!(
            matches!(
                error,
                LockError::Store {
                    store: "sqlite",
                    ..
                }
            ),
            "{error:?}"
        );
    }
    assert!(matches!(
        store.is_locked("k").await,
        Err(LockError::Store { .. })
    ));
    assert!(!path.exists(), "the store recreated a deleted database");
}

#[tokio::test]
async fn a_path_in_a_missing_directory_is_a_store_error() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(unique("no-such-dir"))
        .join("locks.db");
    let error = SqliteStore::builder()
        .path(&path)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LockError::Store {
                store: "sqlite",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn from_connection_is_a_builder_with_every_option() {
    let path = fresh_db("from-connection-builder");
    let conn = Connection::open(&path).unwrap();
    let store = SqliteStore::from_connection(conn)
        .table_name("app_locks")
        .build()
        .await
        .unwrap();
    assert_eq!(store.table_name(), "app_locks");
    token(store.acquire("k", "o", TTL).await.unwrap());
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM app_locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn a_zero_pool_is_invalid_config() {
    let path = fresh_db("zero-pool");
    let error = SqliteStore::builder()
        .path(&path)
        .max_connections(0)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LockError::InvalidConfig { reason, .. } if reason.contains("max_connections")),
        "{error:?}"
    );
    assert!(!path.exists(), "a refused configuration created the file");
}

#[tokio::test]
async fn a_builder_without_a_database_is_invalid_config() {
    let error = SqliteStore::builder().build().await.unwrap_err();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn debug_shows_the_path_and_table() {
    let path = fresh_db("debug");
    let store = SqliteStore::builder().path(&path).build().await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains("verrou-sqlite-debug"), "{shown}");
    assert!(shown.contains("table"), "{shown}");
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn a_replaced_database_file_is_followed_not_split() {
    let path = fresh_db("replaced");
    let old = SqliteStore::builder().path(&path).build().await.unwrap();
    token(old.acquire("k", "old", TTL).await.unwrap());
    remove_db(&path);
    // A new process creates a fresh database at the same path and locks in it.
    let new = SqliteStore::builder().path(&path).build().await.unwrap();
    token(new.acquire("k", "new", TTL).await.unwrap());
    // The old store must see the new file's lock, not keep locking in the
    // deleted file where its own lock still looks held.
    assert_eq!(
        old.acquire("k", "old-again", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(matches!(
        old.release("k", "old").await,
        Err(LockError::NotOwned { .. })
    ));
    new.release("k", "new").await.unwrap();
    token(old.acquire("k", "old", TTL).await.unwrap());
    drop((old, new));
    remove_db(&path);
}

#[tokio::test]
async fn memory_and_empty_paths_are_refused_in_favour_of_in_memory() {
    for path in ["", ":memory:"] {
        let error = SqliteStore::builder().path(path).build().await.unwrap_err();
        assert!(
            matches!(&error, LockError::InvalidConfig { reason, .. } if reason.contains("in_memory")),
            "{path:?}: {error:?}"
        );
    }
}
