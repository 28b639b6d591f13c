//! Clean-up of calls that were dropped or failed: always for *their* grant,
//! and finished in the background when the caller cannot wait.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tracing::Instrument;

use super::gate::Turn;
use super::grant::{Grant, Held};
use super::signal::LossReason;
use crate::observe::Call;
use crate::owner::GrantOwner;
use crate::{Acquisition, LockError, LockStore};

/// An acquire call to the store whose answer nobody has seen yet.
pub(crate) type PendingAcquire =
    Pin<Box<dyn Future<Output = Result<Acquisition, LockError>> + Send + 'static>>;

/// What must still reach the store for one grant (or one acquire attempt):
/// an owner-checked release of `owner`, after the pending acquire's answer
/// if there is one. The handle's turn is kept until it is done.
pub(crate) struct Cleanup {
    pub(crate) store: Arc<dyn LockStore>,
    pub(crate) key: Arc<str>,
    pub(crate) owner: GrantOwner,
    /// An acquire sent for `owner` whose answer has not arrived: a release
    /// sent now could overtake it (on another pooled connection, say) and
    /// the acquire would then grant a lock nobody frees.
    pub(crate) pending: Option<PendingAcquire>,
    pub(crate) grant: Option<Arc<Grant>>,
    pub(crate) turn: Option<Turn>,
    pub(crate) why: &'static str,
}

impl Cleanup {
    async fn finish(mut self) {
        if let Some(acquire) = self.pending.take()
            && let Ok(Acquisition::Held) = acquire.await
        {
            return;
        }
        let call = Call::release(&self.key, self.store.name(), Some(self.why));
        let released = async {
            let _calls = match &self.grant {
                Some(grant) => {
                    grant.end(LossReason::Released);
                    Some(grant.calls.lock().await)
                }
                None => None,
            };
            self.store.release(&self.key, &self.owner).await
        }
        .instrument(call.span())
        .await;
        let answered = match &released {
            Ok(()) => Some(false),
            Err(LockError::NotOwned { .. }) => Some(true),
            Err(error) => {
                tracing::warn!(parent: &call.span(), %error, "background release failed; the lock stays held until its TTL");
                None
            }
        };
        if let (Some(gone), Some(grant)) = (answered, &self.grant) {
            grant.lease.release_answered(gone);
        }
        call.finish(&released);
        // The handle's turn goes only now, after the answer: only now may
        // the handle send its next acquire.
        drop(self.turn.take());
    }

    /// Finishes the clean-up on the current tokio runtime. Without a runtime,
    /// or when the runtime shuts down before the task ran, it is tried once
    /// in place (an in-process store answers at once); if that cannot finish
    /// it, a WARN names the key.
    pub(crate) fn spawn(self) {
        let task = Finishing {
            key: self.key.clone(),
            why: self.why,
            future: Box::pin(self.finish()),
            polled: false,
            done: false,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task)),
            Err(_) => drop(task),
        }
    }
}

/// A background clean-up that notices when it is dropped unfinished (the
/// runtime shut down).
struct Finishing {
    key: Arc<str>,
    why: &'static str,
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    polled: bool,
    done: bool,
}

impl Future for Finishing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polled = true;
        let done = self.future.as_mut().poll(cx);
        if done.is_ready() {
            self.done = true;
        }
        done
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if !self.polled {
            // Never started: one poll may be all it needs. A network store
            // whose runtime is gone may panic on its timers; that only means
            // it cannot be done here.
            let mut cx = Context::from_waker(Waker::noop());
            let future = &mut self.future;
            if let Ok(Poll::Ready(())) =
                catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)))
            {
                return;
            }
        }
        tracing::warn!(
            key = %self.key,
            why = self.why,
            "the tokio runtime stopped before the lock could be released; it stays held until its TTL \
             (forever with Ttl::Never). Release guards with `release().await` before the runtime ends"
        );
    }
}

/// Drop guard for a call in progress: if the caller is dropped (or the call
/// failed ambiguously), the clean-up is spawned.
///
/// It borrows what a clean-up needs and builds the [`Cleanup`] (cloning the
/// store, key, owner and turn) only then: the call that completes, the usual
/// case, clones nothing.
pub(crate) struct InFlight<'a> {
    store: &'a Arc<dyn LockStore>,
    key: &'a Arc<str>,
    call: Option<Sent<'a>>,
    why: &'static str,
    /// Clean up even without a pending call (an error that may have applied).
    armed: bool,
}

/// The call a guard stands for.
enum Sent<'a> {
    /// An acquire attempt for `owner`, its answer not yet seen while
    /// `pending` is set.
    Acquire {
        owner: &'a GrantOwner,
        turn: &'a Turn,
        pending: Option<PendingAcquire>,
    },
    /// The release of a grant whose lease has ended.
    Release(Held),
}

impl<'a> InFlight<'a> {
    /// An acquire for `owner`, sent as `pending`.
    pub(crate) fn acquire(
        store: &'a Arc<dyn LockStore>,
        key: &'a Arc<str>,
        owner: &'a GrantOwner,
        turn: &'a Turn,
        pending: PendingAcquire,
        why: &'static str,
    ) -> Self {
        InFlight {
            store,
            key,
            call: Some(Sent::Acquire {
                owner,
                turn,
                pending: Some(pending),
            }),
            why,
            armed: false,
        }
    }

    /// The release of `held` (its lease already ended), armed: dropped
    /// before [`disarm`](Self::disarm), it is finished in the background.
    pub(crate) fn release(
        store: &'a Arc<dyn LockStore>,
        key: &'a Arc<str>,
        held: Held,
        why: &'static str,
    ) -> Self {
        InFlight {
            store,
            key,
            call: Some(Sent::Release(held)),
            why,
            armed: true,
        }
    }

    /// The grant a release is for.
    pub(crate) fn grant(&self) -> Option<&Arc<Grant>> {
        match &self.call {
            Some(Sent::Release(held)) => Some(&held.grant),
            _ => None,
        }
    }

    /// Polls the pending acquire to its answer.
    pub(crate) async fn answer(&mut self) -> Result<Acquisition, LockError> {
        let Some(Sent::Acquire {
            pending: Some(pending),
            ..
        }) = self.call.as_mut()
        else {
            return Err(LockError::store("verrou", "no acquire in flight"));
        };
        let answer = pending.as_mut().await;
        if let Some(Sent::Acquire { pending, .. }) = self.call.as_mut() {
            *pending = None;
        }
        answer
    }

    /// The call failed in a way that may have applied: clean up on drop.
    pub(crate) fn arm(&mut self) {
        self.armed = true;
    }

    /// Nothing left to clean up; gives a release's grant back.
    pub(crate) fn disarm(mut self) -> Option<Held> {
        match self.call.take() {
            Some(Sent::Release(held)) => Some(held),
            _ => None,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let cleanup = match self.call.take() {
            Some(Sent::Acquire {
                owner,
                turn,
                pending,
            }) if pending.is_some() || self.armed => Cleanup {
                store: self.store.clone(),
                key: self.key.clone(),
                owner: owner.clone(),
                pending,
                grant: None,
                turn: Some(turn.clone()),
                why: self.why,
            },
            Some(Sent::Release(held)) if self.armed => Cleanup {
                store: self.store.clone(),
                key: self.key.clone(),
                owner: held.grant.owner.clone(),
                pending: None,
                grant: Some(held.grant.clone()),
                turn: Some(held.turn.clone()),
                why: self.why,
            },
            _ => return,
        };
        cleanup.spawn();
    }
}
