//! `Grant`: one successful acquisition.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::gate::{Gate, Turn};
use super::signal::{Lease, LeaseView, LossReason, LostSignal};
use crate::Expiry;
use crate::owner::GrantOwner;

/// One acquisition of a key. Every call made for it (extend, renewal,
/// release, a background clean-up) names its owner string, which no other
/// grant of a random-owner handle shares, so nothing done for this grant can
/// touch a later one.
pub(crate) struct Grant {
    /// Sequence number within its handle.
    pub(crate) id: u64,
    /// The owner string the store knows this grant by.
    pub(crate) owner: GrantOwner,
    pub(crate) fencing_token: Option<u64>,
    /// The local view of the lease and the lost signal. Part of the grant
    /// (one allocation per acquire less): a [`LostSignal`] holds the grant.
    pub(crate) lease: Lease,
    /// The drift margin subtracted from every vouched lease end.
    pub(crate) margin: Duration,
    /// The expiry the lease was last taken or extended with; renewals reuse it.
    expiry: std::sync::Mutex<Expiry>,
    /// Serializes this grant's store calls, so that a renewal is never in
    /// flight when the release is sent (the race behind Redisson #5698).
    pub(crate) calls: Gate,
    /// Set when nobody will release this grant any more through its handle
    /// (the handle was dropped holding it): the renewal task stops.
    abandoned: AtomicBool,
    /// How many renewals the store confirmed.
    pub(crate) renewals: AtomicU64,
}

/// Where a lease of `expiry`, confirmed by a call sent at `sent_at`, stops
/// being vouched for. `None`: never expires (also for a TTL beyond the
/// clock's range, which outlives the process anyway).
pub(crate) fn vouched_until(sent_at: Instant, expiry: Expiry, margin: Duration) -> Option<Instant> {
    match expiry {
        Expiry::Never => None,
        Expiry::After(ttl) => sent_at.checked_add(ttl.saturating_sub(margin)),
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The owner string is the right to release: never print it.
        f.debug_struct("Grant")
            .field("id", &self.id)
            .field("fencing_token", &self.fencing_token)
            .field("lease", &self.lease.view())
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// A grant the store just confirmed, for a call sent at `sent_at`.
    pub(crate) fn confirmed(
        id: u64,
        owner: GrantOwner,
        fencing_token: Option<u64>,
        expiry: Expiry,
        margin: Duration,
        sent_at: Instant,
        renewing: bool,
    ) -> Self {
        let view = LeaseView {
            vouched_until: vouched_until(sent_at, expiry, margin),
            verified: true,
            renewing,
            ended: None,
        };
        Self::with_view(id, owner, fencing_token, expiry, margin, view)
    }

    /// A grant read back from a serialized lock: nothing vouches for it
    /// until the store confirms it with an extend.
    pub(crate) fn unverified(
        id: u64,
        owner: GrantOwner,
        fencing_token: Option<u64>,
        expiry: Expiry,
        margin: Duration,
    ) -> Self {
        let view = LeaseView::default();
        Self::with_view(id, owner, fencing_token, expiry, margin, view)
    }

    fn with_view(
        id: u64,
        owner: GrantOwner,
        fencing_token: Option<u64>,
        expiry: Expiry,
        margin: Duration,
        view: LeaseView,
    ) -> Self {
        Grant {
            id,
            owner,
            fencing_token,
            lease: Lease::new(view),
            margin,
            expiry: std::sync::Mutex::new(expiry),
            calls: Gate::default(),
            abandoned: AtomicBool::new(false),
            renewals: AtomicU64::new(0),
        }
    }

    pub(crate) fn expiry(&self) -> Expiry {
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store confirmed the lease with `expiry` for a call sent at `sent_at`.
    pub(crate) fn confirm(&self, sent_at: Instant, expiry: Expiry) -> bool {
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner()) = expiry;
        self.lease
            .vouch(vouched_until(sent_at, expiry, self.margin))
    }

    /// Ends the lease (the first reason wins); the lease's span tells.
    pub(crate) fn end(&self, reason: LossReason) {
        self.lease.end(reason);
    }

    pub(crate) fn ended(&self) -> Option<LossReason> {
        self.lease.view().ended
    }

    pub(crate) fn signal(self: &Arc<Self>) -> LostSignal {
        LostSignal {
            grant: self.clone(),
        }
    }

    /// Held, confirmed, and vouched for by the local clock now.
    pub(crate) fn is_held(&self) -> bool {
        let view = self.lease.view();
        view.verified && view.ended.is_none()
    }

    /// Confirmed, not released, but no longer vouched for.
    pub(crate) fn is_expired(&self) -> bool {
        matches!(
            self.lease.view().ended,
            Some(LossReason::Expired | LossReason::Unreachable | LossReason::NotOwned)
        )
    }

    /// Time the local clock still vouches for; `None` when not held or the
    /// lease never expires.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let view = self.lease.view();
        if !view.verified {
            return None;
        }
        if view.ended.is_some() {
            return Some(Duration::ZERO).filter(|_| view.vouched_until.is_some());
        }
        view.vouched_until
            .map(|until| until.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.lease.set_renewing(false);
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// A grant installed in its handle, with the handle's turn.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) grant: Arc<Grant>,
    pub(crate) turn: Turn,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Dropped without a release: the handle itself was dropped while
        // holding. A renewal task must not keep alive a lease that nobody
        // can release any more; it lapses at its TTL.
        // (A released grant, the usual case here, is told by the flag
        // alone.)
        if !self.grant.lease.has_ended() && self.grant.ended().is_none() {
            self.grant.abandon();
        }
    }
}
