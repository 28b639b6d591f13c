//! `LockFactory`: creates locks on one store with shared defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::lock::HeldState;
use crate::owner::validate_owner;
use crate::{IntoTtl, Lock, LockError, LockStore, RetryPolicy, Ttl, random_owner, validate_key};

/// Creates [`Lock`]s on one store, with a default TTL (30 s) and retry policy.
///
/// Cheap to clone: clones share the store.
///
/// ```
/// use std::time::Duration;
/// use verrou_core::{LockFactory, RetryPolicy, Ttl};
/// use verrou_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new())
///     .with_default_ttl(Ttl::After(Duration::from_secs(10)))
///     .with_retry(RetryPolicy::default().with_timeout(Some(Duration::from_secs(2))));
/// let lock = locks.create_lock("cart:1", Ttl::Default).unwrap();
/// assert_eq!(lock.ttl(), Some(Duration::from_secs(10)));
/// ```
#[derive(Clone)]
pub struct LockFactory {
    store: Arc<dyn LockStore>,
    default_ttl: Option<Duration>,
    retry: RetryPolicy,
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
            default_ttl: Some(Self::DEFAULT_TTL),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the TTL used for [`Ttl::Default`]; `Ttl::Never` makes locks
    /// permanent by default. `Ttl::Default` here keeps 30 s.
    pub fn with_default_ttl(mut self, ttl: Ttl) -> Self {
        self.default_ttl = ttl.resolve(Some(Self::DEFAULT_TTL));
        self
    }

    /// Sets the retry policy of [`Lock::acquire`] and [`Lock::run`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
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
    /// [`Ttl::Never`] / `None::<Duration>`, or [`Ttl::Default`].
    ///
    /// # Errors
    /// [`LockError::InvalidKey`] for an empty or oversized key,
    /// [`LockError::InvalidDuration`] for a bad TTL.
    pub fn create_lock(
        &self,
        key: impl Into<String>,
        ttl: impl IntoTtl,
    ) -> Result<Lock, LockError> {
        self.create_lock_with_owner(key, ttl, random_owner()?)
    }

    /// Creates a lock handle acting as `owner`: two handles with the same owner
    /// are the same holder (for example one process's id, so that it can
    /// release after a restart). Owners must be unguessable if holders do not
    /// trust each other.
    ///
    /// # Errors
    /// As [`create_lock`](Self::create_lock), and [`LockError::InvalidKey`]
    /// naming the owner when it is empty or longer than 255 bytes.
    pub fn create_lock_with_owner(
        &self,
        key: impl Into<String>,
        ttl: impl IntoTtl,
        owner: impl Into<String>,
    ) -> Result<Lock, LockError> {
        let key = key.into();
        let owner = owner.into();
        validate_key(&key, self.store.max_key_bytes())?;
        validate_owner(&owner)
            .map_err(|reason| LockError::invalid_key(format!("invalid owner: {reason}")))?;
        let ttl = ttl.into_ttl()?.resolve(self.default_ttl);
        Ok(Lock::from_parts(
            self.store.clone(),
            key,
            owner,
            ttl,
            self.retry.clone(),
            HeldState::default(),
        ))
    }

    /// Restores a lock serialized with [`Lock::serialize`], possibly in
    /// another process: the restored handle can release and extend it.
    ///
    /// # Errors
    /// [`LockError::InvalidSerializedLock`] for anything that is not a lock
    /// serialized by this version of verrou.
    pub fn restore_lock(&self, serialized: &str) -> Result<Lock, LockError> {
        crate::serialize::restore(self.store.clone(), self.retry.clone(), serialized)
    }
}

impl fmt::Debug for LockFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFactory")
            .field("store", &self.store.name())
            .field("default_ttl", &self.default_ttl)
            .field("retry", &self.retry)
            .finish()
    }
}
