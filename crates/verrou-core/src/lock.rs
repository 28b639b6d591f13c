//! `Lock`: a handle on one key, holding at most one grant at a time.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::lease::acquire::{Attempt, retry};
use crate::lease::cancel::{Cleanup, InFlight};
use crate::lease::gate::{Turn, Turns};
use crate::lease::grant::{Grant, Held, vouched_until};
use crate::lease::signal::{LossReason, LostSignal};
use crate::observe::{self, Acquire, Call, LeaseWatch, Stop};
use crate::owner::{GrantOwner, Owner};
use crate::{
    Acquisition, Expiry, IntoTtl, LeasePolicy, LockError, LockGuard, LockStore, RetryPolicy, Ttl,
};

/// A named lock on one store: a handle that holds at most one *grant* (one
/// successful acquisition) at a time.
///
/// A `Lock` is a handle: creating it changes nothing in the store. Create it
/// with [`LockFactory::create_lock`](crate::LockFactory::create_lock) (or
/// [`Verrou::create_lock`](crate::Verrou::create_lock)), then take it with
/// [`run`](Self::run), [`acquire_guard`](Self::acquire_guard) or
/// [`acquire`](Self::acquire) / [`release`](Self::release).
///
/// # Sharing a handle
///
/// `Lock` is `Send + Sync`; tasks may share one through `&Lock` or
/// `Arc<Lock>`. They take turns, as with Node's Verrou: while the handle
/// holds a grant, another `acquire` through it waits (within its retry
/// policy's timeout) for the handle's own release, and `try_acquire` returns
/// `false` without asking the store. [`release`](Self::release),
/// [`extend`](Self::extend) and the `is_held` family act on the handle's
/// current grant, whichever task calls them; a [`LockGuard`] and
/// [`run`](Self::run) act only on the grant they took. Waiting for the lock
/// never blocks releasing or extending it.
///
/// Every call made for a grant names that grant: a random-owner handle gives
/// each grant its own owner string, so a release (or a renewal, or the
/// clean-up of a cancelled call) sent for one grant can never free a later
/// one, whatever order the network delivers them in. The next acquire
/// through a handle is sent only after the previous grant's release was
/// answered.
///
/// Locks are **not re-entrant**.
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
    pub(crate) key: Arc<str>,
    pub(crate) owner: Owner,
    pub(crate) ttl: Expiry,
    pub(crate) retry: RetryPolicy,
    pub(crate) lease: LeasePolicy,
    /// The handle's turn to hold a grant: one at a time.
    turns: Arc<Turns>,
    current: Mutex<Option<Held>>,
    grants: AtomicU64,
}

/// A grant read back from a serialized lock.
pub(crate) struct Restored {
    pub(crate) owner: String,
    pub(crate) fencing_token: Option<u64>,
}

