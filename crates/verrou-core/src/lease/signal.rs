//! The lost-lease signal, and the shared lease view it is computed from.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::grant::Grant;
use crate::observe::LeaseWatch;

/// Why a lease ended, as told by its [`LostSignal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// The holder released the lease (or started to). Child tasks holding
    /// the signal stop here too: nothing they do is protected any more.
    Released,
    /// The lease was not renewed and the local clock no longer vouches for
    /// it: its TTL (less the drift margin) has run out.
    Expired,
    /// The store says this grant no longer holds the key (it expired there,
    /// or was force-released and maybe taken by someone else).
    NotOwned,
    /// The lease was renewing, but no renewal was confirmed in time (the
    /// store failed or did not answer, or this process was paused) before
    /// the local clock stopped vouching for it.
    Unreachable,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Released => "the lease was released",
            LossReason::Expired => "the lease's TTL ran out",
            LossReason::NotOwned => "the store no longer holds this grant",
            LossReason::Unreachable => {
                "renewals failed until the lease could no longer be vouched for"
            }
        })
    }
}

/// The local view of one grant's lease, shared by the grant, its renewal task
/// and every [`LostSignal`].
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// The view and its observer under one mutex: ending a lease updates
    /// both, and a release ends one on every call.
    state: Mutex<State>,
    changed: Notify,
    /// Set, for good, by the first [`changed`](Self::changed): until then
    /// nobody can be waiting, and a change wakes nobody (`notify_waiters`
    /// locks the notifier's list even when it is empty, on every release).
    awaited: AtomicBool,
    /// Set (after the view's `ended`) once the lease has ended: lets
    /// [`has_ended`](Self::has_ended) answer without the mutex.
    over: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    view: LeaseView,
    /// Told when the lease ends, however that is noticed: by a call to
    /// [`Lease::end`] or by a reader of the view finding its vouched time
    /// over. Dropped once nothing more is to be told, which closes the
    /// lease's span.
    watch: Option<LeaseWatch>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LeaseView {
    /// Until when the local monotonic clock vouches for the lease; `None`
    /// when it never expires.
    pub(crate) vouched_until: Option<Instant>,
    /// Whether the store has confirmed this grant (a restored grant is not,
    /// until it is extended).
    pub(crate) verified: bool,
    /// Whether a renewal task keeps the lease alive (then running out of
    /// vouched time means the renewals failed).
    pub(crate) renewing: bool,
    /// Set once, never cleared: a lease that ended never comes back.
    pub(crate) ended: Option<LossReason>,
}

impl LeaseView {
    /// Why the lease ends by the local clock at `now`, if it has not ended
    /// yet and its vouched time is over.
    fn overdue(&self, now: Instant) -> Option<LossReason> {
        let over = self.ended.is_none()
            && self.verified
            && self.vouched_until.is_some_and(|until| now >= until);
        over.then_some(if self.renewing {
            LossReason::Unreachable
        } else {
            LossReason::Expired
        })
    }

    /// Whether the clock could end the lease: running, confirmed, with an
    /// end. Only then is the clock read (a read costs tens of nanoseconds,
    /// more than the rest of a view).
    fn runs_out(&self) -> bool {
        self.ended.is_none() && self.verified && self.vouched_until.is_some()
    }
}

impl State {
    /// Ends the lease for `reason` (it has not ended yet) and tells the
    /// observer; `overdue` says, given the time, whether the clock had ended
    /// it first. The clock is read (unless the caller has `now`) only when
    /// the observer's report can be seen: a release nobody traces costs no
    /// clock read here.
    fn end(
        &mut self,
        over: &AtomicBool,
        reason: LossReason,
        overdue: impl FnOnce(Instant) -> Option<LossReason>,
        now: Option<Instant>,
    ) {
        self.view.ended = Some(reason);
        over.store(true, Ordering::Release);
        let Some(observer) = self.watch.as_mut() else {
            return;
        };
        let now = now.or_else(|| observer.observed().then(Instant::now));
        if !observer.ended(reason, now.and_then(overdue), now) {
            self.watch = None;
        }
    }
}

