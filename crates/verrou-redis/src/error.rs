//! Turning fred's errors into verrou's.

use std::fmt;
use std::time::Duration;

use verrou_core::LockError;

pub(crate) const STORE: &str = "redis";

/// Every driver failure is a `Store` error: never `NotOwned` or `Held`.
pub(crate) fn store_error(error: fred::error::Error) -> LockError {
    LockError::store(STORE, error)
}

/// The server named in the configuration could not be reached at start-up.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) endpoint: String,
    pub(crate) within: Duration,
    pub(crate) source: Option<fred::error::Error>,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not connect to redis at {}", self.endpoint)?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => write!(f, ": no answer within {:?}", self.within),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}
