//! The client's wall clock: DynamoDB conditions have no server time. A lease's
//! end is written in the holder's epoch milliseconds and judged only by the
//! holder (its own release and extend); other clients time a lease by its
//! length on their monotonic clock instead (see [`crate::takeover`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use verrou_core::Expiry;

use crate::item::Lease;

/// Milliseconds since the Unix epoch on this machine's clock.
pub(crate) fn now_ms() -> u64 {
    // A clock set before 1970 is broken; treating it as the epoch makes every
    // lease look expired rather than panicking inside a lock call.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The lease of `ttl` taken at `now_ms`; `None` (never ends) for no TTL or
/// one too large to write down, as the memory store does.
pub(crate) fn lease(now_ms: u64, ttl: Option<Duration>) -> Option<Lease> {
    // `now_ms` is rounded down and a TTL may have a fraction of a
    // millisecond: counting from the next whole millisecond and rounding the
    // TTL up means a lease can end up to 2 ms late, never early.
    let length_ms = ttl
        .map_or(Expiry::Never, Expiry::After)
        .whole_millis(u64::MAX)?
        .checked_add(1)?;
    // Past this the number stops being a plausible timestamp (and DynamoDB's
    // TTL sweeper ignores it anyway): the lease is as good as eternal.
    const YEAR_9999_MS: u64 = 253_402_300_799_000;
    let end_ms = now_ms
        .checked_add(length_ms)
        .filter(|end| *end <= YEAR_9999_MS)?;
    Some(Lease { end_ms, length_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_ttls_never_expire() {
        assert_eq!(lease(1_000, None), None);
        assert_eq!(lease(1_000, Some(Duration::MAX)), None);
        assert_eq!(
            lease(1_000, Some(Duration::from_secs(9_000 * 365 * 86_400))),
            None
        );
        assert_eq!(
            lease(1_000, Some(Duration::from_millis(5))),
            Some(Lease {
                end_ms: 1_006,
                length_ms: 6
            })
        );
        assert_eq!(
            lease(1_000, Some(Duration::from_nanos(1))),
            Some(Lease {
                end_ms: 1_002,
                length_ms: 2
            }),
            "a nanosecond rounds up to a millisecond, plus the one for `now_ms`"
        );
        assert_eq!(
            lease(1_000, Some(Duration::ZERO)),
            Some(Lease {
                end_ms: 1_002,
                length_ms: 2
            }),
            "zero is a 1 ms lease, as on every store (`Expiry::whole_millis`)"
        );
    }
}
