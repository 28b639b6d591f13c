//! How long and how often `acquire` keeps trying.

use std::time::Duration;

use crate::{IntoTtl, LockError, Ttl};

/// How the wait between two attempts grows.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Backoff {
    /// Wait the policy's `delay` between attempts.
    Fixed,
    /// Double the wait after each attempt, up to `max_delay`, and pick each wait
    /// at random between half of it and all of it ("equal jitter"), so that a
    /// crowd of waiters released at once does not retry in lockstep.
    Exponential {
        /// The longest wait between two attempts.
        max_delay: Duration,
    },
}

/// When `acquire` gives up: after `attempts` tries or after `timeout`,
/// whichever comes first.
///
/// Stores that can announce releases (memory, Redis) wake a waiter as soon as
/// the lock is released; the delay is then only the fallback for a lost
/// announcement or an expiry.
///
/// ```
/// use std::time::Duration;
/// use verrou_core::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::default()
///     .with_timeout(Some(Duration::from_secs(5)))
///     .with_delay(Duration::from_millis(50))
///     .with_backoff(Backoff::Exponential { max_delay: Duration::from_secs(1) });
/// assert_eq!(policy.attempts(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct RetryPolicy {
    attempts: Option<u32>,
    delay: Duration,
    timeout: Option<Duration>,
    backoff: Backoff,
}

impl Default for RetryPolicy {
    /// Unlimited attempts, 250 ms apart (fixed), for at most 30 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: None,
            delay: Duration::from_millis(250),
            timeout: Some(Duration::from_secs(30)),
            backoff: Backoff::Fixed,
        }
    }
}

impl RetryPolicy {
    /// A policy that tries exactly once.
    pub fn no_retry() -> Self {
        RetryPolicy::default().with_attempts(Some(1))
    }

    /// Caps the number of attempts (`None` = unlimited; `Some(0)` is treated as 1).
    pub fn with_attempts(mut self, attempts: Option<u32>) -> Self {
        self.attempts = attempts.map(|n| n.max(1));
        self
    }

    /// Sets the (initial) wait between attempts.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the wait between attempts from any duration form (`"100ms"`, `100`, ...).
    ///
    /// # Errors
    /// [`LockError::InvalidDuration`] for zero, negative or unreadable input.
    pub fn with_delay_from(self, delay: impl IntoTtl) -> Result<Self, LockError> {
        match delay.into_ttl()? {
            Ttl::After(d) => Ok(self.with_delay(d)),
            other => Err(LockError::InvalidDuration {
                input: format!("{other:?}"),
                reason: "a retry delay must be a finite duration",
            }),
        }
    }

    /// Caps the total time spent acquiring (`None` = no time limit).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Chooses how the delay grows between attempts.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The maximum number of attempts, `None` when unlimited.
    pub fn attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// The (initial) delay between attempts.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The total time limit, `None` when unlimited.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The backoff strategy.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The wait after failed attempt number `attempt` (1-based), jittered with
    /// `random` (a uniformly random `u64`).
    pub(crate) fn delay_after(&self, attempt: u32, random: u64) -> Duration {
        match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Exponential { max_delay } => {
                let factor = 1u32
                    .checked_shl(attempt.saturating_sub(1).min(31))
                    .unwrap_or(u32::MAX);
                let full = self.delay.saturating_mul(factor).min(max_delay);
                let half = full / 2;
                let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
                // `nanos + 1` and the sum can overflow for waits near
                // `Duration::MAX`; saturating keeps every input a valid wait.
                let spread = nanos.checked_add(1).map_or(random, |n| random % n);
                half.saturating_add(Duration::from_nanos(if nanos == 0 { 0 } else { spread }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_delay_does_not_grow() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1, 7), Duration::from_millis(250));
        assert_eq!(p.delay_after(50, 7), Duration::from_millis(250));
    }

    #[test]
    fn exponential_delay_grows_within_jitter_bounds_and_caps() {
        let p = RetryPolicy::default()
            .with_delay(Duration::from_millis(10))
            .with_backoff(Backoff::Exponential {
                max_delay: Duration::from_millis(100),
            });
        for random in [0, 1, u64::MAX / 3, u64::MAX] {
            let d1 = p.delay_after(1, random);
            assert!(
                d1 >= Duration::from_millis(5) && d1 <= Duration::from_millis(10),
                "{d1:?}"
            );
            let d3 = p.delay_after(3, random);
            assert!(
                d3 >= Duration::from_millis(20) && d3 <= Duration::from_millis(40),
                "{d3:?}"
            );
            let d40 = p.delay_after(40, random);
            assert!(
                d40 >= Duration::from_millis(50) && d40 <= Duration::from_millis(100),
                "{d40:?}"
            );
        }
    }

    #[test]
    fn huge_delays_never_overflow() {
        for delay in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 3),
            Duration::ZERO,
        ] {
            let p = RetryPolicy::default()
                .with_delay(delay)
                .with_backoff(Backoff::Exponential {
                    max_delay: Duration::MAX,
                });
            for attempt in [1, 2, 31, 32, 33, u32::MAX] {
                for random in [0, 1, u64::MAX] {
                    assert!(p.delay_after(attempt, random) <= Duration::MAX);
                }
            }
        }
    }

    #[test]
    fn zero_attempts_means_one() {
        assert_eq!(
            RetryPolicy::default().with_attempts(Some(0)).attempts(),
            Some(1)
        );
        assert!(RetryPolicy::default().with_delay_from("0ms").is_err());
    }
}
