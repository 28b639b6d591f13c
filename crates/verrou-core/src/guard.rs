//! `LockGuard`: a held lock that releases itself when dropped.

use std::time::Duration;

use crate::lock::spawn_release;
use crate::{Lock, LockError};

/// A held lock that is released when the guard is dropped.
///
/// Dropping cannot wait for the store, so the release is spawned on the
/// current tokio runtime; call [`release`](Self::release) to release now and
/// see the outcome. Returned by [`Lock::acquire_guard`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// use verrou_core::LockFactory;
/// use verrou_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new());
/// let lock = locks.create_lock("report", "30s")?;
/// let guard = lock.acquire_guard().await?;
/// // ... `?` and early returns here still release the lock ...
/// guard.release().await?;
/// # Ok(())
/// # }
/// ```
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct LockGuard {
    lock: Lock,
    armed: bool,
}

impl LockGuard {
    pub(crate) fn new(lock: Lock) -> Self {
        LockGuard { lock, armed: true }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    /// The held lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// The fencing token of this hold, if the store has tokens.
    pub fn fencing_token(&self) -> Option<u64> {
        self.lock.fencing_token()
    }

    /// Extends the hold; see [`Lock::extend`].
    ///
    /// # Errors
    /// As [`Lock::extend`].
    pub async fn extend(&self, ttl: Option<Duration>) -> Result<(), LockError> {
        self.lock.extend(ttl).await
    }

    /// Releases the lock now.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] if the lock expired (or was force-released)
    /// while held; [`LockError::Store`] on failure — the guard is spent either
    /// way and sends nothing more.
    pub async fn release(mut self) -> Result<(), LockError> {
        let result = self.lock.release().await;
        self.armed = false;
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            let inner = self.lock.inner.clone();
            let op = inner.op.clone().try_lock_owned().ok();
            spawn_release(inner, op, None, "guard dropped");
        }
    }
}
