//! What the lock engine tells the outside world: `tracing` spans and events,
//! and (with the `metrics` feature) metrics.
//!
//! The lock code calls one function or method per event; what an event
//! becomes is decided here and in [`measure`]. Two rules hold throughout:
//!
//! - **No owner string is ever recorded**, in a field, a message or a `Debug`
//!   value: whoever knows it can release the lock. Keys are recorded.
//! - Fields known only at the end (attempts, outcome, time waited or held)
//!   are declared [`Empty`] and filled in with [`Span::record`], so a span
//!   carries its whole story when it closes.
//!
//! Spans are at INFO (`verrou.acquire`, `verrou.release`, `verrou.extend`,
//! `verrou.lease`) or DEBUG (`verrou.renew`, one per renewal): without a
//! subscriber that enables them they cost a callsite check each.

mod measure;

#[cfg(feature = "metrics")]
pub use measure::describe_metrics;

use tokio::time::Instant;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::{Expiry, LockError, LossReason};

/// Acquire outcome: granted.
pub(crate) const ACQUIRED: &str = "acquired";
/// Acquire outcome: the retry policy's time limit passed.
pub(crate) const TIMED_OUT: &str = "timed_out";
/// Acquire outcome: the retry policy's attempts ran out (a `try_*` that found
/// the lock held included), or grants kept arriving too late to be used.
const GAVE_UP: &str = "gave_up";
/// Outcome of any call that failed otherwise (a store error, mostly).
const ERROR: &str = "error";
/// Outcome of a call whose future was dropped before it finished.
const CANCELLED: &str = "cancelled";
/// Outcome of a release or extend the store answered with "not owned".
const NOT_OWNED: &str = "not_owned";

/// Counts a failed store call under `operation`, if the store failed (a
/// "not owned" answer or a caller error is not the store failing).
pub(crate) fn store_failed(store: &'static str, operation: &'static str, error: &LockError) {
    if matches!(error, LockError::Store { .. }) {
        measure::store_error(store, operation);
    }
}

/// Why an acquire's retry policy stopped trying.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// Its time limit passed.
    Deadline,
    /// Its attempts ran out.
    Attempts,
}

/// One acquire call: its `verrou.acquire` span and metrics.
///
/// Dropped without [`finish`](Self::finish) (the caller dropped the acquire
/// future), it records the outcome `cancelled`.
pub(crate) struct Acquire {
    span: Span,
    store: &'static str,
    started: Instant,
    attempts: u32,
    stop: Stop,
    finished: bool,
}

impl Acquire {
    /// An acquire of `key` on `store`, started at `started`.
    pub(crate) fn start(key: &str, store: &'static str, started: Instant) -> Self {
        let span = tracing::info_span!(
            "verrou.acquire",
            key,
            store,
            attempts = Empty,
            waited_s = Empty,
            outcome = Empty,
            error = Empty,
        );
        Acquire {
            span,
            store,
            started,
            attempts: 0,
            stop: Stop::Deadline,
            finished: false,
        }
    }

    /// The span, to instrument the acquire's work with.
    pub(crate) fn span(&self) -> Span {
        self.span.clone()
    }

    /// An attempt is sent to the store.
    pub(crate) fn attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// The store answered that someone else holds the lock.
    pub(crate) fn busy(&self) {
        measure::contention(self.store);
    }

    /// The retry policy gave up, for `stop`; the call ends in a timeout.
    pub(crate) fn stopped(&mut self, stop: Stop) {
        self.stop = stop;
    }

    /// The call ended with `result`, at `at` when the caller read the clock
    /// then already (a grant's answer).
    pub(crate) fn finish<T>(mut self, result: &Result<T, LockError>, at: Option<Instant>) {
        let outcome = match result {
            Ok(_) => ACQUIRED,
            Err(LockError::Timeout { .. }) => match self.stop {
                Stop::Deadline => TIMED_OUT,
                Stop::Attempts => GAVE_UP,
            },
            Err(LockError::TtlShorterThanRoundTrip { .. }) => GAVE_UP,
            Err(error) => {
                store_failed(self.store, "acquire", error);
                self.span.record("error", display(error));
                ERROR
            }
        };
        self.end(outcome, at);
    }

    fn end(&mut self, outcome: &'static str, at: Option<Instant>) {
        self.finished = true;
        let waited = match at {
            Some(at) => at.saturating_duration_since(self.started),
            None => self.started.elapsed(),
        };
        self.span.record("attempts", self.attempts);
        self.span.record("waited_s", waited.as_secs_f64());
        self.span.record("outcome", outcome);
        measure::acquisition(self.store, outcome, waited);
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if !self.finished {
            self.end(CANCELLED, None);
        }
    }
}

/// The store calls made for a held grant.
#[derive(Debug, Clone, Copy)]
enum Op {
    Release,
    Extend,
    Renew,
}

impl Op {
    /// The `operation` label of its store errors.
    fn name(self) -> &'static str {
        match self {
            Op::Release => "release",
            Op::Extend => "extend",
            Op::Renew => "renew",
        }
    }

    /// Its outcome when the store said yes.
    fn done(self) -> &'static str {
        match self {
            Op::Release => "released",
            Op::Extend => "extended",
            Op::Renew => "renewed",
        }
    }
}

/// One release, extend or renewal call: its span and metrics.
///
/// Dropped without finishing (the caller dropped the future), it records
/// the outcome `cancelled`.
pub(crate) struct Call {
    span: Span,
    store: &'static str,
    op: Op,
    finished: bool,
}

