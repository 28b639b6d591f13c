//! `Lock`: one named lock held (or not) by one owner.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OwnedMutexGuard;

use crate::catch_panic::CatchPanic;
use crate::guard::LockGuard;
use crate::owner::jitter_seed;
use crate::{Acquisition, IntoTtl, LockError, LockStore, RetryPolicy, Ttl};

/// A named lock, owned by one owner id, on one store.
///
/// A `Lock` is a handle: creating it changes nothing in the store. Create it
/// with [`LockFactory::create_lock`](crate::LockFactory::create_lock) (or
/// [`Verrou::create_lock`](crate::Verrou::create_lock)), then take it with
/// [`run`](Self::run), [`acquire_guard`](Self::acquire_guard) or
/// [`acquire`](Self::acquire) / [`release`](Self::release).
///
/// Locks are **not re-entrant**: acquiring a lock this handle already holds
/// waits like anyone else.
///
/// Operations on one handle are serialized; use one handle per holder.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// use verrou_core::LockFactory;
/// use verrou_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new());
/// let lock = locks.create_lock("invoice:7", "10s")?;
/// let total = lock.run(|| async { 40 + 2 }).await?;
/// assert_eq!(total, 42);
/// # Ok(())
/// # }
/// ```
pub struct Lock {
    pub(crate) inner: Arc<LockInner>,
}

pub(crate) struct LockInner {
    pub(crate) store: Arc<dyn LockStore>,
    pub(crate) key: String,
    pub(crate) owner: String,
    pub(crate) ttl: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) state: Mutex<HeldState>,
    /// Serializes store calls made through this handle, and is carried by the
    /// background release of a dropped `acquire`/`run`/guard, so that a later
    /// acquire through the same handle cannot be undone by that release.
    pub(crate) op: Arc<tokio::sync::Mutex<()>>,
}

/// What this handle believes about its own hold. The store is the authority;
/// this view is conservative (expiry is counted from *before* the request).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeldState {
    pub(crate) held: bool,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) fencing_token: Option<u64>,
}

impl LockInner {
    pub(crate) fn state(&self) -> MutexGuard<'_, HeldState> {
        // The state is plain data written in one assignment; a panic elsewhere
        // cannot leave it half-updated, so a poisoned mutex is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark_held(&self, since: SystemTime, ttl: Option<Duration>, token: Option<u64>) {
        let mut state = self.state();
        state.held = true;
        state.expires_at = ttl.and_then(|ttl| since.checked_add(ttl));
        if token.is_some() {
            state.fencing_token = token;
        }
    }

    fn mark_released(&self) {
        let mut state = self.state();
        state.held = false;
        state.expires_at = None;
    }

    async fn release_locked(&self) -> Result<(), LockError> {
        let result = self.store.delete(&self.key, &self.owner).await;
        match &result {
            Ok(()) => {
                self.mark_released();
                tracing::debug!(key = %self.key, store = self.store.name(), "lock released");
            }
            Err(LockError::NotOwned { .. }) => self.mark_released(),
            Err(_) => {}
        }
        result
    }
}

/// A `save` in flight. The acquire polls it inline; if the acquire is dropped
/// first, the background release takes it over and finishes it (no task is
/// spawned on the normal path).
type SaveTask = std::pin::Pin<Box<dyn Future<Output = Result<Acquisition, LockError>> + Send>>;

/// Releases in the background, still holding the handle's operation lock so
/// that no later acquire through this handle can slip in before it.
///
/// With `pending`, the release waits for that save's answer first: a release
/// sent while the save is still travelling (on another pooled connection,
/// say) could arrive before it and find nothing, and the save would then
/// grant a lock nobody frees. A save that answered `Held` needs no release.
pub(crate) fn spawn_release(
    inner: Arc<LockInner>,
    op: Option<OwnedMutexGuard<()>>,
    pending: Option<SaveTask>,
    why: &'static str,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(key = %inner.key, why, "no tokio runtime to release the lock on; it stays held until its TTL");
        return;
    };
    runtime.spawn(async move {
        let _op = match op {
            Some(op) => op,
            None => inner.op.clone().lock_owned().await,
        };
        if let Some(save) = pending {
            if let Ok(Acquisition::Held) = save.await {
                return;
            }
        }
        match inner.release_locked().await {
            Ok(()) | Err(LockError::NotOwned { .. }) => {}
            Err(error) => {
                tracing::warn!(key = %inner.key, why, %error, "background release failed; the lock stays held until its TTL");
            }
        }
    });
}

