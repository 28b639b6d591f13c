//! Turning driver failures into [`LockError::Store`], and deciding which ones
//! leave a connection that must not go back to the pool.

use deadpool_postgres::PoolError;
use tokio_postgres::error::{Severity, SqlState};
use verrou_core::LockError;

/// The store name carried by every error of this crate.
pub(crate) const STORE: &str = "postgres";

/// A driver error as [`LockError::Store`].
pub(crate) fn store_error(error: tokio_postgres::Error) -> LockError {
    LockError::store(STORE, error)
}

/// A pool checkout failure (the server is down, refused us, or every
/// connection stayed busy) as [`LockError::Store`].
pub(crate) fn pool_error(error: PoolError) -> LockError {
    LockError::store(STORE, error)
}

/// Whether the connection that produced `error` may be reused.
///
/// An ordinary statement error (severity `ERROR`: a missing table, a
/// cancelled statement) leaves the session healthy. Anything else — the
/// server ending the session (`FATAL`, as `pg_terminate_backend` and restarts
/// do), a closed socket, a protocol or I/O failure — means the connection is
/// dead or in an unknown state. The pool only notices a closed connection once
/// its background task has seen the socket close, so we drop such connections
/// ourselves: the next call then always gets a fresh one.
///
/// One `ERROR` also retires the connection: "cached plan must not change
/// result type" (`0A000`), raised when the table was recreated with other
/// column types under a statement this connection has prepared. A fresh
/// connection prepares the statements again.
pub(crate) fn connection_is_reusable(error: &tokio_postgres::Error) -> bool {
    !error.is_closed()
        && error.as_db_error().is_some_and(|db| {
            // The parsed (never translated) severity: `severity()` follows
            // the server's `lc_messages`.
            db.parsed_severity() == Some(Severity::Error)
                && *db.code() != SqlState::FEATURE_NOT_SUPPORTED
        })
}