impl Call {
    /// A release of `key`; `background` says why, when nobody awaits it (a
    /// dropped guard, a cancelled call).
    pub(crate) fn release(
        key: &str,
        store: &'static str,
        background: Option<&'static str>,
    ) -> Self {
        let span = tracing::info_span!(
            "verrou.release",
            key,
            store,
            background,
            outcome = Empty,
            error = Empty,
        );
        Self::new(span, store, Op::Release)
    }

    /// An extend of `key` to `expiry` from now.
    pub(crate) fn extend(key: &str, store: &'static str, expiry: Expiry) -> Self {
        let span = tracing::info_span!(
            "verrou.extend",
            key,
            store,
            ttl = ?expiry,
            outcome = Empty,
            error = Empty,
        );
        Self::new(span, store, Op::Extend)
    }

    /// One renewal of a renewing lease of `key` (a child of its
    /// `verrou.lease` span).
    pub(crate) fn renew(key: &str, store: &'static str) -> Self {
        let span =
            tracing::debug_span!("verrou.renew", key, store, outcome = Empty, error = Empty,);
        Self::new(span, store, Op::Renew)
    }

    fn new(span: Span, store: &'static str, op: Op) -> Self {
        Call {
            span,
            store,
            op,
            finished: false,
        }
    }

    /// The span, to instrument the call with.
    pub(crate) fn span(&self) -> Span {
        self.span.clone()
    }

    /// The store answered `result`.
    pub(crate) fn finish(mut self, result: &Result<(), LockError>) {
        let outcome = match result {
            Ok(()) => {
                if let Op::Renew = self.op {
                    measure::renewal(self.store);
                }
                self.op.done()
            }
            Err(LockError::NotOwned { .. }) => NOT_OWNED,
            Err(error) => {
                store_failed(self.store, self.op.name(), error);
                self.span.record("error", display(error));
                ERROR
            }
        };
        self.end(outcome);
    }

    /// The call ended without an answer to record: `unreachable` (no
    /// answer before the lease ran out) or `too_late` (the answer came after
    /// the local clock had given the lease up).
    pub(crate) fn finish_as(mut self, outcome: &'static str) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: &'static str) {
        self.finished = true;
        self.span.record("outcome", outcome);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            self.end(CANCELLED);
        }
    }
}

/// The `verrou.lease` span of one grant, from its grant (or restore) to the
/// end of its lease, and what is told when the lease ends.
///
/// Held by the grant's lease, which calls [`ended`](Self::ended) once, when
/// the lease ends, and [`release_answered`](Self::release_answered) when the
/// store has answered the release of a lease that ended as released.
#[derive(Debug)]
pub(crate) struct LeaseWatch {
    span: Span,
    store: &'static str,
    /// `None` for a restored grant: it was taken in another process, so how
    /// long it was held is not known here.
    granted_at: Option<Instant>,
    /// A loss was reported: it is counted once.
    lost: bool,
}

impl LeaseWatch {
    /// The lease of a grant of `key` on `store`, granted at `granted_at`;
    /// `None` for a grant restored from a serialized lock (unverified).
    pub(crate) fn start(
        key: &str,
        store: &'static str,
        fencing_token: Option<u64>,
        granted_at: Option<Instant>,
    ) -> Self {
        let span = tracing::info_span!(
            "verrou.lease",
            key,
            store,
            fencing_token,
            restored = granted_at.is_none(),
            ended = Empty,
            held_s = Empty,
        );
        LeaseWatch {
            span,
            store,
            granted_at,
            lost: false,
        }
    }

    /// The span: the renewal task runs in it.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Whether anything this watch tells can be seen: its span, a WARN
    /// event, or (with the feature) a metric. When not, the caller need not
    /// read the clock for it.
    pub(crate) fn observed(&self) -> bool {
        cfg!(feature = "metrics")
            || !self.span.is_disabled()
            || tracing::level_enabled!(tracing::Level::WARN)
    }

    /// The lease ended for `reason`, at `now` (`None` when nothing
    /// [observes](Self::observed) it). `overdue` is the reason the local
    /// clock would have given had anyone looked before (a lease released
    /// after its vouched time ran out was lost first: its holder worked
    /// unprotected). Returns whether more is to come (a release's answer).
    pub(crate) fn ended(
        &mut self,
        reason: LossReason,
        overdue: Option<LossReason>,
        now: Option<Instant>,
    ) -> bool {
        self.span.record("ended", label(reason));
        if let (Some(granted_at), Some(now)) = (self.granted_at, now) {
            let held = now.saturating_duration_since(granted_at);
            self.span.record("held_s", held.as_secs_f64());
            measure::held(self.store, held);
        }
        match (reason, overdue) {
            (LossReason::Released, None) => {
                tracing::debug!(parent: &self.span, reason = label(reason), "lease ended: {reason}");
                true
            }
            (LossReason::Released, Some(overdue)) => {
                self.lost(overdue);
                true
            }
            (reason, _) => {
                self.lost(reason);
                false
            }
        }
    }

    /// The store answered the release; `gone` when it said the grant was
    /// no longer held (it expired there or was force-released before).
    pub(crate) fn release_answered(mut self, gone: bool) {
        if gone && !self.lost {
            self.lost(LossReason::NotOwned);
        }
    }

    fn lost(&mut self, reason: LossReason) {
        self.lost = true;
        tracing::warn!(parent: &self.span, reason = label(reason), "lease lost: {reason}");
        measure::lease_lost(self.store, label(reason));
    }
}

/// A [`LossReason`] as a field value and metric label.
fn label(reason: LossReason) -> &'static str {
    match reason {
        LossReason::Released => "released",
        LossReason::Expired => "expired",
        LossReason::NotOwned => NOT_OWNED,
        LossReason::Unreachable => "unreachable",
    }
}
