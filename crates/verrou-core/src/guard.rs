//! `LockGuard`: one held grant that releases itself when dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::lease::grant::Grant;
use crate::{IntoTtl, Lock, LockError, LostSignal, Ttl};

/// One held grant of a [`Lock`], released when the guard is dropped.
///
/// Dropping cannot wait for the store, so the release is spawned on the
/// current tokio runtime; call [`release`](Self::release) to release now and
/// see the outcome. **Release guards before the runtime shuts down** (the end
/// of `#[tokio::main]` included): a release spawned while the runtime stops
/// may never run. It is then tried once in place, which frees an in-process
/// store's lock, and otherwise a WARN names the key, which stays locked until
/// its TTL — forever with [`Ttl::Never`].
///
/// The guard acts on its own grant only: once that grant is released (by the
/// guard or through the handle), dropping the guard sends nothing, even if
/// the handle has been granted the key again since.
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
pub struct LockGuard {
    lock: Lock,
    grant: Arc<Grant>,
    armed: bool,
}

impl LockGuard {
    pub(crate) fn new(lock: Lock, grant: Arc<Grant>) -> Self {
        LockGuard {
            lock,
            grant,
            armed: true,
        }
    }

    /// The lock this guard holds a grant of.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// The fencing token of this grant, if the store has tokens.
    pub fn fencing_token(&self) -> Option<u64> {
        self.grant.fencing_token
    }

    /// A signal that fires when this grant's lease is lost or released; hand
    /// clones to the tasks that write under the lock.
    pub fn lost(&self) -> LostSignal {
        self.grant.signal()
    }

    /// Whether the local clock still vouches for this grant's lease.
    pub fn is_held(&self) -> bool {
        self.grant.is_held()
    }

    /// How long the local clock still vouches for this grant; `None` when it
    /// never expires.
    pub fn remaining_time(&self) -> Option<Duration> {
        self.grant.remaining()
    }

    /// Whether this grant's lease renews itself (see [`LeasePolicy`](crate::LeasePolicy)).
    pub fn renews(&self) -> bool {
        self.lock.inner.lease.renews() && self.grant.expiry().duration().is_some()
    }

    /// How many renewals the store has confirmed for this grant.
    pub fn renewals(&self) -> u64 {
        self.grant.renewals.load(Ordering::Relaxed)
    }

    /// Extends this grant by the lock's own TTL; see [`Lock::extend`].
    ///
    /// # Errors
    /// As [`Lock::extend`].
    pub async fn extend(&self) -> Result<(), LockError> {
        self.extend_by(Ttl::Default).await
    }

    /// Extends this grant by any TTL form; see [`Lock::extend_by`].
    ///
    /// # Errors
    /// As [`Lock::extend_by`].
    pub async fn extend_by(&self, ttl: impl IntoTtl) -> Result<(), LockError> {
        let expiry = ttl.into_ttl()?.resolve(self.lock.inner.ttl);
        self.lock.inner.extend(&self.grant, expiry).await
    }

    /// Releases this grant now.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] if the grant expired, was force-released or
    /// was already released through the handle; [`LockError::Store`] on
    /// failure (the handle then keeps the grant; see [`Lock::release`]). The
    /// guard is spent either way.
    pub async fn release(mut self) -> Result<(), LockError> {
        self.armed = false;
        self.lock.inner.release(Some(self.grant.id)).await
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.lock.key())
            .field("grant", &self.grant)
            .field("armed", &self.armed)
            .finish()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            self.lock
                .inner
                .release_in_background(Some(self.grant.id), "guard dropped");
        }
    }
}