impl Lease {
    pub(crate) fn new(view: LeaseView) -> Self {
        Lease {
            state: Mutex::new(State { view, watch: None }),
            changed: Notify::new(),
            awaited: AtomicBool::new(false),
            over: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few plain assignments (and the
        // observer's report, which cannot leave them halfway); a poisoned
        // mutex still holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Has `watch` told when the lease ends.
    pub(crate) fn observe(&self, watch: LeaseWatch) {
        self.lock().watch = Some(watch);
    }

    /// Whether the lease is known to have ended, without the mutex. `false`
    /// does not mean it runs: its vouched time may be over unnoticed (ask
    /// [`view`](Self::view)).
    pub(crate) fn has_ended(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// The view now, ending the lease first if its vouched time is over.
    pub(crate) fn view(&self) -> LeaseView {
        let mut state = self.lock();
        if !state.view.runs_out() {
            return state.view;
        }
        let now = Instant::now();
        let Some(reason) = state.view.overdue(now) else {
            return state.view;
        };
        state.end(&self.over, reason, |_| None, Some(now));
        let view = state.view;
        drop(state);
        self.wake();
        view
    }

    /// Ends the lease; the first reason wins. Returns whether this call ended it.
    pub(crate) fn end(&self, reason: LossReason) -> bool {
        let mut state = self.lock();
        let before = state.view;
        let first = before.ended.is_none();
        if first {
            // Whether the clock had already run the lease out is only
            // reported: the reason stays the caller's, as it always was.
            state.end(&self.over, reason, |now| before.overdue(now), None);
        }
        drop(state);
        self.wake();
        first
    }

    /// The store answered the release of this (released) lease; `gone` when
    /// it no longer held it. Nothing more is told after this.
    pub(crate) fn release_answered(&self, gone: bool) {
        let watch = self.lock().watch.take();
        if let Some(watch) = watch {
            watch.release_answered(gone);
        }
    }

    /// Records a store confirmation of the lease (an extend or renewal sent
    /// at some instant) as vouched until `until`. A lease that already ended
    /// stays ended: an answer that arrives after the signal fired cannot
    /// un-fire it.
    pub(crate) fn vouch(&self, until: Option<Instant>) -> bool {
        let mut state = self.lock();
        if state.view.ended.is_some() {
            return false;
        }
        state.view.vouched_until = until;
        state.view.verified = true;
        drop(state);
        self.wake();
        true
    }

    /// Stops counting on a renewal task (it stopped), so that running out
    /// of time reads as an expiry.
    pub(crate) fn set_renewing(&self, renewing: bool) {
        self.lock().view.renewing = renewing;
        self.wake();
    }

    /// A future that completes on the next change of the view; register it
    /// (`enable`) before reading the view so no change is missed.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        // Before the `Notified` exists, and so before its owner reads the
        // view: a change made after that read sees the flag (the view's
        // mutex orders them) and wakes it.
        self.awaited.store(true, Ordering::SeqCst);
        self.changed.notified()
    }

    /// Tells every waiter that the view changed (call after changing it).
    fn wake(&self) {
        if self.awaited.load(Ordering::SeqCst) {
            self.changed.notify_waiters();
        }
    }

    /// Waits until the lease ends, by a call to [`end`](Self::end) or by
    /// its vouched time running out.
    pub(crate) async fn ended(&self) -> LossReason {
        loop {
            let changed = self.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let view = self.view();
            if let Some(reason) = view.ended {
                return reason;
            }
            match view.vouched_until.filter(|_| view.verified) {
                Some(until) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// Fires when a held lease is lost, can no longer be vouched for by the
/// local clock, or is released — whichever comes first, and always before
/// the store's TTL can have run out (given the
/// [drift margin](crate::LeasePolicy)).
///
/// Cheap to clone: hand a clone to each child task that writes under the
/// lock, the way a cancellation token is handed out, and have it stop when
/// [`lost`](Self::lost) completes. Get one from [`LockGuard::lost`](crate::LockGuard::lost)
/// or [`Lock::lost`](crate::Lock::lost).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// use verrou_core::{LockFactory, LossReason};
/// use verrou_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new());
/// let guard = locks.create_lock("report", "10s")?.acquire_guard().await?;
/// let lost = guard.lost();
/// let child = tokio::spawn(async move { lost.lost().await });
/// guard.release().await?;
/// assert_eq!(child.await.unwrap(), LossReason::Released);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LostSignal {
    pub(crate) grant: Arc<Grant>,
}

impl LostSignal {
    /// Completes when the lease ends, with the reason. Completes at once if
    /// it already has. Cancel-safe.
    pub async fn lost(&self) -> LossReason {
        self.grant.lease.ended().await
    }

    /// Whether the lease has ended (checked against the local clock now).
    pub fn is_lost(&self) -> bool {
        self.grant.lease.view().ended.is_some()
    }

    /// Why the lease ended, `None` while it is still vouched for.
    pub fn reason(&self) -> Option<LossReason> {
        self.grant.lease.view().ended
    }
}

impl fmt::Debug for LostSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LostSignal")
            .field("reason", &self.reason())
            .finish()
    }
}