/// Tracks the `save` of an acquire in progress: if the acquire is dropped
/// before it hears the answer, or the answer was an ambiguous error, the
/// store may have granted the lock, so an owner-checked release is sent. It
/// can only ever free our own lock.
struct InFlight<'a> {
    inner: &'a Arc<LockInner>,
    op: Option<OwnedMutexGuard<()>>,
    /// A save whose answer the caller has not seen yet.
    pending: Option<SaveTask>,
    /// A save failed in a way that may have taken the lock.
    ambiguous: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.pending.is_some() || self.ambiguous {
            spawn_release(
                self.inner.clone(),
                self.op.take(),
                self.pending.take(),
                "acquire was cancelled or failed",
            );
        }
    }
}

impl Lock {
    pub(crate) fn from_parts(
        store: Arc<dyn LockStore>,
        key: String,
        owner: String,
        ttl: Option<Duration>,
        retry: RetryPolicy,
        state: HeldState,
    ) -> Self {
        Lock {
            inner: Arc::new(LockInner {
                store,
                key,
                owner,
                ttl,
                retry,
                state: Mutex::new(state),
                op: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// The lock's key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The owner id this handle acquires and releases as.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The TTL this lock is acquired with; `None` = never expires.
    pub fn ttl(&self) -> Option<Duration> {
        self.inner.ttl
    }

    /// The fencing token of the latest acquisition through this handle (or the
    /// restored one), `None` before the first acquisition or if the store has
    /// no tokens.
    ///
    /// Pass it to the resource you protect and have it refuse any token lower
    /// than the highest it has seen: that stops a holder whose lease ran out
    /// while it was paused.
    pub fn fencing_token(&self) -> Option<u64> {
        self.inner.state().fencing_token
    }

    /// Whether this handle believes it holds the lock (acquired, not released,
    /// not known to be expired). Ask the store with [`is_locked`](Self::is_locked).
    pub fn is_held(&self) -> bool {
        let state = *self.inner.state();
        state.held && !expired_at(state.expires_at)
    }

    /// Whether this handle acquired the lock and its TTL has run out by the
    /// local clock. A lock that is not held, or never expires, is not expired.
    pub fn is_expired(&self) -> bool {
        let state = *self.inner.state();
        state.held && expired_at(state.expires_at)
    }

    /// How long this handle's hold has left by the local clock: `None` when it
    /// is not held or never expires, `Some(ZERO)` once expired.
    pub fn remaining_time(&self) -> Option<Duration> {
        let state = *self.inner.state();
        if !state.held {
            return None;
        }
        let expires_at = state.expires_at?;
        Some(
            expires_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }

    /// Asks the store whether anyone holds this key now.
    ///
    /// # Errors
    /// [`LockError::Store`] when the store fails.
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        self.inner.store.exists(&self.inner.key).await
    }

    /// Acquires the lock, retrying with the factory's retry policy.
    ///
    /// Dropping the returned future at any point is safe: if a request to the
    /// store was in flight, an owner-checked release is sent in the background
    /// so that a lock granted to an abandoned call does not linger.
    ///
    /// # Errors
    /// [`LockError::Timeout`] when the policy gives up; [`LockError::Store`]
    /// when the store fails (the acquire is not retried on a store error).
    pub async fn acquire(&self) -> Result<(), LockError> {
        let policy = self.inner.retry.clone();
        self.acquire_with(&policy).await
    }

    /// Acquires the lock with a retry policy for this call only.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_with(&self, policy: &RetryPolicy) -> Result<(), LockError> {
        let inner = &self.inner;
        let started = Instant::now();
        let mut in_flight = InFlight {
            inner,
            op: Some(inner.op.clone().lock_owned().await),
            pending: None,
            ambiguous: false,
        };
        let mut attempts = 0u32;
        let mut watch = None;
        loop {
            attempts += 1;
            if self.try_save(&mut in_flight).await? {
                return Ok(());
            }
            let exhausted = policy.attempts().is_some_and(|max| attempts >= max);
            let left = policy
                .timeout()
                .map(|t| t.saturating_sub(started.elapsed()));
            if exhausted || left == Some(Duration::ZERO) {
                let elapsed = started.elapsed();
                tracing::debug!(key = %inner.key, attempts, ?elapsed, "lock acquire timed out");
                return Err(LockError::Timeout {
                    key: inner.key.clone(),
                    attempts,
                    elapsed,
                });
            }
            if attempts == 1 {
                // Register for the release announcement, then look once more:
                // a release between our first try and the registration would
                // otherwise be missed until the retry delay runs out.
                watch = self.watch().await;
                if watch.is_some() && self.try_save(&mut in_flight).await? {
                    return Ok(());
                }
            }
            let mut wait = policy.delay_after(attempts, jitter_seed());
            if let Some(left) = left {
                wait = wait.min(left);
            }
            match watch.take() {
                Some(released) => {
                    let _ = tokio::time::timeout(wait, released).await;
                }
                None => tokio::time::sleep(wait).await,
            }
            watch = self.watch().await;
        }
    }

    async fn watch(&self) -> Option<crate::ReleaseWatch> {
        // A failing announcement channel only costs latency: fall back to polling.
        self.inner
            .store
            .watch_release(&self.inner.key)
            .await
            .ok()
            .flatten()
    }

    /// One `save`; `Ok(true)` when acquired.
    async fn try_save(&self, in_flight: &mut InFlight<'_>) -> Result<bool, LockError> {
        let inner = &self.inner;
        let sent_at = SystemTime::now();
        let owned = inner.clone();
        let save = in_flight.pending.insert(Box::pin(async move {
            owned.store.save(&owned.key, &owned.owner, owned.ttl).await
        }));
        let outcome = save.as_mut().await;
        in_flight.pending = None;
        let outcome = outcome.inspect_err(|_| in_flight.ambiguous = true)?;
        match outcome {
            Acquisition::Acquired { .. } if lease_over(sent_at, inner.ttl) => {
                // The answer took longer than the TTL (a paused process, a
                // server stall): by the time we hear of it the lease may
                // already be someone else's. Give it back and keep trying
                // rather than return a lock that is not safely held.
                tracing::warn!(key = %inner.key, "lock granted after its TTL had run out; releasing it and retrying");
                match inner.store.delete(&inner.key, &inner.owner).await {
                    Ok(()) | Err(LockError::NotOwned { .. }) => Ok(false),
                    Err(e) => {
                        in_flight.ambiguous = true;
                        Err(e)
                    }
                }
            }
            Acquisition::Acquired { fencing_token } => {
                inner.mark_held(sent_at, inner.ttl, fencing_token);
                tracing::debug!(key = %inner.key, store = inner.store.name(), ?fencing_token, "lock acquired");
                Ok(true)
            }
            Acquisition::Held => Ok(false),
        }
    }

    /// Tries once; `Ok(false)` if someone else holds the lock.
    ///
    /// # Errors
    /// [`LockError::Store`] when the store fails.
    pub async fn acquire_immediately(&self) -> Result<bool, LockError> {
        match self.acquire_with(&RetryPolicy::no_retry()).await {
            Ok(()) => Ok(true),
            Err(LockError::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Acquires the lock and returns a guard that releases it when dropped
    /// (in the background, on the current tokio runtime), so that `?` and early
    /// returns cannot leave the lock held until its TTL. Call
    /// [`LockGuard::release`] to release and see the outcome.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_guard(&self) -> Result<LockGuard, LockError> {
        self.acquire().await?;
        Ok(LockGuard::new(self.share()))
    }

    /// Releases the lock if this owner holds it.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when the lock is free, expired or held by
    /// another owner (nothing is changed); [`LockError::Store`] on failure.
    pub async fn release(&self) -> Result<(), LockError> {
        let _op = self.inner.op.lock().await;
        self.inner.release_locked().await
    }

    /// Releases the lock whoever holds it. Meant for administration: the
    /// holder is not told and may still be working.
    ///
    /// # Errors
    /// [`LockError::Store`] on failure.
    pub async fn force_release(&self) -> Result<(), LockError> {
        let _op = self.inner.op.lock().await;
        self.inner.store.force_delete(&self.inner.key).await?;
        self.inner.mark_released();
        tracing::debug!(key = %self.inner.key, "lock force-released");
        Ok(())
    }

    /// Extends the hold from now by `ttl`, or by the lock's own TTL with `None`.
    /// An expired lock is never revived, even if nobody took it.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when this owner no longer holds the lock;
    /// [`LockError::Store`] on failure.
    pub async fn extend(&self, ttl: Option<Duration>) -> Result<(), LockError> {
        let ttl = match ttl {
            None => Ttl::Default,
            Some(ttl) => ttl.into_ttl()?,
        };
        self.extend_with(ttl).await
    }

    /// Extends the hold from now by any TTL form: `"5s"`, `5000`,
    /// [`Ttl::Never`], or [`Ttl::Default`] for the lock's own TTL.
    ///
    /// # Errors
    /// [`LockError::InvalidDuration`] for a bad duration, otherwise as
    /// [`extend`](Self::extend).
    pub async fn extend_with(&self, ttl: impl IntoTtl) -> Result<(), LockError> {
        let ttl = ttl.into_ttl()?.resolve(self.inner.ttl);
        let inner = &self.inner;
        let _op = inner.op.lock().await;
        let sent_at = SystemTime::now();
        match inner.store.extend(&inner.key, &inner.owner, ttl).await {
            Ok(()) => {
                inner.mark_held(sent_at, ttl, None);
                tracing::debug!(key = %inner.key, ?ttl, "lock extended");
                Ok(())
            }
            Err(e @ LockError::NotOwned { .. }) => {
                inner.mark_released();
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Acquires the lock (retrying per the policy), runs `work`, and releases
    /// the lock — also when `work` returns an error value, panics, or when the
    /// future returned by `run` is dropped (then the release runs in the
    /// background).
    ///
    /// **If the lock expired before `work` finished**, `run` returns
    /// [`LockError::Expired`] and drops `work`'s output: another holder may have
    /// run at the same time, and a result that silently hid it would be worse
    /// than none. Give `work` a TTL with margin, [`extend`](Self::extend) from
    /// inside it, or pass [`fencing_token`](Self::fencing_token) to the
    /// resource. A panic inside `work` is re-raised after the release.
    ///
    /// # Errors
    /// [`LockError::Timeout`] if the lock could not be taken,
    /// [`LockError::Expired`] as above, [`LockError::Store`] if the store
    /// failed to acquire or release.
    pub async fn run<F, Fut, T>(&self, work: F) -> Result<T, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.acquire().await?;
        self.run_held(work).await
    }

    /// Like [`run`](Self::run) but tries once: `Ok(None)` without running
    /// `work` if someone else holds the lock.
    ///
    /// # Errors
    /// As [`run`](Self::run), without `Timeout`.
    pub async fn run_immediately<F, Fut, T>(&self, work: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        if !self.acquire_immediately().await? {
            return Ok(None);
        }
        self.run_held(work).await.map(Some)
    }

    async fn run_held<F, Fut, T>(&self, work: F) -> Result<T, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut on_drop = LockGuard::new(self.share());
        let work = std::pin::pin!(work());
        let outcome = CatchPanic(work).await;
        // Still armed during the release: if this future is dropped mid-call,
        // the guard sends another (owner-checked, so harmless) release.
        let released = self.release().await;
        on_drop.disarm();
        let value = match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match released {
            Ok(()) => Ok(value),
            Err(LockError::NotOwned { key }) => {
                tracing::warn!(key = %key, "lock expired while its protected section ran");
                Err(LockError::Expired { key })
            }
            Err(e) => Err(e),
        }
    }

    /// Serializes the lock (key, owner, TTL, expiry, fencing token) so another
    /// process can [`restore_lock`](crate::LockFactory::restore_lock) it and
    /// release or extend it. The string contains the owner id: treat it as a
    /// secret, since it is the right to release the lock.
    pub fn serialize(&self) -> String {
        crate::serialize::to_string(self)
    }

    /// A second handle on the same hold (same owner, shared state), for guards.
    pub(crate) fn share(&self) -> Lock {
        Lock {
            inner: self.inner.clone(),
        }
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The owner is the right to release: never print it.
        f.debug_struct("Lock")
            .field("key", &self.inner.key)
            .field("store", &self.inner.store.name())
            .field("ttl", &self.inner.ttl)
            .field("state", &*self.inner.state())
            .finish_non_exhaustive()
    }
}

/// Whether a lease of `ttl` requested at `sent_at` is over by the local clock.
fn lease_over(sent_at: SystemTime, ttl: Option<Duration>) -> bool {
    ttl.and_then(|ttl| sent_at.checked_add(ttl))
        .is_some_and(|end| SystemTime::now() >= end)
}

fn expired_at(expires_at: Option<SystemTime>) -> bool {
    expires_at.is_some_and(|at| SystemTime::now() >= at)
}
