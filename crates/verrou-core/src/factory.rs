//! `LockFactory`: creates locks on one store with shared defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::owner::{Owner, validate_owner};
use crate::store::validate_key;
use crate::{
    Expiry, IntoTtl, LeasePolicy, Lock, LockError, LockStore, RetryPolicy, Ttl, random_owner,
};

/// Creates [`Lock`]s on one store, with a default TTL (30 s), retry policy
/// and [`LeasePolicy`] (no renewal unless asked for).
///
/// Cheap to clone: clones share the store.
///
/// ```
/// use std::time::Duration;
/// use verrou_core::{Expiry, LockFactory, RetryPolicy, Ttl};
/// use verrou_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new())
///     .with_default_ttl(Ttl::After(Duration::from_secs(10)))
///     .with_retry(RetryPolicy::default().with_timeout(Some(Duration::from_secs(2))));
/// let lock = locks.create_lock("cart:1", Ttl::Default).unwrap();
/// assert_eq!(lock.ttl(), Expiry::After(Duration::from_secs(10)));
/// ```
#[derive(Clone)]
#[must_use]
pub struct LockFactory {
    store: Arc<dyn LockStore>,
    default_ttl: Expiry,
    retry: RetryPolicy,
    lease: LeasePolicy,
}

impl LockFactory {
    /// The default TTL of locks created with [`Ttl::Default`].
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

    /// A factory on `store` with a 30 s default TTL and the default retry policy.
    pub fn new(store: impl LockStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A factory on a shared store (several factories may share one store).
    pub fn from_arc(store: Arc<dyn LockStore>) -> Self {
        LockFactory {
            store,
            default_ttl: Expiry::After(Self::DEFAULT_TTL),
            retry: RetryPolicy::default(),
            lease: LeasePolicy::default(),
        }
    }

    /// Sets the TTL used for [`Ttl::Default`]; `Ttl::Never` makes locks
    /// permanent by default. `Ttl::Default` here keeps 30 s.
    pub fn with_default_ttl(mut self, ttl: Ttl) -> Self {
        self.default_ttl = ttl.resolve(Expiry::After(Self::DEFAULT_TTL));
        self
    }

    /// Sets the retry policy of [`Lock::acquire`] and [`Lock::run`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the [`LeasePolicy`] of new locks: renewal and the drift margin.
    ///
    /// ```
    /// use verrou_core::{LeasePolicy, LockFactory};
    /// use verrou_memory::MemoryStore;
    ///
    /// let renewing = LockFactory::new(MemoryStore::new()).with_lease(LeasePolicy::renewing());
    /// assert!(renewing.lease().renews());
    /// ```
    pub fn with_lease(mut self, lease: LeasePolicy) -> Self {
        self.lease = lease;
        self
    }

    /// The lease policy given to new locks.
    pub fn lease(&self) -> &LeasePolicy {
        &self.lease
    }

    /// The store behind this factory.
    pub fn store(&self) -> &Arc<dyn LockStore> {
        &self.store
    }

    /// The retry policy given to new locks.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Creates a lock handle with a fresh random owner. Nothing is sent to the
    /// store until the lock is acquired.
    ///
    /// `ttl` is any [`IntoTtl`]: `"5s"`, `5000` (ms), a `Duration`,
    /// [`Ttl::Never`], or [`Ttl::Default`].
    ///
    /// # Errors
    /// [`LockError::InvalidKey`] for an empty or oversized key,
    /// [`LockError::InvalidDuration`] for a bad TTL.
    pub fn create_lock(
        &self,
        key: impl Into<String>,
        ttl: impl IntoTtl,
    ) -> Result<Lock, LockError> {
        let key = key.into();
        validate_key(&key, self.store.max_key_bytes())?;
        let ttl = ttl.into_ttl()?.resolve(self.default_ttl);
        Ok(self.lock(key, Owner::Random(random_owner()?), ttl))
    }

    fn lock(&self, key: String, owner: Owner, ttl: Expiry) -> Lock {
        Lock::new(
            self.store.clone(),
            key,
            owner,
            ttl,
            self.retry.clone(),
            self.lease,
        )
    }

    /// Creates a lock handle acting as `owner`: two handles with the same owner
    /// are the same holder to the store (for example one process's id, so
    /// that it can release after a restart). Owners must be unguessable if
    /// holders do not trust each other.
    ///
    /// Every grant of such a handle has the same owner string, so the store
    /// cannot tell them apart: the handle still sends nothing for an old
    /// grant once it has a new one, but a call for an old grant that was
    /// already travelling when it failed (a timeout, a cut connection) and
    /// reaches the server late could release the new grant. Random owners
    /// ([`create_lock`](Self::create_lock)) have no such window.
    ///
    /// # Errors
    /// As [`create_lock`](Self::create_lock), and [`LockError::InvalidOwner`]
    /// when the owner is empty, longer than 255 bytes or contains NUL.
    pub fn create_lock_with_owner(
        &self,
        key: impl Into<String>,
        ttl: impl IntoTtl,
        owner: impl Into<String>,
    ) -> Result<Lock, LockError> {
        let key = key.into();
        let owner = owner.into();
        validate_key(&key, self.store.max_key_bytes())?;
        validate_owner(&owner)?;
        let ttl = ttl.into_ttl()?.resolve(self.default_ttl);
        Ok(self.lock(key, Owner::Fixed(owner.into()), ttl))
    }

    /// Restores a lock serialized with [`Lock::serialize`], possibly in
    /// another process: the restored handle can release and extend it.
    ///
    /// The string says who held the lock, not whether it still does: the
    /// restored handle is **unverified** — [`Lock::is_held`] is `false` — until
    /// [`Lock::extend`] confirms the grant with the store (or fails with
    /// `NotOwned` if it was released or taken over since).
    ///
    /// # Errors
    /// [`LockError::InvalidSerializedLock`] for anything that is not a lock
    /// serialized by this version of verrou.
    pub fn restore_lock(&self, serialized: &str) -> Result<Lock, LockError> {
        crate::serialize::restore(
            self.store.clone(),
            self.retry.clone(),
            self.lease,
            serialized,
        )
    }
}

impl fmt::Debug for LockFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFactory")
            .field("store", &self.store.name())
            .field("default_ttl", &self.default_ttl)
            .field("retry", &self.retry)
            .field("lease", &self.lease)
            .finish()
    }
}
