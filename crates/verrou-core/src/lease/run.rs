//! `run`: work under a guard, raced against the lost signal when renewing,
//! released however it ends.

use std::future::Future;
use std::pin::pin;

use crate::catch_panic::CatchPanic;
use crate::{LockError, LockGuard, LossReason};

/// Runs `work` while `guard` holds its grant, then releases that grant.
pub(crate) async fn run<F, Fut, T>(guard: LockGuard, work: F) -> Result<T, LockError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let key = guard.lock().key().to_owned();
    let renewing = guard.renews();
    let lost = guard.lost();
    let outcome = {
        let work = pin!(CatchPanic(pin!(work())));
        if renewing {
            let lost = pin!(lost.lost());
            tokio::select! {
                biased;
                outcome = work => Ok(outcome),
                reason = lost => Err(reason),
            }
        } else {
            Ok(work.await)
        }
        // Here `work` is dropped: the cancellation point of a lost lease is
        // whichever `.await` the work was suspended on.
    };
    // Still armed during the release: if this future is dropped mid-call,
    // the guard's clean-up finishes the release in the background.
    let released = guard.release().await;
    let value = match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(reason) => return Err(LockError::LeaseLost { key, reason }),
    };
    // The lease's span has reported the loss (a WARN with its reason).
    match released {
        Ok(()) => Ok(value),
        Err(LockError::NotOwned { key }) if renewing => Err(LockError::LeaseLost {
            key,
            reason: LossReason::NotOwned,
        }),
        Err(LockError::NotOwned { key }) => Err(LockError::Expired { key }),
        Err(e) => Err(e),
    }
}
