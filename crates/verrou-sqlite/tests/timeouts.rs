//! The extremes of `busy_timeout`: zero is "never wait", under a millisecond
//! is `InvalidConfig`, anything above SQLite's 2^31 − 1 ms is clamped to it.
//! Never a panic, never a hang.

use std::path::Path;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore, random_owner};
use verrou_sqlite::SqliteStore;

#[tokio::test]
async fn busy_timeouts_under_a_millisecond_are_invalid_config() {
    for timeout in [Duration::from_nanos(1), Duration::from_micros(999)] {
        let error = SqliteStore::builder()
            .in_memory()
            .busy_timeout(timeout)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, LockError::InvalidConfig { reason, .. } if reason.contains("busy_timeout")),
            "{timeout:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn zero_and_huge_busy_timeouts_work() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("verrou-sqlite-busy-{}.db", random_owner().unwrap()));
    for timeout in [
        Duration::ZERO,
        Duration::from_millis(1),
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
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
