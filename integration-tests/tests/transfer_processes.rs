//! The transfer race across OS processes sharing an SQLite file: under a
//! verrou `SqliteStore` lock, the total is conserved.
//!
//! The test re-runs its own binary as the worker processes, selecting the
//! `transfer_worker` test with an environment variable.

use std::path::Path;
use std::process::Command;

use verrou_integration_tests::sqlite_bank::{self, OPENING_BALANCE, WorkerSpec};

const PROCESSES: u32 = 4;
const TRANSFERS: u32 = 40;
const ACCOUNTS: u32 = 10;

/// Set in a worker process to its encoded [`WorkerSpec`].
const WORKER_ENV: &str = "VERROU_TRANSFER_WORKER";

/// In a worker process: the transfers it was given. Run on its own: one
/// locked worker alone, which must conserve the total too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_worker() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        let spec = WorkerSpec::decode(&spec).unwrap();
        sqlite_bank::run_worker(&spec).await.unwrap();
        return;
    }
    let db = fresh_db("transfer-solo");
    sqlite_bank::create_accounts(&db, ACCOUNTS).unwrap();
    let spec = WorkerSpec {
        db: db.clone(),
        locked: true,
        index: 0,
        accounts: ACCOUNTS,
        transfers: 10,
    };
    sqlite_bank::run_worker(&spec).await.unwrap();
    assert_eq!(
        sqlite_bank::total(&db).unwrap(),
        i64::from(ACCOUNTS) * OPENING_BALANCE
    );
    remove_db(&db);
}

#[test]
fn processes_under_a_sqlite_lock_conserve_the_total() {
    let db = fresh_db("transfer");
    sqlite_bank::create_accounts(&db, ACCOUNTS).unwrap();
    let specs: Vec<_> = (0..PROCESSES)
        .map(|index| WorkerSpec {
            db: db.clone(),
            locked: true,
            index,
            accounts: ACCOUNTS,
            transfers: TRANSFERS,
        })
        .collect();
    let exe = std::env::current_exe().unwrap();
    sqlite_bank::run_processes(&specs, |spec| {
        let mut command = Command::new(&exe);
        command
            .args([
                "--exact",
                "transfer_worker",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, spec.encode());
        command
    })
    .unwrap();
    assert_eq!(
        sqlite_bank::total(&db).unwrap(),
        i64::from(ACCOUNTS) * OPENING_BALANCE,
        "money was lost or created although every transfer held the lock"
    );
    remove_db(&db);
}

#[test]
fn worker_specs_round_trip() {
    let spec = WorkerSpec {
        db: "/tmp/with space/bank.db".into(),
        locked: false,
        index: 3,
        accounts: 10,
        transfers: 7,
    };
    assert_eq!(WorkerSpec::decode(&spec.encode()).unwrap(), spec);
    assert!(WorkerSpec::decode("sideways 1 2 3 /x").is_err());
}

fn fresh_db(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "verrou-{name}-{}.db",
        verrou_core::random_owner().unwrap()
    ))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
