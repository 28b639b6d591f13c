//! The keep-alive task of a renewing lease.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::grant::Grant;
use super::signal::LossReason;
use crate::observe::{Call, store_failed};
use crate::{Expiry, LockError, LockStore};

/// Starts renewing `grant` every `every` until it ends or is abandoned, in
/// `span` (the lease's: each renewal's span is its child, and so is the
/// event that reports the lease lost). A lease that never expires needs no
/// renewal.
pub(crate) fn spawn(
    store: Arc<dyn LockStore>,
    key: Arc<str>,
    grant: Arc<Grant>,
    every: Duration,
    span: Span,
) {
    if grant.expiry() == Expiry::Never {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        grant.abandon();
        return;
    };
    runtime.spawn(renew(store, key, grant, every).instrument(span));
}

async fn renew(store: Arc<dyn LockStore>, key: Arc<str>, grant: Arc<Grant>, every: Duration) {
    // A failed renewal is retried this much sooner than a scheduled one.
    let retry_gap = (every / 4).max(Duration::from_millis(1));
    let mut next = Instant::now().checked_add(every);
    loop {
        let changed = grant.lease.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if grant.ended().is_some() || grant.is_abandoned() {
            return;
        }
        if !grant.lease.view().verified {
            // A restored grant: renewal starts once an extend confirms it.
            changed.await;
            continue;
        }
        match next {
            Some(at) => tokio::select! {
                () = changed => continue,
                () = tokio::time::sleep_until(at) => {}
            },
            None => {
                changed.await;
                continue;
            }
        }
        let _calls = grant.calls.lock().await;
        // A release may have begun while we waited for the grant's calls:
        // then nothing more is sent for this grant.
        if grant.ended().is_some() || grant.is_abandoned() {
            return;
        }
        let Some(deadline) = grant.lease.view().vouched_until else {
            return;
        };
        let expiry = grant.expiry();
        let call = Call::renew(&key, store.name());
        let sent_at = Instant::now();
        let answer = tokio::time::timeout_at(deadline, store.extend(&key, &grant.owner, expiry))
            .instrument(call.span())
            .await;
        match answer {
            Ok(Ok(())) => {
                if !grant.confirm(sent_at, expiry) {
                    call.finish_as("too_late");
                    // The signal fired while the renewal travelled: the
                    // lease stays lost, and what the store just renewed is
                    // given back (this grant's owner only).
                    // (A release that began meanwhile sends its own.)
                    if grant.ended() != Some(LossReason::Released)
                        && let Err(error) = store.release(&key, &grant.owner).await
                    {
                        store_failed(store.name(), "release", &error);
                    }
                    return;
                }
                call.finish(&Ok(()));
                grant.renewals.fetch_add(1, Ordering::Relaxed);
                next = sent_at.checked_add(every);
            }
            Ok(Err(error @ LockError::NotOwned { .. })) => {
                call.finish(&Err(error));
                // The lease's span reports the loss.
                grant.end(LossReason::NotOwned);
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(parent: &call.span(), %error, "lease renewal failed; retrying while the lease can be vouched for");
                call.finish(&Err(error));
                next = Instant::now()
                    .checked_add(retry_gap)
                    .map(|at| at.min(deadline));
            }
            Err(_) => {
                call.finish_as("unreachable");
                grant.end(LossReason::Unreachable);
                return;
            }
        }
    }
}
