//! The retry and wake-up loop every primitive acquires with.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::observe::{Acquire, Stop};
use crate::owner::jitter_seed;
use crate::{LockError, ReleaseWatch, RetryPolicy};

/// The outcome of one acquisition call to the store.
pub(crate) enum Attempt<T> {
    /// Granted, and still vouched for when the answer arrived.
    Granted(T),
    /// Someone holds the key.
    Busy,
    /// Granted, but the answer arrived after the lease could no longer be
    /// vouched for; the grant is left to lapse (its remaining store time is
    /// shorter than its TTL, which is shorter than the round trip).
    TooLate,
}

/// After this many grants arrive too late, the TTL is declared shorter than
/// the store's round trip.
const MAX_TOO_LATE: u32 = 3;

/// Calls `attempt` until it is granted or `policy` gives up.
///
/// - `policy.attempts() == Some(n)` means exactly `n` calls to `attempt`.
/// - After the first busy answer the loop registers a release watch (from
///   `watch`) and tries again at once: a release between the first try and
///   the registration would otherwise be missed until the retry delay. Every
///   later wait ends on the delay or on the watch, whichever is first.
/// - A grant that arrived too late is not released (the release would
///   announce itself and wake every waiter, this one included); the loop
///   waits a full delay and fails after [`MAX_TOO_LATE`] of them.
///
/// `observed` is told of every attempt, every busy answer, and why the
/// policy gave up.
pub(crate) async fn retry<T, A, AF, W, WF>(
    key: &str,
    ttl: Option<Duration>,
    policy: &RetryPolicy,
    started: Instant,
    observed: &mut Acquire,
    mut attempt: A,
    mut watch: W,
) -> Result<T, LockError>
where
    A: FnMut() -> AF,
    AF: Future<Output = Result<Attempt<T>, LockError>>,
    W: FnMut() -> WF,
    WF: Future<Output = Option<ReleaseWatch>>,
{
    let deadline = policy.timeout().and_then(|t| started.checked_add(t));
    let mut attempts = 0u32;
    let mut too_late = 0u32;
    let mut released: Option<ReleaseWatch> = None;
    loop {
        attempts = attempts.saturating_add(1);
        observed.attempt();
        let busy = match attempt().await? {
            Attempt::Granted(granted) => return Ok(granted),
            Attempt::Busy => {
                observed.busy();
                true
            }
            Attempt::TooLate => {
                too_late += 1;
                if too_late >= MAX_TOO_LATE {
                    return Err(LockError::TtlShorterThanRoundTrip {
                        key: key.to_owned(),
                        ttl: ttl.unwrap_or(Duration::MAX),
                        give_backs: too_late,
                    });
                }
                false
            }
        };
        let exhausted = policy.attempts().is_some_and(|max| attempts >= max);
        let now = Instant::now();
        let timed_out = deadline.is_some_and(|d| now >= d);
        if exhausted || timed_out {
            // Both at once reads as a timeout: the caller waited it out.
            observed.stopped(if timed_out {
                Stop::Deadline
            } else {
                Stop::Attempts
            });
            return Err(LockError::Timeout {
                key: key.to_owned(),
                attempts,
                elapsed: started.elapsed(),
            });
        }
        if busy && attempts == 1 {
            released = watch().await;
            if released.is_some() {
                continue;
            }
        }
        let mut wait = policy.delay_after(attempts, jitter_seed());
        if let Some(deadline) = deadline {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        match released.take() {
            Some(released) if busy => {
                let _ = tokio::time::timeout(wait, released).await;
            }
            _ => tokio::time::sleep(wait).await,
        }
        released = watch().await;
    }
}
