//! Operation timeouts: one bound, one error, for every store call that waits
//! on a server.

use std::fmt;
use std::time::Duration;

use crate::LockError;

/// The source of a [`LockError::Store`] raised when a store call did not
/// finish within its limit. Tests and callers can find it with
/// [`std::error::Error::source`] and `downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimedOut {
    /// What was being waited for ("connecting", "acquire", ...).
    pub what: &'static str,
    /// The limit that ran out.
    pub after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} timed out after {:?}", self.what, self.after)
    }
}

impl std::error::Error for TimedOut {}

/// Runs `future` for at most `limit` (`None`: unbounded).
///
/// When time runs out the future is dropped (so the driver must tolerate
/// cancellation: the stores' clean-up of abandoned statements relies on it)
/// and the call fails with a [`LockError::Store`] for `store` whose source is
/// [`TimedOut`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use verrou_core::store::{TimedOut, within};
///
/// let slow = std::future::pending::<Result<(), verrou_core::LockError>>();
/// let error = within("example", Some(Duration::from_millis(5)), "acquire", slow)
///     .await
///     .unwrap_err();
/// let source = std::error::Error::source(&error).unwrap();
/// assert_eq!(source.downcast_ref::<TimedOut>().unwrap().what, "acquire");
/// # }
/// ```
pub async fn within<T>(
    store: &'static str,
    limit: Option<Duration>,
    what: &'static str,
    future: impl Future<Output = Result<T, LockError>>,
) -> Result<T, LockError> {
    match limit {
        None => future.await,
        Some(after) => tokio::time::timeout(after, future)
            .await
            .unwrap_or_else(|_| Err(LockError::store(store, TimedOut { what, after }))),
    }
}
