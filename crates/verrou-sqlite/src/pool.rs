//! A few connections, each used on a blocking thread so that SQLite never
//! blocks the async runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;
use verrou_core::LockError;

/// Where connections come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A database file; connections are opened on demand and a connection
    /// that failed is replaced by a fresh one.
    File {
        path: PathBuf,
        busy_timeout: Duration,
    },
    /// One connection that cannot be reopened (in-memory or given by the
    /// user). It is kept whatever happens and used by one operation at a time.
    Single { description: &'static str },
}

/// At most `permits` connections in use at once; idle ones are kept.
pub(crate) struct Pool {
    source: Source,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    /// A pool that starts with `first` (already set up) and uses at most
    /// `max_connections` at once (1 for a [`Source::Single`]).
    pub(crate) fn new(source: Source, first: Connection, max_connections: usize) -> Self {
        let permits = match source {
            Source::File { .. } => max_connections.max(1),
            Source::Single { .. } => 1,
        };
        Pool {
            source,
            idle: Mutex::new(vec![first]),
            permits: Arc::new(Semaphore::new(permits)),
        }
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// Runs `work` with a connection on a blocking thread.
    ///
    /// If the caller's future is dropped, `work` still runs to the end on its
    /// thread and the connection comes back to the pool: a statement is never
    /// cut off halfway, and the lock state machine's clean-up covers a grant
    /// nobody heard about.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, LockError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|closed| LockError::store("sqlite", closed))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.checkout()?;
            let outcome = work(&conn);
            pool.checkin(conn, outcome.is_ok());
            outcome
        })
        .await
        .map_err(|join| LockError::store("sqlite", join))?
        .map_err(|e| LockError::store("sqlite", e))
    }

    fn checkout(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle().pop() {
            return Ok(conn);
        }
        match &self.source {
            Source::File { path, busy_timeout } => open_existing(path, *busy_timeout),
            // Only a panic inside `work` can lose the single connection.
            Source::Single { description } => Err(rusqlite::Error::InvalidParameterName(format!(
                "the {description} connection of this store was lost after a panic"
            ))),
        }
    }

    fn checkin(&self, conn: Connection, healthy: bool) {
        // A file connection that failed may point at a deleted or replaced
        // file (SQLITE_READONLY_DBMOVED): drop it, the next call reopens the
        // path. Statement errors are rare enough that this costs nothing.
        if healthy || matches!(self.source, Source::Single { .. }) {
            self.idle().push(conn);
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Push and pop cannot panic halfway: a poisoned list is still whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens `path` with `busy_timeout`, creating the file if `create`.
pub(crate) fn open_file(
    path: &std::path::Path,
    busy_timeout: Duration,
    create: bool,
) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::default();
    if !create {
        flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// Later connections never create the file: if it was deleted, calls fail
/// with a `Store` error instead of silently locking in a new, empty database
/// whose fencing tokens restart at 1.
fn open_existing(path: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    open_file(path, busy_timeout, false)
}
