//! Taking over a lease whose holder stopped renewing it, without trusting
//! anybody's wall clock.
//!
//! DynamoDB conditions have no server time and clients' wall clocks
//! disagree, so a client never compares a lease's end with its own clock.
//! Instead it remembers the `lease_version` it saw on a held lock and when it
//! saw it, on its monotonic clock, *after* the answer arrived (so after the
//! holder's write, which came after the holder asked for its lease). Once it
//! has seen the same version for the lease's whole length plus the margin, it
//! may take the lock over, with a write whose condition is that this version
//! is still there. A holder that renews writes a new version, which restarts
//! the wait; a holder that releases removes the owner, which frees the lock at
//! once. This is the AWS DynamoDB lock client's rule (its "record version
//! number"). Only the *rates* of the clocks matter, and the lock's own view of
//! a lease already ends early by its drift margin.
//!
//! What this client wrote itself is timed from when it sent the write: the
//! holder is in this process, and its view of the lease starts no later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::item::{Holding, Lease};

/// Sightings kept at most. Forgetting one only restarts a wait, which is
/// always safe, so the map is bounded instead of growing with every key a
/// long-lived process ever found held.
const MAX_SIGHTINGS: usize = 10_000;

/// One held lease, as this client last saw it.
#[derive(Debug)]
struct Sighting {
    version: String,
    length: Duration,
    since: Instant,
}

impl Sighting {
    /// Whether the lease has been seen unchanged for its length plus
    /// `margin` at `now`. A wait too long for the clock never ends.
    fn is_over(&self, margin: Duration, now: Instant) -> bool {
        self.since
            .checked_add(self.length)
            .and_then(|end| end.checked_add(margin))
            .is_some_and(|end| end <= now)
    }
}

/// What this client knows about leases held by others (and by itself).
#[derive(Debug)]
pub(crate) struct Sightings {
    seen: Mutex<HashMap<String, Sighting>>,
    margin: Duration,
}

impl Sightings {
    pub(crate) fn new(margin: Duration) -> Self {
        Sightings {
            seen: Mutex::new(HashMap::new()),
            margin,
        }
    }