impl LockInner {
    fn current(&self) -> MutexGuard<'_, Option<Held>> {
        // Each critical section is one `Option` swap; a poisoned mutex still
        // holds a consistent value.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn grant(&self) -> Option<Arc<Grant>> {
        self.current().as_ref().map(|held| held.grant.clone())
    }

    /// Takes the handle's grant out if it is grant `id` (any grant for `None`).
    fn take(&self, id: Option<u64>) -> Option<Held> {
        let mut current = self.current();
        match (&*current, id) {
            (Some(held), Some(id)) if held.grant.id != id => None,
            _ => current.take(),
        }
    }

    fn margin(&self) -> Duration {
        match self.ttl {
            Expiry::Never => Duration::ZERO,
            Expiry::After(ttl) => self.lease.drift_margin(ttl),
        }
    }

    /// Makes `grant` the handle's, its lease watched (and renewed, if the
    /// policy says so). Called outside the acquire's span: the lease's span
    /// outlives the acquire, so it is a sibling, under the caller's span.
    /// `granted_at` is when the store's grant was seen, `None` for a restored
    /// (unverified) grant.
    fn install(self: &Arc<Self>, grant: Arc<Grant>, turn: Turn, granted_at: Option<Instant>) {
        let watch = LeaseWatch::start(
            &self.key,
            self.store.name(),
            grant.fencing_token,
            granted_at,
        );
        let span = watch.span().clone();
        grant.lease.observe(watch);
        if self.lease.renews()
            && let Expiry::After(ttl) = self.ttl
        {
            let every = self.lease.renew_interval(ttl);
            crate::lease::renew::spawn(
                self.store.clone(),
                self.key.clone(),
                grant.clone(),
                every,
                span,
            );
        }
        *self.current() = Some(Held { grant, turn });
    }

    /// Releases grant `id` (the current one for `None`) in the background.
    pub(crate) fn release_in_background(&self, id: Option<u64>, why: &'static str) {
        if let Some(held) = self.take(id) {
            self.cleanup_for(held, why).spawn();
        }
    }

    fn cleanup_for(&self, held: Held, why: &'static str) -> Cleanup {
        held.grant.end(LossReason::Released);
        Cleanup {
            store: self.store.clone(),
            key: self.key.clone(),
            owner: held.grant.owner.clone(),
            pending: None,
            grant: Some(held.grant.clone()),
            turn: Some(held.turn.clone()),
            why,
        }
    }

    /// Releases grant `id` (the current one for `None`).
    pub(crate) async fn release(&self, id: Option<u64>) -> Result<(), LockError> {
        let call = Call::release(&self.key, self.store.name(), None);
        let result = self.release_grant(id).instrument(call.span()).await;
        call.finish(&result);
        result
    }

    async fn release_grant(&self, id: Option<u64>) -> Result<(), LockError> {
        let Some(held) = self.take(id) else {
            return Err(LockError::not_owned(&self.key));
        };
        // The signal fires before the release is sent: child tasks stop
        // before anyone else can be granted the key.
        held.grant.end(LossReason::Released);
        let in_flight = InFlight::release(&self.store, &self.key, held, "release was cancelled");
        let result = match in_flight.grant() {
            Some(grant) => {
                let _calls = grant.calls.lock().await;
                self.store.release(&self.key, &grant.owner).await
            }
            None => Err(LockError::not_owned(&self.key)),
        };
        let Some(held) = in_flight.disarm() else {
            return result;
        };
        match &result {
            Ok(()) => held.grant.lease.release_answered(false),
            Err(LockError::NotOwned { .. }) => held.grant.lease.release_answered(true),
            Err(_) => {
                // Nothing is known: keep the grant (and the handle's turn) so
                // that `release` can be called again.
                let mut current = self.current();
                if current.is_none() {
                    *current = Some(held);
                }
            }
        }
        result
    }

    /// Extends `grant` to `expiry` from now.
    pub(crate) async fn extend(&self, grant: &Arc<Grant>, expiry: Expiry) -> Result<(), LockError> {
        let call = Call::extend(&self.key, self.store.name(), expiry);
        let result = self
            .extend_grant(grant, expiry)
            .instrument(call.span())
            .await;
        call.finish(&result);
        result
    }

    async fn extend_grant(&self, grant: &Arc<Grant>, expiry: Expiry) -> Result<(), LockError> {
        let _calls = grant.calls.lock().await;
        if grant.ended().is_some() {
            // Released, lost, or no longer vouched for: the holder has been
            // told (by the signal) that it lost the lock, and an expired
            // lease is never revived, even if the store still counts it.
            return Err(LockError::not_owned(&self.key));
        }
        let sent_at = Instant::now();
        match self.store.extend(&self.key, &grant.owner, expiry).await {
            Ok(()) => {
                if !grant.confirm(sent_at, expiry) {
                    // The local clock gave the lease up while the extend
                    // travelled (the signal fired): a holder that was told it
                    // lost the lock must not be told otherwise, and the lease
                    // the store just renewed is given back (this grant's
                    // owner only) rather than left to a TTL nobody watches.
                    if grant.ended() != Some(LossReason::Released) {
                        if let Err(error) = self.store.release(&self.key, &grant.owner).await {
                            observe::store_failed(self.store.name(), "release", &error);
                        }
                        drop(self.take(Some(grant.id)));
                    }
                    return Err(LockError::not_owned(&self.key));
                }
                Ok(())
            }
            Err(e @ LockError::NotOwned { .. }) => {
                grant.end(LossReason::NotOwned);
                // The store holds nothing for this grant: the handle may take
                // its next turn.
                drop(self.take(Some(grant.id)));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl Lock {
    pub(crate) fn new(
        store: Arc<dyn LockStore>,
        key: String,
        owner: Owner,
        ttl: Expiry,
        retry: RetryPolicy,
        lease: LeasePolicy,
    ) -> Self {
        Lock {
            inner: Arc::new(LockInner {
                store,
                key: key.into(),
                owner,
                ttl,
                retry,
                lease,
                turns: Arc::default(),
                current: Mutex::new(None),
                grants: AtomicU64::new(0),
            }),
        }
    }

    /// A handle holding a restored, not yet verified grant.
    pub(crate) fn restored(self, restored: Restored) -> Self {
        let inner = &self.inner;
        // A new handle's turn is free.
        if let Some(turn) = inner.turns.try_take() {
            let id = inner.grants.fetch_add(1, Ordering::Relaxed) + 1;
            let grant = Grant::unverified(
                id,
                restored.owner.into(),
                restored.fencing_token,
                inner.ttl,
                inner.margin(),
            );
            inner.install(Arc::new(grant), turn, None);
        }
        self
    }

    /// The lock's key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The owner string of the grant this handle holds; before the first
    /// grant (or for a caller-chosen owner), the handle's owner id.
    ///
    /// A random-owner handle gives each grant its own owner string (its
    /// 128-bit owner id and the grant's number), so that no call sent for
    /// one grant can match another at the store.
    pub fn owner(&self) -> String {
        match self.inner.grant() {
            Some(grant) => grant.owner.to_string(),
            None => self.inner.owner.base().to_owned(),
        }
    }

    /// The TTL this lock is acquired with.
    pub fn ttl(&self) -> Expiry {
        self.inner.ttl
    }

    /// The fencing token of the grant this handle holds, `None` when it
    /// holds none or the store has no tokens.
    ///
    /// Pass it to the resource you protect and have it refuse any token lower
    /// than the highest it has seen: that stops a holder whose lease ran out
    /// while it was paused.
    pub fn fencing_token(&self) -> Option<u64> {
        self.inner.grant().and_then(|grant| grant.fencing_token)
    }

    /// Whether this handle holds a grant that the store confirmed and the
    /// local monotonic clock still vouches for (see [`LeasePolicy`]). Ask
    /// the store with [`is_locked`](Self::is_locked).
    ///
    /// A handle from [`restore_lock`](crate::LockFactory::restore_lock) is
    /// not held until an [`extend`](Self::extend) confirms it with the store.
    pub fn is_held(&self) -> bool {
        self.inner.grant().is_some_and(|grant| grant.is_held())
    }

    /// Whether this handle's grant was confirmed but is no longer vouched for
    /// (its TTL ran out by the local clock, or the store said it is gone).
    pub fn is_expired(&self) -> bool {
        self.inner.grant().is_some_and(|grant| grant.is_expired())
    }

    /// How long the local clock still vouches for this handle's grant:
    /// `None` when it holds none, it is unverified or it never expires;
    /// `Some(ZERO)` once it ran out.
    pub fn remaining_time(&self) -> Option<Duration> {
        self.inner.grant().and_then(|grant| grant.remaining())
    }

    /// The lost signal of this handle's current grant, `None` when it holds
    /// none. See [`LostSignal`].
    pub fn lost(&self) -> Option<LostSignal> {
        self.inner.grant().map(|grant| grant.signal())
    }

    /// Asks the store whether anyone holds this key now.
    ///
    /// # Errors
    /// [`LockError::Store`] when the store fails.
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        let store = &self.inner.store;
        let answer = store.is_locked(&self.inner.key).await;
        if let Err(error) = &answer {
            observe::store_failed(store.name(), "is_locked", error);
        }
        answer
    }

    /// Acquires the lock, retrying with the factory's retry policy.
    ///
    /// Dropping the returned future at any point is safe: if a request to the
    /// store was in flight, an owner-checked release is sent in the
    /// background once its answer arrives, so that a lock granted to an
    /// abandoned call does not linger.
    ///
    /// # Errors
    /// [`LockError::Timeout`] when the policy gives up (waiting for this
    /// handle's own release counts); [`LockError::TtlShorterThanRoundTrip`]
    /// when grants keep arriving after their TTL; [`LockError::Store`] when
    /// the store fails (the acquire is not retried on a store error).
    pub async fn acquire(&self) -> Result<(), LockError> {
        let policy = self.inner.retry.clone();
        self.acquire_with(&policy).await
    }

    /// Acquires the lock with a retry policy for this call only. A policy of
    /// `n` attempts makes exactly `n` acquire calls to the store.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_with(&self, policy: &RetryPolicy) -> Result<(), LockError> {
        self.acquire_in(policy, |_| ()).await
    }

    /// Tries once, without waiting: `Ok(false)` if someone (this handle
    /// included) holds the lock.
    ///
    /// # Errors
    /// [`LockError::Store`] when the store fails.
    pub async fn try_acquire(&self) -> Result<bool, LockError> {
        match self.acquire_in(&RetryPolicy::no_retry(), |_| ()).await {
            Ok(()) => Ok(true),
            Err(LockError::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Acquires the lock; the grant, for a guard.
    pub(crate) async fn acquire_grant(
        &self,
        policy: &RetryPolicy,
    ) -> Result<Arc<Grant>, LockError> {
        self.acquire_in(policy, Arc::clone).await
    }

    /// Acquires the lock and returns what `keep` takes from the grant (a
    /// guard's reference, or nothing): a plain acquire then does not pay
    /// for a reference it would drop at once.
    async fn acquire_in<T>(
        &self,
        policy: &RetryPolicy,
        keep: impl FnOnce(&Arc<Grant>) -> T,
    ) -> Result<T, LockError> {
        let inner = &self.inner;
        let started = Instant::now();
        let mut observed = Acquire::start(&inner.key, inner.store.name(), started);
        let span = observed.span();
        let taken = self
            .take_grant(policy, started, &mut observed)
            .instrument(span)
            .await;
        observed.finish(&taken, taken.as_ref().ok().map(|taken| taken.at));
        let Taken { grant, turn, at } = taken?;
        let kept = keep(&grant);
        inner.install(grant, turn, Some(at));
        Ok(kept)
    }

    /// The handle's turn, then a grant from the store.
    async fn take_grant(
        &self,
        policy: &RetryPolicy,
        started: Instant,
        observed: &mut Acquire,
    ) -> Result<Taken, LockError> {
        let inner = &self.inner;
        let (turn, at_once) = self.turn(policy, started, observed).await?;
        let id = inner.grants.fetch_add(1, Ordering::Relaxed) + 1;
        let owner = inner.owner.for_grant(id);
        // When the turn came at once, the first attempt is sent right after
        // `started` (nothing awaited in between): its lease is counted from
        // `started`, a little early, which only shortens it, and the clock
        // is not read again.
        let mut sent_at = at_once.then_some(started);
        let (owner_ref, turn_ref) = (&owner, &turn);
        let granted = retry(
            &inner.key,
            inner.ttl.duration(),
            policy,
            started,
            observed,
            move || attempt(inner, owner_ref, turn_ref, id, sent_at.take()),
            || async {
                // A failing announcement channel only costs latency.
                match inner.store.watch_release(&inner.key).await {
                    Ok(watch) => watch,
                    Err(error) => {
                        observe::store_failed(inner.store.name(), "watch_release", &error);
                        None
                    }
                }
            },
        )
        .await?;
        Ok(Taken {
            grant: granted.grant,
            turn,
            at: granted.at,
        })
    }

    /// Waits for the handle's turn: its previous grant released and
    /// answered, or ended by itself (expired, lost: the store no longer
    /// counts it, and its next acquire uses a new owner string or waits for
    /// the old lease like anyone else). `try` policies (one attempt) do not
    /// wait. Says whether the turn came at once (nothing was awaited).
    async fn turn(
        &self,
        policy: &RetryPolicy,
        started: Instant,
        observed: &mut Acquire,
    ) -> Result<(Turn, bool), LockError> {
        let inner = &self.inner;
        let deadline = policy.timeout().and_then(|t| started.checked_add(t));
        let timeout = || LockError::Timeout {
            key: inner.key.to_string(),
            attempts: 0,
            elapsed: started.elapsed(),
        };
        let mut at_once = true;
        loop {
            if let Some(turn) = inner.turns.try_take() {
                return Ok((turn, at_once));
            }
            let current = inner.grant();
            if let Some(grant) = &current
                && grant.ended().is_some()
            {
                drop(inner.take(Some(grant.id)));
                continue;
            }
            if policy.attempts() == Some(1) {
                observed.stopped(Stop::Attempts);
                return Err(timeout());
            }
            at_once = false;
            let ended = async {
                match &current {
                    Some(grant) => drop(grant.lease.ended().await),
                    None => std::future::pending().await,
                }
            };
            let wait = async {
                tokio::select! {
                    turn = inner.turns.take() => Some(turn),
                    () = ended => None,
                }
            };
            let turn = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, wait).await.map_err(|_| {
                    observed.stopped(Stop::Deadline);
                    timeout()
                })?,
                None => wait.await,
            };
            if let Some(turn) = turn {
                return Ok((turn, false));
            }
        }
    }

    /// Acquires the lock and returns a guard that releases this grant when
    /// dropped (in the background, on the current tokio runtime), so that `?`
    /// and early returns cannot leave the lock held until its TTL. Call
    /// [`LockGuard::release`] to release and see the outcome.
    ///
    /// With a renewing [`LeasePolicy`] the lease is kept alive until the
    /// guard is released or dropped; watch [`LockGuard::lost`].
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_guard(&self) -> Result<LockGuard, LockError> {
        let policy = self.inner.retry.clone();
        let grant = self.acquire_grant(&policy).await?;
        Ok(LockGuard::new(self.share(), grant))
    }

    /// Like [`acquire_guard`](Self::acquire_guard) but tries once:
    /// `Ok(None)` if someone holds the lock.
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire).
    pub async fn try_acquire_guard(&self) -> Result<Option<LockGuard>, LockError> {
        match self.acquire_grant(&RetryPolicy::no_retry()).await {
            Ok(grant) => Ok(Some(LockGuard::new(self.share(), grant))),
            Err(LockError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Releases the grant this handle holds.
    ///
    /// The lost signal of the grant fires before the release is sent. If
    /// this future is dropped mid-call, the release is finished in the
    /// background.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when the handle holds no grant, or the store
    /// says the grant is gone (expired or force-released; nothing is
    /// changed); [`LockError::Store`] on failure — the handle then keeps the
    /// grant, and `release` may be called again.
    pub async fn release(&self) -> Result<(), LockError> {
        self.inner.release(None).await
    }

    /// Releases the lock whoever holds it. Meant for administration: the
    /// holder is not told (beyond a `NotOwned` at its next extend or renewal)
    /// and may still be working. This handle's own grant, if any, ends.
    ///
    /// # Errors
    /// [`LockError::Store`] on failure.
    pub async fn force_release(&self) -> Result<(), LockError> {
        let (store, key) = (&self.inner.store, &self.inner.key);
        if let Err(error) = store.force_release(key).await {
            observe::store_failed(store.name(), "force_release", &error);
            return Err(error);
        }
        if let Some(held) = self.inner.take(None) {
            held.grant.end(LossReason::Released);
            held.grant.lease.release_answered(false);
        }
        tracing::debug!(key = %key, store = store.name(), "lock force-released");
        Ok(())
    }

    /// Extends this handle's grant by the lock's own TTL, from now. An
    /// expired lock is never revived, even if nobody took it. A restored
    /// handle is confirmed (held) once this succeeds.
    ///
    /// # Errors
    /// [`LockError::NotOwned`] when the handle holds no grant, the grant's
    /// lease has ended (its [`LostSignal`] fired: released, lost, or no
    /// longer vouched for by the local clock) or the store no longer holds
    /// it; [`LockError::Store`] on failure.
    pub async fn extend(&self) -> Result<(), LockError> {
        self.extend_by(Ttl::Default).await
    }

    /// Extends this handle's grant from now by any TTL form: `"5s"`, `5000`,
    /// a `Duration`, [`Ttl::Never`], or [`Ttl::Default`] for the lock's own
    /// TTL. Renewals then keep the new TTL.
    ///
    /// # Errors
    /// [`LockError::InvalidDuration`] for a bad duration, otherwise as
    /// [`extend`](Self::extend).
    pub async fn extend_by(&self, ttl: impl IntoTtl) -> Result<(), LockError> {
        let expiry = ttl.into_ttl()?.resolve(self.inner.ttl);
        let Some(grant) = self.inner.grant() else {
            return Err(LockError::not_owned(&self.inner.key));
        };
        self.inner.extend(&grant, expiry).await
    }

    /// Acquires the lock (retrying per the policy), runs `work`, and releases
    /// the lock — also when `work` returns an error value, panics, or when the
    /// future returned by `run` is dropped (then the release runs in the
    /// background). A panic inside `work` is re-raised after the release.
    ///
    /// **With a renewing [`LeasePolicy`]**, the lease is renewed while `work`
    /// runs, and `work` is raced against the [`LostSignal`]: if the lease is
    /// lost, `work`'s future is dropped at once — it stops at the `.await`
    /// it was suspended on, and nothing after it runs — the lock is
    /// released, and `run` returns [`LockError::LeaseLost`].
    ///
    /// **Without renewal**, if the lock expired before `work` finished,
    /// `run` returns [`LockError::Expired`] and drops `work`'s output:
    /// another holder may have run at the same time. Give `work` a TTL with
    /// margin, [`extend`](Self::extend) from inside it, or pass
    /// [`fencing_token`](Self::fencing_token) to the resource.
    ///
    /// # Errors
    /// [`LockError::Timeout`] if the lock could not be taken,
    /// [`LockError::LeaseLost`] / [`LockError::Expired`] as above,
    /// [`LockError::Store`] if the store failed to acquire or release.
    pub async fn run<F, Fut, T>(&self, work: F) -> Result<T, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.acquire_guard().await?;
        crate::lease::run::run(guard, work).await
    }

    /// Like [`run`](Self::run) but tries once: `Ok(None)` without running
    /// `work` if someone else holds the lock.
    ///
    /// # Errors
    /// As [`run`](Self::run), without `Timeout`.
    pub async fn try_run<F, Fut, T>(&self, work: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        match self.try_acquire_guard().await? {
            Some(guard) => crate::lease::run::run(guard, work).await.map(Some),
            None => Ok(None),
        }
    }

    /// Serializes the lock (key, owner of the current grant, TTL, fencing
    /// token) so another process can
    /// [`restore_lock`](crate::LockFactory::restore_lock) it and release or
    /// extend it. The string contains the owner: treat it as a secret, since
    /// it is the right to release the lock.
    pub fn serialize(&self) -> String {
        crate::serialize::to_string(self)
    }

    /// A second handle on the same state, for guards.
    pub(crate) fn share(&self) -> Lock {
        Lock {
            inner: self.inner.clone(),
        }
    }
}

/// A grant from the store and when its answer was seen.
struct Granted {
    grant: Arc<Grant>,
    at: Instant,
}

/// What `take_grant` hands back: the grant, the handle's turn, and when the
/// store's answer was seen (the grant's start, for the lease's span).
struct Taken {
    grant: Arc<Grant>,
    turn: Turn,
    at: Instant,
}

/// One acquire call for grant `id`, cleaned up if it is dropped or fails
/// ambiguously. `sent_at` is an instant at or before the call is sent, when
/// the caller has one.
async fn attempt(
    inner: &Arc<LockInner>,
    owner: &GrantOwner,
    turn: &Turn,
    id: u64,
    sent_at: Option<Instant>,
) -> Result<Attempt<Granted>, LockError> {
    let sent_at = sent_at.unwrap_or_else(Instant::now);
    // Boxed and owning its inputs: if this attempt is dropped mid-call, the
    // clean-up finishes the call in the background before releasing.
    let call = {
        let (inner, owner) = (inner.clone(), owner.clone());
        Box::pin(async move { inner.store.acquire(&inner.key, &owner, inner.ttl).await })
    };
    let mut in_flight = InFlight::acquire(
        &inner.store,
        &inner.key,
        owner,
        turn,
        call,
        "acquire was cancelled or failed",
    );
    let answer = in_flight.answer().await;
    let acquisition = match answer {
        Ok(acquisition) => acquisition,
        Err(error) => {
            // The acquire may have applied: release (owner-checked) in the
            // background before the handle's turn is given up.
            in_flight.arm();
            return Err(error);
        }
    };
    drop(in_flight.disarm());
    match acquisition {
        Acquisition::Held => Ok(Attempt::Busy),
        Acquisition::Acquired { fencing_token } => {
            let answered_at = Instant::now();
            let margin = inner.margin();
            if vouched_until(sent_at, inner.ttl, margin).is_some_and(|until| answered_at >= until) {
                // The answer took longer than the lease can be vouched for (a
                // paused process, a server stall, a TTL shorter than the round
                // trip): the key may already be someone else's. Let it lapse
                // (its store TTL is shorter than the round trip we just saw)
                // rather than release it: a release announces itself and
                // would wake every waiter for nothing.
                tracing::warn!(key = %inner.key, "lock granted after its lease could no longer be vouched for; letting it lapse");
                return Ok(Attempt::TooLate);
            }
            let grant = Grant::confirmed(
                id,
                owner.clone(),
                fencing_token,
                inner.ttl,
                margin,
                sent_at,
                inner.lease.renews(),
            );
            Ok(Attempt::Granted(Granted {
                grant: Arc::new(grant),
                at: answered_at,
            }))
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
            .field("held", &self.is_held())
            .field("fencing_token", &self.fencing_token())
            .finish_non_exhaustive()
    }
}
