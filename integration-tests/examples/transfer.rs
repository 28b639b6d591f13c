//! The bank-transfer race, without and with a verrou lock.
//!
//! `cargo run --example transfer`: tasks of one process, memory store.
//!
//! `cargo run --example transfer -- --processes 4 --sqlite /tmp/bank.db`:
//! four OS processes moving money between accounts kept in an SQLite table,
//! first without a lock, then under a lock in the same file (`SqliteStore`).
//! Options: `--transfers N` per process (default 50), `--accounts N`
//! (default 10).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use verrou_core::{LockFactory, RetryPolicy};
use verrou_integration_tests::bank::{race_with_lock, race_without_lock};
use verrou_integration_tests::sqlite_bank::{
    self, BoxError, OPENING_BALANCE, WorkerSpec, run_processes, run_worker,
};
use verrou_memory::MemoryStore;

const ACCOUNTS: u32 = 10;
const TRANSFERS: u32 = 200;

/// What the command line asks for.
enum Mode {
    InProcess,
    Processes {
        processes: u32,
        db: PathBuf,
        transfers: u32,
        accounts: u32,
    },
    /// A child started by `Processes`.
    Worker(WorkerSpec),
}

const USAGE: &str = "usage: transfer [--processes N --sqlite PATH [--transfers N] [--accounts N]]";

fn parse_args() -> Result<Mode, String> {
    let mut args = std::env::args().skip(1);
    let (mut processes, mut db, mut transfers, mut accounts) = (None, None, 50, ACCOUNTS);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        let number = |v: String| v.parse::<u32>().map_err(|e| format!("{v:?}: {e}\n{USAGE}"));
        match arg.as_str() {
            "--worker" => return WorkerSpec::decode(&value()?).map(Mode::Worker),
            "--processes" => processes = Some(number(value()?)?),
            "--sqlite" => db = Some(PathBuf::from(value()?)),
            "--transfers" => transfers = number(value()?)?,
            "--accounts" => accounts = number(value()?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    match (processes, db) {
        (None, None) => Ok(Mode::InProcess),
        (Some(processes), Some(db)) if processes > 0 && accounts > 1 => Ok(Mode::Processes {
            processes,
            db,
            transfers,
            accounts,
        }),
        _ => Err(format!(
            "--processes (at least 1) and --sqlite go together, with at least 2 accounts\n{USAGE}"
        )),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match parse_args()? {
        Mode::InProcess => in_process().await,
        Mode::Processes {
            processes,
            db,
            transfers,
            accounts,
        } => across_processes(processes, &db, transfers, accounts),
        Mode::Worker(spec) => run_worker(&spec).await,
    }
}

async fn in_process() -> Result<(), BoxError> {
    let expected = i64::from(ACCOUNTS) * 1_000;

    let bank = race_without_lock(ACCOUNTS, TRANSFERS).await;
    let total = bank.total();
    println!(
        "without a lock: total {total} (expected {expected}): {} lost or created",
        (expected - total).abs()
    );

    let locks = LockFactory::new(MemoryStore::new())
        .with_retry(RetryPolicy::default().with_timeout(Some(Duration::from_secs(60))));
    let bank = race_with_lock(&locks, ACCOUNTS, TRANSFERS).await?;
    let total = bank.total();
    println!(
        "with verrou (memory store): total {total} (expected {expected}): conserved = {}",
        total == expected
    );
    if total != expected {
        return Err("the lock did not protect the transfers".into());
    }
    Ok(())
}

/// Runs the race twice with `processes` copies of this program as workers.
fn across_processes(
    processes: u32,
    db: &std::path::Path,
    transfers: u32,
    accounts: u32,
) -> Result<(), BoxError> {
    let expected = i64::from(accounts) * OPENING_BALANCE;
    let exe = std::env::current_exe()?;
    for locked in [false, true] {
        sqlite_bank::create_accounts(db, accounts)?;
        let specs: Vec<_> = (0..processes)
            .map(|index| WorkerSpec {
                db: db.to_owned(),
                locked,
                index,
                accounts,
                transfers,
            })
            .collect();
        run_processes(&specs, |spec| {
            let mut command = Command::new(&exe);
            command.arg("--worker").arg(spec.encode());
            command
        })?;
        let total = sqlite_bank::total(db)?;
        if locked {
            println!(
                "with verrou (sqlite store, {processes} processes): total {total} \
                 (expected {expected}): conserved = {}",
                total == expected
            );
            if total != expected {
                return Err("the lock did not protect the transfers".into());
            }
        } else {
            println!(
                "without a lock ({processes} processes): total {total} (expected {expected}): \
                 {} lost or created",
                (expected - total).abs()
            );
        }
    }
    Ok(())
}
