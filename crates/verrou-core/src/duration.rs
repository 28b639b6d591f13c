//! Durations as users write them: `Duration`, milliseconds, or text like `"1.5m"`.

use std::time::Duration;

use crate::{Expiry, LockError};

/// How long a lock lives before the store lets someone else take it.
///
/// Anything that implements [`IntoTtl`] can be given where a TTL is expected:
///
/// ```
/// use std::time::Duration;
/// use verrou_core::{IntoTtl, Ttl};
///
/// assert_eq!("1.5s".into_ttl().unwrap(), Ttl::After(Duration::from_millis(1500)));
/// assert_eq!(250u64.into_ttl().unwrap(), Ttl::After(Duration::from_millis(250)));
/// assert_eq!(Ttl::Never.into_ttl().unwrap(), Ttl::Never);
/// assert!("0s".into_ttl().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Use the [`LockFactory`](crate::LockFactory)'s default TTL (30 s unless configured).
    Default,
    /// The lock never expires: only a release (or a force release) frees it.
    Never,
    /// The lock expires this long after it was acquired or last extended.
    After(Duration),
}

impl Ttl {
    /// Resolves [`Ttl::Default`] against `default` (a factory's default TTL,
    /// or a lock's own TTL), giving what a store is asked for.
    pub fn resolve(self, default: Expiry) -> Expiry {
        match self {
            Ttl::Default => default,
            Ttl::Never => Expiry::Never,
            Ttl::After(d) => Expiry::After(d),
        }
    }
}

/// Conversion into a [`Ttl`], failing with [`LockError::InvalidDuration`] on
/// zero, negative or unreadable input.
pub trait IntoTtl {
    /// Converts `self` into a [`Ttl`].
    ///
    /// # Errors
    /// [`LockError::InvalidDuration`] when the value is zero, negative, below
    /// one millisecond or not a duration at all.
    fn into_ttl(self) -> Result<Ttl, LockError>;
}

impl IntoTtl for Ttl {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        match self {
            Ttl::After(d) => check_positive(d, || format!("{d:?}")).map(Ttl::After),
            other => Ok(other),
        }
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        check_positive(self, || format!("{self:?}")).map(Ttl::After)
    }
}

/// A bare number is a count of milliseconds.
impl IntoTtl for u64 {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        Duration::from_millis(self).into_ttl()
    }
}

impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        parse_duration(self).map(Ttl::After)
    }
}

impl IntoTtl for String {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        self.as_str().into_ttl()
    }
}

impl IntoTtl for &String {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        self.as_str().into_ttl()
    }
}

impl IntoTtl for Expiry {
    fn into_ttl(self) -> Result<Ttl, LockError> {
        match self {
            Expiry::Never => Ok(Ttl::Never),
            Expiry::After(d) => d.into_ttl(),
        }
    }
}

/// Parses a duration in the forms of the `ms` package: `"250ms"`, `"1s"`,
/// `"1.5m"`, `"2h"`, `"1d"`, `"1w"`, `"1y"`, long unit names (`"2 hours"`), or a
/// bare number of milliseconds (`"250"`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(verrou_core::parse_duration("1.5m").unwrap(), Duration::from_secs(90));
/// assert_eq!(verrou_core::parse_duration("2 hours").unwrap(), Duration::from_secs(7200));
/// assert!(verrou_core::parse_duration("-1s").is_err());
/// ```
///
/// # Errors
/// [`LockError::InvalidDuration`] with the offending text when the input is
/// empty, negative, zero, shorter than a millisecond, too large, or not a
/// duration.
pub fn parse_duration(input: &str) -> Result<Duration, LockError> {
    let invalid = |reason| LockError::InvalidDuration {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(invalid("empty duration"));
    }
    if text.starts_with('-') {
        return Err(invalid("duration must be positive"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(invalid(
            "expected a number followed by a unit such as `ms`, `s` or `m`",
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| invalid("the number part is not a number"))?;
    let unit_ms = unit_in_millis(unit.trim())
        .ok_or_else(|| invalid("unknown unit (use ms, s, m, h, d, w or y, or their long names)"))?;
    let millis = value * unit_ms;
    // 2^53 ms is ~285,000 years; beyond that f64 loses whole milliseconds.
    if !millis.is_finite() || millis > 9_007_199_254_740_992.0 {
        return Err(invalid("duration is too large"));
    }
    let duration = Duration::from_secs_f64(millis / 1000.0);
    check_positive(duration, || input.to_owned())
}

fn unit_in_millis(unit: &str) -> Option<f64> {
    const SECOND: f64 = 1000.0;
    const MINUTE: f64 = 60.0 * SECOND;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    let ms = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7.0 * DAY,
        "y" | "yr" | "yrs" | "year" | "years" => 365.25 * DAY,
        _ => return None,
    };
    Some(ms)
}

/// Stores count TTLs in whole milliseconds, so anything shorter would round to
/// "already expired" or "never expires" depending on the store.
fn check_positive(d: Duration, input: impl FnOnce() -> String) -> Result<Duration, LockError> {
    if d < Duration::from_millis(1) {
        return Err(LockError::InvalidDuration {
            input: input(),
            reason: "duration must be at least 1ms",
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("250ms", 250),
            ("250", 250),
            ("1s", 1_000),
            ("1.5m", 90_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("3 seconds", 3_000),
            (" 10 MS ", 10),
            ("1y", 31_557_600_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_input_with_the_text() {
        for text in [
            "",
            "0s",
            "0",
            "-1s",
            "abc",
            "1 fortnight",
            "1.2.3s",
            ".",
            "0.1ms",
            "1e400s",
            "s",
        ] {
            match parse_duration(text) {
                Err(LockError::InvalidDuration { input, .. }) => assert_eq!(input, text),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn numbers_and_durations_convert() {
        assert!(0u64.into_ttl().is_err());
        assert!(Duration::ZERO.into_ttl().is_err());
        assert_eq!(Ttl::Default.into_ttl().unwrap(), Ttl::Default);
        assert!(Ttl::After(Duration::ZERO).into_ttl().is_err());
        assert_eq!(Expiry::Never.into_ttl().unwrap(), Ttl::Never);
        assert!(Expiry::After(Duration::ZERO).into_ttl().is_err());
    }
}
