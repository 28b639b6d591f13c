//! The extremes of `busy_timeout`: under a millisecond (zero included) is
//! `InvalidConfig`, anything larger works, and `Duration::MAX` (anything
//! beyond SQLite's own 2^31 − 1 ms) means no limit. Never a panic, never a
//! hang.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::Connection;
use verrou_testkit::unique;

fn fresh_db(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", unique(&format!("verrou-sqlite-{name}"))))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn busy_timeouts_under_a_millisecond_are_invalid_config() {
    builders::rejects_timeouts_under_a_millisecond("busy_timeout", |timeout| {
        SqliteStore::builder()
            .in_memory()
            .busy_timeout(timeout)
            .build()
    })
    .await;
}

#[tokio::test]
async fn small_and_huge_busy_timeouts_work() {
    let path = fresh_db("busy");
    for timeout in [
        Duration::from_millis(1),
        Duration::from_millis(i32::MAX as u64),
        // 2^31 ms: used to panic inside rusqlite.
        Duration::from_millis(1 << 31),
        Duration::from_secs(1_000_000_000),
        // Used to panic computing a deadline.
        Duration::MAX,
    ] {
        let attempt = async {
            let store = SqliteStore::builder()
                .path(&path)
                .busy_timeout(timeout)
                .build()
                .await
                .unwrap_or_else(|e| panic!("{timeout:?}: {e:?}"));
            let key = format!("k{}", timeout.as_nanos());
            assert!(matches!(
                store.acquire(&key, "o", Expiry::Never).await.unwrap(),
                Acquisition::Acquired { .. }
            ));
            store.release(&key, "o").await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(30), attempt)
            .await
            .unwrap_or_else(|_| panic!("{timeout:?} hung"));
    }
    remove_db(&path);
}

/// Holds the database's write lock from another connection until told to
/// let go; returns once the lock is held.
fn hold_the_write_lock(path: &Path) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let path = path.to_owned();
    let holder = std::thread::spawn(move || {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        held_tx.send(()).unwrap();
        // Bounded: a test that fails before letting go does not leave the
        // lock held for ever.
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        conn.execute_batch("COMMIT").unwrap();
    });
    held_rx.recv().unwrap();
    (release_tx, holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_limit_a_write_waits_for_the_writer_instead_of_failing() {
    let path = fresh_db("busy-unbounded");
    let store = SqliteStore::builder()
        .path(&path)
        .busy_timeout(Duration::MAX)
        .build()
        .await
        .unwrap();
    let (release, holder) = hold_the_write_lock(&path);
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.acquire("k", "o", Expiry::Never).await }
    });
    // While the other writer holds the lock the acquire can neither succeed
    // nor, without a limit, fail: 300 ms on, it is still waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the write gave up while another held the lock"
    );
    release.send(()).unwrap();
    let acquired = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the write still waits after the writer let go")
        .unwrap()
        .unwrap();
    assert!(matches!(acquired, Acquisition::Acquired { .. }));
    holder.join().unwrap();
    drop(store);
    remove_db(&path);
}

#[tokio::test]
async fn a_short_busy_timeout_is_a_store_error_while_another_writes() {
    let path = fresh_db("busy-short");
    let store = SqliteStore::builder()
        .path(&path)
        .busy_timeout(Duration::from_millis(1))
        .build()
        .await
        .unwrap();
    let (release, holder) = hold_the_write_lock(&path);
    let result = store.acquire("k", "o", Expiry::Never).await;
    release.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        matches!(
            result,
            Err(LockError::Store {
                store: "sqlite",
                ..
            })
        ),
        "{result:?}"
    );
    drop(store);
    remove_db(&path);
}
