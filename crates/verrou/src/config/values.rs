//! The value types of a configuration: durations, limits, secrets and store
//! URLs, each with the serde form a person writes in a file.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use verrou_core::LockError;

/// A time limit that may be switched off: a timeout, a retry deadline, a TTL.
///
/// In a configuration it is a duration (`"250ms"`, `"1.5s"`, `"2 minutes"`,
/// or a whole number of milliseconds) or one of the words `"none"`,
/// `"never"` or `"unbounded"` for no limit at all.
///
/// ```
/// use std::time::Duration;
/// use verrou::Limit;
///
/// assert_eq!(Limit::from(Duration::from_secs(2)).duration(), Some(Duration::from_secs(2)));
/// assert_eq!(Limit::Unbounded.duration(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit: wait as long as it takes, or never expire.
    Unbounded,
    /// This long.
    After(Duration),
}

impl Limit {
    /// The duration, `None` when unbounded.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Limit::Unbounded => None,
            Limit::After(duration) => Some(duration),
        }
    }
}

impl From<Duration> for Limit {
    fn from(duration: Duration) -> Self {
        Limit::After(duration)
    }
}

impl From<Option<Duration>> for Limit {
    fn from(duration: Option<Duration>) -> Self {
        duration.map_or(Limit::Unbounded, Limit::After)
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Unbounded => serializer.serialize_str("none"),
            Limit::After(duration) => serializer.serialize_str(&duration_text(*duration)),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor { unbounded: true })
    }
}

/// A secret (a password, an AWS secret key): kept as given, but `Debug`
/// prints `"<redacted>"` so that logging a configuration never shows it.
///
/// It is written out as is by `Serialize`, since a configuration written to
/// a file must read back the same; keep such files private.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, to hand to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// A server's connection URL in the driver's own syntax
/// (`postgres://user:password@host/db`, `redis://...`).
///
/// `Debug` shows it with its password and any password-like query
/// parameter replaced by `***`; [`as_str`](Self::as_str) gives the URL
/// itself.
///
/// ```
/// let url = verrou::StoreUrl::new("postgres://app:hunter2@db:5432/app");
/// assert_eq!(format!("{url:?}"), r#""postgres://app:***@db:5432/app""#);
/// assert_eq!(url.as_str(), "postgres://app:hunter2@db:5432/app");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        StoreUrl(url.into())
    }

    /// The URL itself, password included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL without its secrets, for messages and logs.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl From<&str> for StoreUrl {
    fn from(url: &str) -> Self {
        StoreUrl::new(url)
    }
}

impl From<String> for StoreUrl {
    fn from(url: String) -> Self {
        StoreUrl(url)
    }
}

/// `url` with its user info's password and password-like query values
/// replaced by `***`.
///
/// Over-redacting is fine, under-redacting is not: the user info is taken
/// to end at the *last* `@`, since a password may hold an unencoded `@` or
/// `/`; and a connection string that is not a URL (PostgreSQL's
/// `host=... password=...`) is hidden whole when it mentions a password.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        let lower = url.to_ascii_lowercase();
        return if ["pass", "secret", "token"]
            .iter()
            .any(|w| lower.contains(w))
        {
            "***".to_owned()
        } else if let Some(at) = url.rfind('@') {
            // `postgres:user:password@host`: a URL missing its `//` still
            // carries credentials before its `@`.
            format!("***{}", &url[at..])
        } else {
            url.to_owned()
        };
    };
    let rest = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = match userinfo.split_once(':') {
                // A user name cannot hold an unencoded `:`: what follows is
                // the password.
                Some((user, _password)) => format!("{user}:***"),
                // Without `:`, some drivers read the whole as a password.
                None => "***".to_owned(),
            };
            format!("{user}{}", &rest[at..])
        }
        None => rest.to_owned(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if secret_key(key) => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|w| key.contains(w))
}

/// A duration as configuration text: whole milliseconds when exact (`"1500ms"`),
/// which every duration reader takes back.
pub(crate) fn duration_text(duration: Duration) -> String {
    if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}ms", duration.as_secs_f64() * 1000.0)
    }
}

/// Reads configuration text as a duration, allowing zero (a margin may be
/// zero; the options that may not are refused by their store, with the
/// option's name).
pub(crate) fn parse(text: &str) -> Result<Duration, LockError> {
    match verrou_core::parse_duration(text) {
        Ok(duration) => Ok(duration),
        Err(error) => {
            let number: String = text
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if number.parse::<f64>() == Ok(0.0)
                && verrou_core::parse_duration(&format!("1{}", &text.trim()[number.len()..]))
                    .is_ok()
            {
                Ok(Duration::ZERO)
            } else {
                Err(error)
            }
        }
    }
}

/// Reads a duration (and, for a [`Limit`], the words for no limit).
struct DurationVisitor {
    unbounded: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Limit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unbounded {
            f.write_str("a duration such as \"250ms\", \"1.5s\" or \"2 minutes\", a whole number of milliseconds, or \"none\"")
        } else {
            f.write_str("a duration such as \"250ms\", \"1.5s\" or \"2 minutes\", or a whole number of milliseconds")
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Limit, E> {
        read_text(text, self.unbounded).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Limit, E> {
        Ok(Limit::After(Duration::from_millis(millis)))
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Limit, E> {
        u64::try_from(millis)
            .map(|millis| Limit::After(Duration::from_millis(millis)))
            .map_err(|_| {
                E::custom(format!(
                    "invalid duration `{millis}`: duration must be positive"
                ))
            })
    }
}

fn read_text(text: &str, unbounded: bool) -> Result<Limit, LockError> {
    if unbounded
        && ["none", "never", "unbounded"]
            .iter()
            .any(|word| text.trim().eq_ignore_ascii_case(word))
    {
        return Ok(Limit::Unbounded);
    }
    parse(text).map(Limit::After)
}

/// `#[serde(with = "...")]` for an `Option<Duration>` field: absent or
/// `null` is `None`, otherwise a duration (never a word for no limit).
pub(crate) mod optional_duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_str(&duration_text(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            DurationVisitor { unbounded: false }.expecting(f)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            let limit = deserializer.deserialize_any(DurationVisitor { unbounded: false })?;
            Ok(limit.duration())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        for (url, shown) in [
            ("postgres://app:hunter2@db/app", "postgres://app:***@db/app"),
            ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://hunter2@host", "redis://***@host"),
            ("mysql://u:pa/ss@w@rd@host/db", "mysql://u:***@host/db"),
            (
                "postgres://db/app?user=a&password=hunter2",
                "postgres://db/app?user=a&password=***",
            ),
            ("host=db password=hunter2", "***"),
            ("host=db user=app", "host=db user=app"),
            ("postgres:app:hunter2@db/app", "***@db/app"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn durations_read_back_what_they_write() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(1500),
            Duration::from_micros(1500),
            Duration::from_secs(3600),
        ] {
            assert_eq!(parse(&duration_text(duration)).unwrap(), duration);
        }
    }

    #[test]
    fn zero_is_a_duration_but_not_a_tiny_one() {
        for zero in ["0", "0ms", "0s", " 0 seconds", "0.0s"] {
            assert_eq!(parse(zero).unwrap(), Duration::ZERO, "{zero}");
        }
        for bad in ["0.0001ms", "0 fortnights", "-0s", "zero", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
