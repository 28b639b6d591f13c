//! The contract between the lock engine and a storage backend.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;

use crate::LockError;

/// When a lock taken or extended through [`LockStore`] expires: one type with
/// two meanings spelled out, so that "no TTL" can never be confused with "the
/// lock's own TTL" (which is resolved before a store is called).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The lock stays until it is released.
    Never,
    /// The lock expires this long after the store applied the operation, by
    /// the store's clock. Always at least one millisecond when it comes from
    /// a [`Lock`](crate::Lock).
    After(Duration),
}

impl Expiry {
    /// The TTL, `None` for [`Expiry::Never`].
    pub fn duration(self) -> Option<Duration> {
        match self {
            Expiry::Never => None,
            Expiry::After(ttl) => Some(ttl),
        }
    }

    /// The one rule for a store that counts TTLs in whole milliseconds:
    /// rounded **up**, and at least 1 ms, so that a TTL under a millisecond
    /// (zero included, which only the raw trait can send) is a 1 ms lease —
    /// never an already expired lock, nor one that never expires. `None`
    /// for [`Expiry::Never`] and for a TTL longer than `max_ms`: a lease that
    /// outlives the store's range (or any plausible process) never expires.
    ///
    /// ```
    /// use std::time::Duration;
    /// use verrou_core::Expiry;
    ///
    /// let max = 1 << 53;
    /// assert_eq!(Expiry::After(Duration::ZERO).whole_millis(max), Some(1));
    /// assert_eq!(Expiry::After(Duration::from_nanos(1)).whole_millis(max), Some(1));
    /// assert_eq!(Expiry::After(Duration::from_micros(1500)).whole_millis(max), Some(2));
    /// assert_eq!(Expiry::After(Duration::MAX).whole_millis(max), None);
    /// assert_eq!(Expiry::Never.whole_millis(max), None);
    /// ```
    pub fn whole_millis(self, max_ms: u64) -> Option<u64> {
        let ms = self.duration()?.as_nanos().div_ceil(1_000_000).max(1);
        u64::try_from(ms).ok().filter(|ms| *ms <= max_ms)
    }
}

/// What [`LockStore::acquire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquisition {
    /// The lock was free (or expired) and now belongs to the caller.
    Acquired {
        /// The fencing token of this acquisition, `None` if the store has none.
        fencing_token: Option<u64>,
    },
    /// Someone holds the lock and it has not expired. Nothing was changed.
    Held,
}

