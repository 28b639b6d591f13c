//! Turning fred's errors into verrou's.

use std::fmt;

use verrou_core::{BoxError, LockError};

pub(crate) const STORE: &str = "redis";

/// Every driver failure is a `Store` error: never `NotOwned` or `Held`.
pub(crate) fn store_error(error: fred::error::Error) -> LockError {
    LockError::store(STORE, error)
}

/// The server named in the configuration could not be reached at start-up:
/// the driver's error, or [`TimedOut`](verrou_core::store::TimedOut) when it
/// never answered.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) endpoint: String,
    pub(crate) source: BoxError,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not connect to redis at {}: {}",
            self.endpoint, self.source
        )
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
