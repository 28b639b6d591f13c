//! `LeasePolicy`: whether a lease renews itself, and how far the local clock
//! is trusted.

use std::time::Duration;

/// How a held lease is kept alive and when the local clock stops vouching
/// for it.
///
/// **Renewal is off by default.** A TTL is a promise to every other holder:
/// "if this holder crashes *or hangs*, the key is free again within the TTL".
/// A renewing lease keeps that promise only for crashes: a holder stuck in a
/// deadlock keeps renewing and never lets go. Turn renewal on where work has
/// no reliable upper bound and you watch the [`LostSignal`](crate::LostSignal)
/// (a renewing [`run`](crate::Lock::run) does that for you).
///
/// With renewal on, a lease of TTL `t` is extended every `t / 3` (or
/// [`with_renew_every`](Self::with_renew_every)) with the same owner and
/// fencing token. A renewal that the store answers with "not owned" ends the
/// lease at once; a renewal that fails with a store error is retried, but
/// only while the local monotonic clock can still vouch for the lease.
///
/// The local clock vouches for a lease until `sent + ttl - drift margin`,
/// where `sent` is when the acquire (or the last successful extend) was
/// *sent*: the store started its TTL later than that, so its lease ends
/// later. The margin (default: 1% of the TTL plus 1 ms) covers clock-rate
/// differences between this machine and the store, and the store rounding
/// a TTL to whole milliseconds.
///
/// ```
/// use std::time::Duration;
/// use verrou_core::LeasePolicy;
///
/// let policy = LeasePolicy::renewing()
///     .with_renew_every(Duration::from_secs(2))
///     .with_drift_margin(Duration::from_millis(50));
/// assert!(policy.renews());
/// assert!(!LeasePolicy::default().renews());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use]
pub struct LeasePolicy {
    renew: bool,
    renew_every: Option<Duration>,
    drift_margin: Option<Duration>,
}

impl LeasePolicy {
    /// A policy that renews leases at a third of their TTL.
    pub fn renewing() -> Self {
        LeasePolicy::default().with_renewal(true)
    }

    /// Turns renewal on or off.
    pub fn with_renewal(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }

    /// Renews this often instead of at a third of the TTL. The interval is
    /// capped at half of the time the local clock vouches for a lease, so a
    /// failed renewal can always be retried before the lease is lost, and
    /// raised to at least 1 ms.
    pub fn with_renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every);
        self
    }

    /// Sets the clock-drift margin (see the type's documentation). A margin
    /// as long as the TTL means the lease is never vouched for: every
    /// acquisition is let go and fails with
    /// [`LockError::TtlShorterThanRoundTrip`](crate::LockError::TtlShorterThanRoundTrip).
    pub fn with_drift_margin(mut self, margin: Duration) -> Self {
        self.drift_margin = Some(margin);
        self
    }

    /// Whether leases renew themselves.
    pub fn renews(&self) -> bool {
        self.renew
    }

    /// The drift margin for a lease of `ttl`.
    pub fn drift_margin(&self, ttl: Duration) -> Duration {
        self.drift_margin
            .unwrap_or_else(|| (ttl / 100).saturating_add(Duration::from_millis(1)))
    }

    /// How often a lease of `ttl` is renewed.
    pub fn renew_interval(&self, ttl: Duration) -> Duration {
        let window = ttl.saturating_sub(self.drift_margin(ttl));
        self.renew_every
            .unwrap_or(ttl / 3)
            .min(window / 2)
            .max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_margins_handle_every_duration() {
        for ttl in [
            Duration::from_millis(1),
            Duration::from_secs(30),
            Duration::MAX,
        ] {
            for policy in [
                LeasePolicy::renewing(),
                LeasePolicy::renewing().with_renew_every(Duration::MAX),
                LeasePolicy::renewing().with_renew_every(Duration::ZERO),
                LeasePolicy::renewing().with_drift_margin(Duration::MAX),
            ] {
                let every = policy.renew_interval(ttl);
                assert!(every >= Duration::from_millis(1));
                assert!(every <= ttl.max(Duration::from_millis(1)));
                assert!(policy.drift_margin(ttl) <= Duration::MAX);
            }
        }
        let p = LeasePolicy::renewing();
        assert_eq!(
            p.renew_interval(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(
            p.drift_margin(Duration::from_secs(30)),
            Duration::from_millis(301)
        );
    }
}
