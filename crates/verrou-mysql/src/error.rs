//! Turning driver failures into [`LockError::Store`], and the few server
//! errors the store treats specially.

use verrou_core::LockError;

/// The store name carried by every error of this crate.
pub(crate) const STORE: &str = "mysql";

/// `ER_LOCK_DEADLOCK`: InnoDB chose this statement as a deadlock victim and
/// rolled it back entirely, so running it again is safe.
pub(crate) const ER_LOCK_DEADLOCK: u16 = 1213;

/// A driver error as [`LockError::Store`].
pub(crate) fn store_error(error: mysql_async::Error) -> LockError {
    LockError::store(STORE, error)
}

/// Whether `error` says the statement was rolled back as a deadlock victim.
///
/// Concurrent upserts of one new key can deadlock inside InnoDB (each holds a
/// shared lock on the duplicate entry and waits to upgrade it). The statement
/// had no effect, so the store retries it instead of failing the caller.
pub(crate) fn is_deadlock(error: &mysql_async::Error) -> bool {
    matches!(error, mysql_async::Error::Server(e) if e.code == ER_LOCK_DEADLOCK)
}
