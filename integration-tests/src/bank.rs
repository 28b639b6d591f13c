//! The bank-transfer race: concurrent transfers between accounts, with an
//! `await` between reading the payer's balance and writing it back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verrou_core::{LockError, LockFactory};

/// Accounts held in memory; each read and write is a separate step, like a
/// database row read and updated by application code.
#[derive(Debug, Clone)]
pub struct Bank {
    balances: Arc<Mutex<HashMap<u32, i64>>>,
}

impl Bank {
    /// `accounts` accounts with `balance` each.
    pub fn new(accounts: u32, balance: i64) -> Self {
        Bank {
            balances: Arc::new(Mutex::new((0..accounts).map(|a| (a, balance)).collect())),
        }
    }

    /// The sum of every balance.
    pub fn total(&self) -> i64 {
        self.lock().values().sum()
    }

    fn read(&self, account: u32) -> i64 {
        self.lock()[&account]
    }

    fn write(&self, account: u32, balance: i64) {
        self.lock().insert(account, balance);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, i64>> {
        self.balances.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves `amount` from `from` to `to`: read the payer's balance, wait (as
    /// a funds check over the network would), write it back debited, then
    /// credit the payee in one step (`balance = balance + amount`). Racy
    /// unless the caller holds a lock.
    ///
    /// Only the debit can be lost, and (see [`payments`]) a payer is never
    /// paid, so no credit is overwritten by a stale debit: an unlocked race
    /// only ever creates money. Had lost updates of both signs been
    /// possible, they could cancel out and a racy run show the right total.
    pub async fn transfer(&self, from: u32, to: u32, amount: i64) {
        let balance = self.read(from);
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.write(from, balance - amount);
        *self.lock().entry(to).or_default() += amount;
    }
}

/// Which transfers run: `(from, to)` pairs cycling over `accounts`.
pub fn transfers(accounts: u32, count: u32) -> Vec<(u32, u32)> {
    (0..count)
        .map(|i| (i % accounts, (i * 7 + 1) % accounts))
        .filter(|(a, b)| a != b)
        .collect()
}

/// The transfers both races run: the first half of the accounts (payers)
/// pay the second half (payees), cycling, so that each payer has many
/// concurrent debits. Needs at least 2 accounts.
pub fn payments(accounts: u32, count: u32) -> Vec<(u32, u32)> {
    let payers = accounts / 2;
    let payees = accounts - payers;
    (0..count)
        .map(|i| (i % payers, payers + (i * 7 + 1) % payees))
        .collect()
}

/// Runs `count` transfers concurrently without any lock; returns the bank.
pub async fn race_without_lock(accounts: u32, count: u32) -> Bank {
    let bank = Bank::new(accounts, 1_000);
    let tasks: Vec<_> = payments(accounts, count)
        .into_iter()
        .map(|(from, to)| {
            let bank = bank.clone();
            tokio::spawn(async move { bank.transfer(from, to, 10).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    bank
}

/// Runs the same transfers, each under one global `bank` lock from `locks`.
///
/// # Errors
/// The first lock error any transfer met.
pub async fn race_with_lock(
    locks: &LockFactory,
    accounts: u32,
    count: u32,
) -> Result<Bank, LockError> {
    let bank = Bank::new(accounts, 1_000);
    let tasks: Vec<_> = payments(accounts, count)
        .into_iter()
        .map(|(from, to)| {
            let bank = bank.clone();
            let lock = locks.create_lock("bank", "10s");
            tokio::spawn(async move { lock?.run(|| bank.transfer(from, to, 10)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("transfer task panicked")?;
    }
    Ok(bank)
}
