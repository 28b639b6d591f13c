//! The client's wall clock: DynamoDB conditions have no server time, so every
//! expiry is written and judged in the caller's epoch milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on this machine's clock.
pub(crate) fn now_ms() -> u64 {
    // A clock set before 1970 is broken; treating it as the epoch makes every
    // lease look expired rather than panicking inside a lock call.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a lease of `ttl` taken at `now_ms` ends; `None` (never) for no TTL or
/// one too large to write down, as the memory store does.
pub(crate) fn lease_end_ms(now_ms: u64, ttl: Option<Duration>) -> Option<u64> {
    // `now_ms` is rounded down and a TTL may have a fraction of a
    // millisecond: counting from the next whole millisecond and rounding the
    // TTL up means a lease can end up to 2 ms late, never early.
    let ttl_ms = u64::try_from(ttl?.as_micros().div_ceil(1000)).ok()?;
    // Past this the number stops being a plausible timestamp (and DynamoDB's
    // TTL sweeper ignores it anyway): the lease is as good as eternal.
    const YEAR_9999_MS: u64 = 253_402_300_799_000;
    now_ms
        .checked_add(ttl_ms)
        .and_then(|end| end.checked_add(1))
        .filter(|end| *end <= YEAR_9999_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_ttls_never_expire() {
        assert_eq!(lease_end_ms(1_000, None), None);
        assert_eq!(lease_end_ms(1_000, Some(Duration::MAX)), None);
        assert_eq!(
            lease_end_ms(1_000, Some(Duration::from_millis(5))),
            Some(1_006)
        );
    }
}
