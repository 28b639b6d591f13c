//! The bank-transfer race across OS processes: accounts in an SQLite table,
//! each process reading a balance, sleeping, and writing it back — with or
//! without a verrou lock held in the same database file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use verrou_core::{LockFactory, RetryPolicy};
use verrou_sqlite::SqliteStore;
use verrou_sqlite::rusqlite::{self, Connection, params};

use crate::bank::transfers;

/// Every account starts with this balance.
pub const OPENING_BALANCE: i64 = 1_000;

/// How long a statement waits for another process's write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Any error of the scenario, from SQLite or verrou.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the bank's database with a busy timeout, so concurrent processes
/// queue for the write lock instead of failing.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// (Re)creates the `accounts` table in `path` with `accounts` accounts of
/// [`OPENING_BALANCE`] each.
///
/// # Errors
/// Any SQLite error.
pub fn create_accounts(path: &Path, accounts: u32) -> rusqlite::Result<()> {
    let conn = open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(
        "DROP TABLE IF EXISTS accounts;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);",
    )?;
    for id in 0..accounts {
        conn.execute(
            "INSERT INTO accounts (id, balance) VALUES (?1, ?2)",
            params![id, OPENING_BALANCE],
        )?;
    }
    Ok(())
}

/// The sum of every balance in `path`.
///
/// # Errors
/// Any SQLite error.
pub fn total(path: &Path) -> rusqlite::Result<i64> {
    open(path)?.query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))
}

/// Moves `amount` from `from` to `to` as application code often does: read
/// both balances, wait (a network call), write both back — four separate
/// statements, so two processes interleaving lose or create money.
async fn transfer(conn: &Connection, from: u32, to: u32, amount: i64) -> rusqlite::Result<()> {
    let balance = |id: u32| {
        conn.query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
    };
    let (a, b) = (balance(from)?, balance(to)?);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let write = "UPDATE accounts SET balance = ?2 WHERE id = ?1";
    conn.execute(write, params![from, a - amount])?;
    conn.execute(write, params![to, b + amount])?;
    Ok(())
}

/// What one worker process does; passed to it as one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    /// The database holding the accounts (and the locks).
    pub db: PathBuf,
    /// Whether each transfer runs under the `bank` lock.
    pub locked: bool,
    /// This worker's number, to vary which accounts it starts with.
    pub index: u32,
    /// How many accounts the bank has.
    pub accounts: u32,
    /// How many transfers this worker makes.
    pub transfers: u32,
}

impl WorkerSpec {
    /// The spec as one line: `locked|unlocked index accounts transfers path`.
    pub fn encode(&self) -> String {
        let mode = if self.locked { "locked" } else { "unlocked" };
        format!(
            "{mode} {} {} {} {}",
            self.index,
            self.accounts,
            self.transfers,
            self.db.display()
        )
    }

    /// Reads a spec written by [`encode`](Self::encode).
    ///
    /// # Errors
    /// A message saying what is malformed.
    pub fn decode(text: &str) -> Result<Self, String> {
        let mut fields = text.splitn(5, ' ');
        let mut next = |what: &str| fields.next().ok_or(format!("spec lacks {what}: {text:?}"));
        let locked = match next("the mode")? {
            "locked" => true,
            "unlocked" => false,
            other => return Err(format!("unknown mode {other:?}")),
        };
        let number = |field: &str| field.parse::<u32>().map_err(|e| format!("{field:?}: {e}"));
        Ok(WorkerSpec {
            locked,
            index: number(next("the index")?)?,
            accounts: number(next("the accounts")?)?,
            transfers: number(next("the transfers")?)?,
            db: PathBuf::from(next("the path")?),
        })
    }
}

/// Runs one worker's transfers. Each worker runs in its own process with one
/// sequential loop, so the SQLite calls of its transfers may block it.
///
/// # Errors
/// Any SQLite or lock error.
pub async fn run_worker(spec: &WorkerSpec) -> Result<(), BoxError> {
    let conn = open(&spec.db)?;
    let pairs = transfers(spec.accounts, spec.transfers + spec.accounts);
    let mine = pairs
        .iter()
        .cycle()
        .skip(spec.index as usize * 3)
        .take(spec.transfers as usize);
    if !spec.locked {
        for &(from, to) in mine {
            transfer(&conn, from, to, 10).await?;
        }
        return Ok(());
    }
    let store = SqliteStore::builder().path(&spec.db).build().await?;
    let locks = LockFactory::new(store).with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_millis(2))
            .with_timeout(Some(Duration::from_secs(120))),
    );
    let lock = locks.create_lock("bank", "10s")?;
    for &(from, to) in mine {
        lock.run(|| transfer(&conn, from, to, 10)).await??;
    }
    Ok(())
}

/// Starts one worker process per spec with `command(spec)` and waits for
/// all of them.
///
/// # Errors
/// A worker that could not start or exited with a failure, with its output.
pub fn run_processes(
    specs: &[WorkerSpec],
    mut command: impl FnMut(&WorkerSpec) -> Command,
) -> Result<(), BoxError> {
    let children: Vec<Child> = specs
        .iter()
        .map(|spec| {
            command(spec)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut failures = Vec::new();
    for child in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            failures.push(format!(
                "worker exited with {}:\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}
