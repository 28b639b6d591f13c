//! Several OS processes sharing one database file exclude each other.
//!
//! The parent test re-runs this test binary as worker processes (selecting
//! the `counter_worker` test with an environment variable). Each worker
//! increments a counter kept in a plain file — read, sleep 1 ms, write —
//! under one verrou lock. Any overlap between two holders loses an increment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use verrou_core::{LockFactory, RetryPolicy};
use verrou_sqlite::SqliteStore;
use verrou_testkit::unique;

const PROCESSES: u32 = 4;
const ROUNDS: u32 = 50;

/// Set in a worker process: `<database>\n<counter file>\n<rounds>`.
const WORKER_ENV: &str = "VERROU_SQLITE_COUNTER_WORKER";

fn fresh_path(name: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{}.{ext}",
        unique(&format!("verrou-sqlite-{name}"))
    ))
}

/// Reads `count last_token` from the counter file.
fn read_counter(path: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(path).expect("counter file");
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse::<u64>().expect("a number"));
    (fields.next().unwrap(), fields.next().unwrap())
}

/// Increments the counter `rounds` times, each under the `counter` lock.
/// Also checks, across processes, that every holder's fencing token is
/// larger than the previous holder's.
async fn increment_under_the_lock(db: &Path, counter: &Path, rounds: u32) {
    let store = SqliteStore::builder().path(db).build().await.unwrap();
    let locks = LockFactory::new(store).with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_millis(2))
            .with_timeout(Some(Duration::from_secs(120))),
    );
    let lock = locks.create_lock("counter", "30s").unwrap();
    for _ in 0..rounds {
        lock.run(|| async {
            let token = lock.fencing_token().expect("sqlite gives fencing tokens");
            let (count, last_token) = read_counter(counter);
            assert!(token > last_token, "token {token} after {last_token}");
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::fs::write(counter, format!("{} {token}", count + 1)).unwrap();
        })
        .await
        .unwrap();
    }
}

/// In a worker process: the work the parent asked for. Run on its own: the
/// same work in this one process, checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_worker() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        let mut lines = spec.lines();
        let (db, counter) = (lines.next().unwrap(), lines.next().unwrap());
        let rounds = lines.next().unwrap().parse().unwrap();
        increment_under_the_lock(Path::new(db), Path::new(counter), rounds).await;
        return;
    }
    let (db, counter) = (
        fresh_path("counter-solo", "db"),
        fresh_path("counter-solo", "txt"),
    );
    std::fs::write(&counter, "0 0").unwrap();
    increment_under_the_lock(&db, &counter, 10).await;
    assert_eq!(read_counter(&counter).0, 10);
}

#[test]
fn processes_sharing_a_database_file_never_hold_the_lock_together() {
    let (db, counter) = (fresh_path("counter", "db"), fresh_path("counter", "txt"));
    std::fs::write(&counter, "0 0").unwrap();
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{}\n{}\n{ROUNDS}", db.display(), counter.display());
    // All start at once on a database file that does not exist yet.
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "counter_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_ENV, &spec)
                // Captured, so that a failing worker's panic is shown below.
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a worker")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "worker failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (count, _) = read_counter(&counter);
    assert_eq!(count, u64::from(PROCESSES * ROUNDS), "increments were lost");
    for suffix in ["", "-wal", "-shm"] {
        let mut file = db.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_file(counter);
}
