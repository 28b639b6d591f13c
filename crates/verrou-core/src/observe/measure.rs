//! The metrics: their names, their descriptions, and one function per event.
//!
//! Every function here is a no-op unless the `metrics` feature is on, so the
//! lock code calls them unconditionally and a build without the feature
//! compiles them to nothing. Every series is labelled `store`
//! ([`LockStore::name`](crate::LockStore::name)); outcomes, reasons and
//! operations are fixed lists of `&'static str`, so the number of series
//! never grows with keys or owners.

use std::time::Duration;

/// The names: `verrou_`, what is measured, and the unit.
#[cfg(feature = "metrics")]
mod name {
    /// Acquire calls, labelled `outcome`.
    pub(super) const ACQUISITIONS: &str = "verrou_acquisitions_total";
    /// Store answers "held by someone else" to an acquire attempt.
    pub(super) const CONTENTION: &str = "verrou_acquire_contention_total";
    /// Time from the start of an acquire call to its grant.
    pub(super) const ACQUIRE_DURATION: &str = "verrou_acquire_duration_seconds";
    /// Acquire calls that ran out of time.
    pub(super) const TIMEOUTS: &str = "verrou_acquire_timeouts_total";
    /// Time from a grant to its release or loss.
    pub(super) const HELD_DURATION: &str = "verrou_held_duration_seconds";
    /// Renewals the store confirmed.
    pub(super) const RENEWALS: &str = "verrou_renewals_total";
    /// Leases lost, labelled `reason`.
    pub(super) const LEASES_LOST: &str = "verrou_leases_lost_total";
    /// Failed store calls, labelled `operation`.
    pub(super) const STORE_ERRORS: &str = "verrou_store_errors_total";
}

/// Describes every verrou metric (unit and help text) to the installed
/// `metrics` recorder. Call it once at start-up, after installing the
/// recorder: exporters such as Prometheus's take the help text and unit
/// from here. Recording works without it.
///
/// Available with the `metrics` feature.
///
/// ```
/// verrou_core::describe_metrics();
/// ```
#[cfg(feature = "metrics")]
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};

    describe_counter!(
        name::ACQUISITIONS,
        Unit::Count,
        "Lock acquire calls by outcome: acquired, timed_out, gave_up, error, cancelled"
    );
    describe_counter!(
        name::CONTENTION,
        Unit::Count,
        "Acquire attempts that found the lock held by someone else"
    );
    describe_histogram!(
        name::ACQUIRE_DURATION,
        Unit::Seconds,
        "Time from the start of an acquire call to the grant, for calls that acquired"
    );
    describe_counter!(
        name::TIMEOUTS,
        Unit::Count,
        "Acquire calls that gave up because the retry policy's time limit passed"
    );
    describe_histogram!(
        name::HELD_DURATION,
        Unit::Seconds,
        "Time a lease was held, from its grant to its release or loss"
    );
    describe_counter!(
        name::RENEWALS,
        Unit::Count,
        "Lease renewals the store confirmed"
    );
    describe_counter!(
        name::LEASES_LOST,
        Unit::Count,
        "Leases lost before their release, by reason: expired, not_owned, unreachable"
    );
    describe_counter!(
        name::STORE_ERRORS,
        Unit::Count,
        "Store calls that failed with a store error, by operation"
    );
}

/// An acquire call ended with `outcome` after `waited`.
pub(super) fn acquisition(store: &'static str, outcome: &'static str, waited: Duration) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(name::ACQUISITIONS, "store" => store, "outcome" => outcome).increment(1);
        match outcome {
            super::ACQUIRED => metrics::histogram!(name::ACQUIRE_DURATION, "store" => store)
                .record(waited.as_secs_f64()),
            super::TIMED_OUT => metrics::counter!(name::TIMEOUTS, "store" => store).increment(1),
            _ => {}
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (store, outcome, waited);
}

/// An acquire attempt found the lock held.
pub(super) fn contention(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::CONTENTION, "store" => store).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = store;
}

/// A lease ended (released or lost) after being held for `held`.
pub(super) fn held(store: &'static str, held: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(name::HELD_DURATION, "store" => store).record(held.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (store, held);
}

/// The store confirmed a renewal.
pub(super) fn renewal(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::RENEWALS, "store" => store).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = store;
}

/// A lease was lost for `reason`.
pub(super) fn lease_lost(store: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::LEASES_LOST, "store" => store, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, reason);
}

/// A store call for `operation` failed with a store error.
pub(super) fn store_error(store: &'static str, operation: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name::STORE_ERRORS, "store" => store, "operation" => operation).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, operation);
}