    pub(crate) fn margin(&self) -> Duration {
        self.margin
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sighting>> {
        // Nothing panics while the lock is held; a poisoned map is still a
        // valid map.
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lease version of `key` this client may take over at `now`, if any.
    pub(crate) fn expired_version(&self, key: &str, now: Instant) -> Option<String> {
        self.seen()
            .get(key)
            .filter(|s| s.is_over(self.margin, now))
            .map(|s| s.version.clone())
    }

    /// Whether this client is timing a lease on `key` whose wait is not over
    /// at `now`.
    pub(crate) fn is_waiting(&self, key: &str, now: Instant) -> bool {
        self.seen()
            .get(key)
            .is_some_and(|s| !s.is_over(self.margin, now))
    }

    /// Records what a read of `key`, answered at `answered`, showed; returns
    /// whether the lock is held in this client's eyes at that moment.
    pub(crate) fn saw(&self, key: &str, holding: Holding, answered: Instant) -> bool {
        let (version, length_ms) = match holding {
            Holding::Free => {
                self.forget(key);
                return false;
            }
            Holding::Forever => {
                self.forget(key);
                return true;
            }
            Holding::Lease { version, length_ms } => (version, length_ms),
        };
        let mut seen = self.seen();
        // The same version seen again keeps its first sighting: the wait
        // counts from when it was first seen.
        if seen.get(key).is_none_or(|s| s.version != version) {
            insert(
                &mut seen,
                key,
                Sighting {
                    version,
                    length: Duration::from_millis(length_ms),
                    since: answered,
                },
            );
        }
        !seen[key].is_over(self.margin, answered)
    }

    /// This client wrote `version` with `lease` for `key`, sending the write
    /// at `sent`.
    pub(crate) fn wrote(&self, key: &str, version: String, lease: Option<Lease>, sent: Instant) {
        let Some(lease) = lease else {
            // Held until released: nobody takes it over, nothing to time.
            self.forget(key);
            return;
        };
        insert(
            &mut self.seen(),
            key,
            Sighting {
                version,
                length: Duration::from_millis(lease.length_ms),
                since: sent,
            },
        );
    }

    /// `key` was freed (or is no longer timed by this client).
    pub(crate) fn forget(&self, key: &str) {
        self.seen().remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen().len()
    }
}

fn insert(seen: &mut HashMap<String, Sighting>, key: &str, sighting: Sighting) {
    if seen.len() >= MAX_SIGHTINGS && !seen.contains_key(key) {
        let oldest = seen
            .iter()
            .min_by_key(|(_, s)| s.since)
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            seen.remove(&oldest);
        }
    }
    seen.insert(key.to_owned(), sighting);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(version: &str, length_ms: u64) -> Holding {
        Holding::Lease {
            version: version.to_owned(),
            length_ms,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_lease_is_over_only_after_its_version_was_seen_for_its_length() {
        let sightings = Sightings::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(sightings.saw("k", lease("v1", 60_000), t0));
        assert!(sightings.is_waiting("k", t0 + MINUTE / 2));
        assert!(!sightings.is_waiting("k", t0 + MINUTE));
        assert!(!sightings.is_waiting("other", t0));
        assert_eq!(sightings.expired_version("k", t0), None);
        assert_eq!(sightings.expired_version("k", t0 + MINUTE / 2), None);
        assert_eq!(
            sightings.expired_version("k", t0 + MINUTE).as_deref(),
            Some("v1")
        );
        // The same version seen again keeps the first sighting.
        assert!(!sightings.saw("k", lease("v1", 60_000), t0 + MINUTE));
        // A renewal (a new version) starts the wait again.
        assert!(sightings.saw("k", lease("v2", 60_000), t0 + MINUTE));
        assert_eq!(sightings.expired_version("k", t0 + MINUTE), None);
        assert_eq!(
            sightings.expired_version("k", t0 + MINUTE * 2).as_deref(),
            Some("v2")
        );
    }

    #[test]
    fn free_and_forever_leave_nothing_to_time() {
        let sightings = Sightings::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(sightings.saw("k", lease("v1", 1), t0));
        assert!(!sightings.saw("k", lease("v1", 1), t0 + MINUTE));
        assert!(sightings.saw("k", Holding::Forever, t0 + MINUTE));
        assert_eq!(sightings.expired_version("k", t0 + MINUTE * 60), None);
        assert!(!sightings.saw("k", Holding::Free, t0));
        assert_eq!(sightings.len(), 0);
    }

    #[test]
    fn own_writes_are_timed_from_when_they_were_sent() {
        let sightings = Sightings::new(Duration::ZERO);
        let sent = Instant::now();
        let lease_of = |length_ms| Lease {
            end_ms: 0,
            length_ms,
        };
        sightings.wrote("k", "v1".into(), Some(lease_of(1_000)), sent);
        assert_eq!(sightings.expired_version("k", sent), None);
        assert_eq!(
            sightings
                .expired_version("k", sent + Duration::from_secs(1))
                .as_deref(),
            Some("v1")
        );
        sightings.wrote("k", "v2".into(), None, sent);
        assert_eq!(sightings.expired_version("k", sent + MINUTE), None);
    }

    #[test]
    fn the_margin_lengthens_the_wait_and_an_endless_one_never_ends() {
        let t0 = Instant::now();
        let sightings = Sightings::new(Duration::from_secs(120));
        assert!(sightings.saw("k", lease("v1", 1_000), t0));
        assert_eq!(sightings.expired_version("k", t0 + MINUTE * 2), None);
        assert!(sightings.expired_version("k", t0 + MINUTE * 3).is_some());
        let sightings = Sightings::new(Duration::MAX);
        assert!(sightings.saw("k", lease("v1", 0), t0));
        assert_eq!(sightings.expired_version("k", t0 + MINUTE * 60), None);
        let sightings = Sightings::new(Duration::ZERO);
        assert!(sightings.saw("k", lease("v1", u64::MAX), t0));
        assert_eq!(sightings.expired_version("k", t0 + MINUTE * 60), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let sightings = Sightings::new(Duration::ZERO);
        let t0 = Instant::now();
        for i in 0..MAX_SIGHTINGS + 10 {
            sightings.saw(&format!("k{i}"), lease("v", 60_000), t0);
        }
        assert_eq!(sightings.len(), MAX_SIGHTINGS);
    }
}
