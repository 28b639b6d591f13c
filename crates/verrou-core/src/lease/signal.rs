//! The lost-lease signal, and the shared lease view it is computed from.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

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
    view: Mutex<LeaseView>,
    changed: Notify,
    /// Told when the lease ends, however that is noticed: by a call to
    /// [`end`](Self::end) or by a reader of the view finding its vouched time
    /// over. Dropped once nothing more is to be told, which closes the
    /// lease's span.
    watch: Mutex<Option<LeaseWatch>>,
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
}

impl Lease {
    pub(crate) fn new(view: LeaseView) -> Self {
        Lease {
            view: Mutex::new(view),
            changed: Notify::new(),
            watch: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LeaseView> {
        // Every critical section is a few plain assignments; a poisoned
        // mutex still holds a consistent view.
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn watch(&self) -> MutexGuard<'_, Option<LeaseWatch>> {
        // Only ever replaced whole; a poisoned mutex still holds a value.
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Has `watch` told when the lease ends.
    pub(crate) fn observe(&self, watch: LeaseWatch) {
        *self.watch() = Some(watch);
    }

    /// The view now, ending the lease first if its vouched time is over.
    pub(crate) fn view(&self) -> LeaseView {
        let mut view = self.lock();
        if let Some(reason) = view.overdue(Instant::now()) {
            view.ended = Some(reason);
            drop(view);
            self.changed.notify_waiters();
            self.report(reason, None);
            return *self.lock();
        }
        *view
    }

    /// Ends the lease; the first reason wins. Returns whether this call ended it.
    pub(crate) fn end(&self, reason: LossReason) -> bool {
        let (first, overdue) = {
            let mut view = self.lock();
            let first = view.ended.is_none();
            // Only observed: the reason stays the caller's, as it always was.
            let overdue = view.overdue(Instant::now());
            if first {
                view.ended = Some(reason);
            }
            (first, overdue)
        };
        self.changed.notify_waiters();
        if first {
            self.report(reason, overdue);
        }
        first
    }

    fn report(&self, reason: LossReason, overdue: Option<LossReason>) {
        let mut watch = self.watch();
        if let Some(observer) = watch.as_mut()
            && !observer.ended(reason, overdue)
        {
            *watch = None;
        }
    }

    /// The store answered the release of this (released) lease; `gone` when
    /// it no longer held it. Nothing more is told after this.
    pub(crate) fn release_answered(&self, gone: bool) {
        let watch = self.watch().take();
        if let Some(watch) = watch {
            watch.release_answered(gone);
        }
    }

    /// Records a store confirmation of the lease (an extend or renewal sent
    /// at some instant) as vouched until `until`. A lease that already ended
    /// stays ended: an answer that arrives after the signal fired cannot
    /// un-fire it.
    pub(crate) fn vouch(&self, until: Option<Instant>) -> bool {
        let mut view = self.lock();
        if view.ended.is_some() {
            return false;
        }
        view.vouched_until = until;
        view.verified = true;
        drop(view);
        self.changed.notify_waiters();
        true
    }

    /// Stops counting on a renewal task (it stopped), so that running out
    /// of time reads as an expiry.
    pub(crate) fn set_renewing(&self, renewing: bool) {
        self.lock().renewing = renewing;
        self.changed.notify_waiters();
    }

    /// A future that completes on the next change of the view; register it
    /// (`enable`) before reading the view so no change is missed.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
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
    pub(crate) lease: Arc<Lease>,
}

impl LostSignal {
    /// Completes when the lease ends, with the reason. Completes at once if
    /// it already has. Cancel-safe.
    pub async fn lost(&self) -> LossReason {
        self.lease.ended().await
    }

    /// Whether the lease has ended (checked against the local clock now).
    pub fn is_lost(&self) -> bool {
        self.lease.view().ended.is_some()
    }

    /// Why the lease ended, `None` while it is still vouched for.
    pub fn reason(&self) -> Option<LossReason> {
        self.lease.view().ended
    }
}

impl fmt::Debug for LostSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LostSignal")
            .field("reason", &self.reason())
            .finish()
    }
}