/// A storage backend for locks: memory, Redis, an SQL database, DynamoDB or
/// your own.
///
/// The trait is deliberately small; everything a user calls (retries, `run`,
/// guards, serialization) lives on [`Lock`](crate::Lock) and works the same on
/// every store. Check a custom store with the `verrou-conformance` crate.
///
/// # Contract
///
/// A lock is a record `key → (owner, expiry, fencing token)`.
///
/// - **Atomicity.** [`acquire`](Self::acquire), [`release`](Self::release),
///   [`extend`](Self::extend) and [`force_release`](Self::force_release) are each
///   *one* atomic operation on the server (a script, one SQL statement, one
///   conditional write). A store never reads the owner and then writes in a
///   second step: another client could act in between and two holders would
///   both believe they hold the lock.
/// - **Whose clock.** Expiry is judged by the store's own clock wherever it has
///   one (Redis `PX`, the SQL server's `now()`), so clients with skewed clocks
///   cannot both hold a lock. A store that has no clock (DynamoDB conditions)
///   must say so in its documentation.
/// - **Expired means gone.** Once a lock's TTL has elapsed, `is_locked` is `false`,
///   `acquire` by anyone succeeds, and the old owner's `release` and `extend` fail
///   with [`LockError::NotOwned`]: an expired lock is never revived, and an old
///   owner never frees a newer holder's lock.
///   A store without a clock of its own may instead free a lease only once
///   a client has watched it unchanged for its whole TTL (DynamoDB does):
///   to a client that never saw the lease, it then stays held for up to one
///   more TTL. Documented by such a store.
/// - **Not re-entrant.** `acquire` for a key that the *same* owner already holds
///   returns [`Acquisition::Held`].
/// - **Owners are grants.** The owner string identifies one acquisition
///   (the engine gives every grant of a random-owner handle its own owner
///   string), so a store only ever compares owners; it never needs to know
///   about handles.
/// - **Fencing tokens.** A store that supports them returns, from every
///   successful `acquire`, a token strictly greater than every token previously
///   returned for the same key — across releases, expiries, takeovers and
///   processes. A resource that remembers the highest token it has accepted can
///   then refuse writes from a holder whose lease ran out while it was paused.
///   Stores without them return `None`.
/// - **Keys.** Any non-empty UTF-8 string without a NUL byte, up to
///   [`max_key_bytes`](Self::max_key_bytes), is a distinct key: no escaping
///   collision, no truncation. The handle checks every key it creates or
///   restores with [`validate_key`] before any store call, so store methods
///   may assume valid keys and do not check again; code that calls a store
///   directly checks keys the same way first.
///
/// # Errors
///
/// - [`LockError::NotOwned`]: `release` / `extend` found the key free, expired
///   or held by another owner. Nothing was changed.
/// - [`LockError::Store`]: the server could not be reached or failed. The
///   operation may or may not have been applied. A store must never report a
///   network, throttling or authentication failure as `NotOwned` or `Held`.
///   After a dropped connection the *next* call must work again without the
///   user rebuilding the store.
///
/// # Minimal default implementations
///
/// [`watch_release`](Self::watch_release) defaults to "no announcements"
/// (waiters poll at the retry delay), [`prune`](Self::prune) to "nothing to
/// prune", [`max_key_bytes`](Self::max_key_bytes)
/// to 1024 and [`name`](Self::name) to `"custom"`.
#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Takes the lock for `owner` if the key is free or expired, until `expiry`.
    ///
    /// # Errors
    /// [`LockError::Store`]; a held lock is
    /// `Ok(Acquisition::Held)`, not an error.
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError>;

    /// Releases the lock if `owner` holds it and it has not expired.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when the key is free, expired or held by someone
    /// else; [`LockError::Store`] on failure.
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError>;

    /// Releases the lock whoever holds it. Releasing a free key is not an error.
    ///
    /// # Errors
    /// [`LockError::Store`] on failure.
    async fn force_release(&self, key: &str) -> Result<(), LockError>;

    /// Whether someone holds the lock now (an expired lock is not locked).
    ///
    /// # Errors
    /// [`LockError::Store`] on failure.
    async fn is_locked(&self, key: &str) -> Result<bool, LockError>;

    /// Moves the lock's expiry to `expiry` from now if `owner` holds it and it
    /// has not expired. An expired lock is never revived.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when the key is free, expired or held by someone
    /// else; [`LockError::Store`] on failure.
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError>;

    /// Starts listening for the release of `key`.
    ///
    /// The returned [`ReleaseWatch`] must already be registered when this
    /// method returns, so that a release happening between this call and the
    /// next `acquire` still wakes the waiter (no lost wake-up). It may complete
    /// spuriously; it need not complete on expiry (waiters fall back to
    /// polling at the retry delay). `Ok(None)` means the store cannot announce
    /// releases.
    ///
    /// # Errors
    /// [`LockError::Store`] on failure; callers treat it as `Ok(None)`.
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        let _ = key;
        Ok(None)
    }

    /// Removes the state the store keeps for keys that nobody holds (a
    /// fencing counter, a free row), so that locking ever-new keys (one per
    /// order, per request) does not grow the store forever. Returns how many
    /// keys' state was removed.
    ///
    /// A prune never frees a held lock, and every fencing token issued after
    /// it is still greater than every token issued before it for the same
    /// key (a store may, for example, build tokens from its clock and keep
    /// a key's state until its clock has passed the key's last token). A
    /// store may also prune on its own; the default keeps nothing to prune.
    ///
    /// # Errors
    /// [`LockError::Store`] on failure.
    async fn prune(&self) -> Result<u64, LockError> {
        Ok(0)
    }

    /// The longest key, in bytes, this store accepts.
    fn max_key_bytes(&self) -> usize {
        1024
    }

    /// A short name for errors and traces (`"memory"`, `"redis"`, ...).
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// A pending notification that a key was released; see
/// [`LockStore::watch_release`].
pub struct ReleaseWatch(Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

impl ReleaseWatch {
    /// Wraps a future that completes when the key may have been released.
    pub fn new(released: impl Future<Output = ()> + Send + 'static) -> Self {
        ReleaseWatch(Box::pin(released))
    }
}

impl Future for ReleaseWatch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ReleaseWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReleaseWatch")
    }
}

/// Checks a key against the rules every store shares: non-empty, no NUL byte
/// (SQL text columns and C clients cannot hold one) and at most `max_bytes`.
///
/// ```
/// assert!(verrou_core::store::validate_key("user:42", 255).is_ok());
/// assert!(verrou_core::store::validate_key("", 255).is_err());
/// assert!(verrou_core::store::validate_key(&"x".repeat(256), 255).is_err());
/// ```
///
/// # Errors
/// [`LockError::InvalidKey`] saying which rule failed.
pub fn validate_key(key: &str, max_bytes: usize) -> Result<(), LockError> {
    if key.is_empty() {
        return Err(LockError::invalid_key("key is empty"));
    }
    if key.len() > max_bytes {
        return Err(LockError::invalid_key(format!(
            "key is {} bytes, this store accepts at most {max_bytes}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(LockError::invalid_key("key contains a NUL character"));
    }
    Ok(())
}
