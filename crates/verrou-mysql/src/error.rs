//! Turning driver failures into [`LockError::Store`], and the few server
//! errors the store treats specially.

use std::fmt;
use std::time::Duration;

use verrou_core::LockError;

/// The store name carried by every error of this crate.
pub(crate) const STORE: &str = "mysql";

/// `ER_LOCK_DEADLOCK`: InnoDB chose this statement as a deadlock victim and
/// rolled it back entirely, so running it again is safe.
const ER_LOCK_DEADLOCK: u16 = 1213;

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

/// A store call that did not finish in time.
#[derive(Debug)]
pub(crate) struct TimedOut {
    /// What was being waited for.
    pub(crate) what: &'static str,
    /// The limit that ran out.
    pub(crate) after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} timed out after {:?}", self.what, self.after)
    }
}

impl std::error::Error for TimedOut {}

/// Bounds `future` by `limit` (`None`: unbounded); a [`TimedOut`] store error
/// when time runs out.
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    what: &'static str,
    future: impl Future<Output = Result<T, LockError>>,
) -> Result<T, LockError> {
    match limit {
        None => future.await,
        Some(after) => tokio::time::timeout(after, future)
            .await
            .unwrap_or_else(|_| Err(LockError::store(STORE, TimedOut { what, after }))),
    }
}
