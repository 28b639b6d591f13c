//! A few connections, each used on a blocking thread so that SQLite never
//! blocks the async runtime.

use std::path::{Path, PathBuf};
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
        /// `None`: no limit.
        busy_timeout: Option<Duration>,
    },
    /// One connection that cannot be reopened (in-memory or given by the
    /// user). It is kept whatever happens and used by one operation at a time.
    Single { description: &'static str },
}

/// At most `permits` connections in use at once; idle ones are kept.
pub(crate) struct Pool {
    source: Source,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
}

/// A connection and the file it was opened on.
struct Pooled {
    conn: Connection,
    /// `None` for a [`Source::Single`].
    file: Option<FileIdentity>,
}

/// Which file a path names: device and inode on Unix. A connection keeps
/// working on a file that was deleted or replaced under its path, so two
/// processes could then lock in two different databases; comparing this
/// before each use catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileIdentity {
    /// The identity of the file `path` names now.
    ///
    /// # Errors
    /// [`LockError::Store`] if there is no such file.
    pub(crate) fn of(path: &Path) -> Result<Self, LockError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            LockError::store(
                "sqlite",
                format!("database file {} is gone: {e}", path.display()),
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            // Elsewhere an open file cannot be deleted; existence is enough.
            let _ = meta;
            Ok(FileIdentity {})
        }
    }
}

impl Pool {
    /// A pool that starts with `first` (already set up) and uses at most
    /// `max_connections` at once (1 for a [`Source::Single`]).
    ///
    /// # Errors
    /// [`LockError::Store`] if the file disappeared since `first` was opened.
    pub(crate) fn new(
        source: Source,
        first: Connection,
        max_connections: usize,
    ) -> Result<Self, LockError> {
        let (permits, file) = match &source {
            Source::File { path, .. } => (max_connections.max(1), Some(FileIdentity::of(path)?)),
            Source::Single { .. } => (1, None),
        };
        Ok(Pool {
            source,
            idle: Mutex::new(vec![Pooled { conn: first, file }]),
            permits: Arc::new(Semaphore::new(permits)),
        })
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
            let pooled = pool.checkout()?;
            let outcome = work(&pooled.conn);
            pool.checkin(pooled, outcome.is_ok());
            outcome.map_err(|e| LockError::store("sqlite", e))
        })
        .await
        .map_err(|join| LockError::store("sqlite", join))?
    }

    fn checkout(&self) -> Result<Pooled, LockError> {
        let Source::File { path, busy_timeout } = &self.source else {
            return self.idle().pop().ok_or_else(|| {
                // Only a panic inside `work` can lose the single connection.
                LockError::store(
                    "sqlite",
                    "the store's only connection was lost after a panic",
                )
            });
        };
        // One `stat` per operation: cheap next to the statement's own I/O.
        let current = match FileIdentity::of(path) {
            Ok(current) => current,
            Err(gone) => {
                self.idle().clear();
                return Err(gone);
            }
        };
        // Popped in its own statement: the guard must be gone before `clear`.
        let idle = self.idle().pop();
        if let Some(pooled) = idle {
            if pooled.file == Some(current) {
                return Ok(pooled);
            }
            // The path now names another file: every idle connection is stale.
            self.idle().clear();
        }
        let conn = open_existing(path, *busy_timeout).map_err(|e| LockError::store("sqlite", e))?;
        Ok(Pooled {
            conn,
            file: Some(FileIdentity::of(path)?),
        })
    }

    fn checkin(&self, pooled: Pooled, healthy: bool) {
        // A file connection that failed is replaced by a fresh one on the
        // next call, in case the failure was tied to it. Statement errors are
        // rare enough that this costs nothing.
        if healthy || pooled.file.is_none() {
            self.idle().push(pooled);
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Pooled>> {
        // Push and pop cannot panic halfway: a poisoned list is still whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens `path` with `busy_timeout` (`None`: no limit), creating the file if
/// `create`.
pub(crate) fn open_file(
    path: &Path,
    busy_timeout: Option<Duration>,
    create: bool,
) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::default();
    // A path is always a file path (never a `file:` URI), so that the file
    // identity check looks at the same file SQLite opened.
    flags.remove(OpenFlags::SQLITE_OPEN_URI);
    if !create {
        flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
    }
    let conn = Connection::open_with_flags(path, flags)?;
    match busy_timeout {
        Some(timeout) => conn.busy_timeout(timeout)?,
        // SQLite counts its own timeout in milliseconds in an `int`; beyond
        // that, a handler that waits as SQLite's does, without an end.
        None => conn.busy_handler(Some(wait_while_busy))?,
    }
    Ok(conn)
}

/// The busy handler of a connection with no busy timeout: waits as SQLite's
/// own timeout handler does (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms,
/// then 100 ms between attempts) and never gives up.
fn wait_while_busy(attempt: i32) -> bool {
    const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    let step = usize::try_from(attempt)
        .unwrap_or(0)
        .min(DELAYS_MS.len() - 1);
    std::thread::sleep(Duration::from_millis(DELAYS_MS[step]));
    true
}

/// Later connections never create the file: if it was deleted, calls fail
/// with a `Store` error instead of silently locking in a new, empty database
/// that processes still on the old file would not see.
fn open_existing(path: &Path, busy_timeout: Option<Duration>) -> rusqlite::Result<Connection> {
    open_file(path, busy_timeout, false)
}
