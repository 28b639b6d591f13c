//! The one error type every verrou operation returns.

use std::time::Duration;

/// A boxed error from a store's driver, kept behind [`LockError::Store`] so that
/// no driver type leaks into `verrou-core`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a lock.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The retry policy gave up before the lock could be taken.
    #[error("timed out acquiring lock `{key}` after {attempts} attempt(s) in {elapsed:?}")]
    Timeout {
        /// The key that could not be locked.
        key: String,
        /// How many times the store was asked.
        attempts: u32,
        /// How long the caller waited in total.
        elapsed: Duration,
    },

    /// The caller does not hold the lock: someone else does, it expired, or it
    /// was never taken. Nothing was changed in the store.
    #[error("lock `{key}` is not held by this owner")]
    NotOwned {
        /// The key of the lock.
        key: String,
    },

    /// The lock expired before [`Lock::run`](crate::Lock::run)'s closure
    /// finished, so another holder may have run at the same time.
    ///
    /// The closure's output is dropped: the work it did was not protected.
    #[error("lock `{key}` expired before the protected section finished")]
    Expired {
        /// The key of the lock.
        key: String,
    },

    /// The lease of a renewing [`run`](crate::Lock::run) (or any holder
    /// watching its [`LostSignal`](crate::LostSignal)) was lost before the
    /// work finished: the work future was dropped at its next `.await` and
    /// its output discarded. See [`LossReason`](crate::LossReason) for why.
    #[error("lease on lock `{key}` lost before the protected section finished: {reason}")]
    LeaseLost {
        /// The key of the lock.
        key: String,
        /// Why the lease can no longer be vouched for.
        reason: crate::LossReason,
    },

    /// Every grant arrived after its TTL had already run out, so the TTL is
    /// shorter than the round trip to the store: no holder could ever use it.
    /// Choose a longer TTL.
    #[error(
        "lock `{key}`: the TTL of {ttl:?} is shorter than the store's round trip \
         ({give_backs} grants arrived already expired and were let go)"
    )]
    TtlShorterThanRoundTrip {
        /// The key of the lock.
        key: String,
        /// The TTL that was asked for.
        ttl: Duration,
        /// How many grants arrived too late.
        give_backs: u32,
    },

    /// An owner id given to
    /// [`create_lock_with_owner`](crate::LockFactory::create_lock_with_owner)
    /// is empty, longer than 255 bytes or contains a NUL character.
    #[error("invalid lock owner: {reason}")]
    InvalidOwner {
        /// Why it was rejected.
        reason: String,
    },

    /// The operating system could not provide the random bytes an owner id
    /// is made of; no lock was created.
    #[error("the operating system has no randomness to give")]
    NoRandomness {
        /// The operating system's error.
        #[source]
        source: BoxError,
    },

    /// A duration could not be understood, or was zero or negative.
    #[error("invalid duration `{input}`: {reason}")]
    InvalidDuration {
        /// The offending text, as given.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A key is empty, too long for the store, or otherwise unusable.
    #[error("invalid lock key: {reason}")]
    InvalidKey {
        /// Why it was rejected.
        reason: String,
    },

    /// A string given to `restore_lock` is not a lock serialized by verrou.
    #[error("invalid serialized lock: {reason}")]
    InvalidSerializedLock {
        /// Why it was rejected.
        reason: String,
    },

    /// A [`Verrou`](crate::Verrou) was asked for a store name it does not know.
    #[error("unknown lock store `{name}` (known: {known})")]
    UnknownStore {
        /// The name that was asked for.
        name: String,
        /// The names that are configured, comma separated.
        known: String,
    },

    /// A store's configuration is unusable (for example a table name that is
    /// not an SQL identifier).
    #[error("invalid {store} store configuration: {reason}")]
    InvalidConfig {
        /// The store's name (`"postgres"`, `"redis"`, ...).
        store: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The store could not be reached or answered with an error.
    ///
    /// The call may or may not have reached the server before it failed. Every
    /// store call is owner-checked, so a later `release` or `extend` can never
    /// touch another owner's lock; [`Lock::acquire`](crate::Lock::acquire)
    /// sends an owner-checked release after an acquire that failed this way, so
    /// a lock granted by a call whose answer was lost is not left behind.
    #[error("{store} store error")]
    Store {
        /// The store's name (`"postgres"`, `"redis"`, ...).
        store: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl LockError {
    /// Wraps a driver error as [`LockError::Store`].
    pub fn store(store: &'static str, source: impl Into<BoxError>) -> Self {
        LockError::Store {
            store,
            source: source.into(),
        }
    }

    /// Builds [`LockError::NotOwned`] for `key`.
    pub fn not_owned(key: &str) -> Self {
        LockError::NotOwned {
            key: key.to_owned(),
        }
    }

    /// Builds [`LockError::InvalidKey`].
    pub fn invalid_key(reason: impl Into<String>) -> Self {
        LockError::InvalidKey {
            reason: reason.into(),
        }
    }

    /// Builds [`LockError::InvalidConfig`].
    pub fn invalid_config(store: &'static str, reason: impl Into<String>) -> Self {
        LockError::InvalidConfig {
            store,
            reason: reason.into(),
        }
    }
}
