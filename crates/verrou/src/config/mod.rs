//! What a configuration file, the environment or a URL says: the stores,
//! which one is the default, and the defaults of every lock.

mod stores;
mod values;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use verrou_core::{Backoff, LockError, RetryPolicy};

pub use stores::{
    DynamoDbConfig, MemoryConfig, MysqlConfig, PostgresConfig, RedisConfig, SqliteConfig,
    StoreConfig,
};
use values::optional_duration;
pub(crate) use values::redact;
pub use values::{Limit, Secret, StoreUrl};

/// The environment variable [`Config::from_env`] and [`Config::with_env`]
/// read: the URL of the default store (see [`StoreConfig::from_url`]).
pub const STORE_URL_VAR: &str = "LOCK_STORE_URL";

/// The name [`Config::from_env`] and [`Config::from_url`] give their one
/// store.
pub const DEFAULT_STORE: &str = "default";

/// Named stores, the default one, and the TTL and retry policy of every
/// lock: the declarative form of a [`Verrou`](verrou_core::Verrou).
///
/// It reads from any serde format. In TOML:
///
/// ```toml
/// default = "main"
/// default_from_env = "LOCK_STORE"   # LOCK_STORE=cache picks another store
/// ttl = "30s"
///
/// [retry]
/// timeout = "5s"
/// delay = "50ms"
///
/// [stores.main]
/// driver = "postgres"
/// url = "postgres://app:secret@db:5432/app"
/// table_name = "locks"
///
/// [stores.cache]
/// driver = "redis"
/// url = "redis://cache:6379"
/// prefix = "app:"
/// operation_timeout = "none"
/// ```
///
/// Durations are text (`"250ms"`, `"1.5s"`, `"2 minutes"`) or whole
/// milliseconds; timeouts also take `"none"` for no limit. Unknown fields
/// and drivers are refused.
///
/// **Which store is the default**: the store named by the environment
/// variable that `default_from_env` names, when it is set; else `default`;
/// else a store named `"default"`; else the only store. Several stores and
/// none of these is [`LockError::InvalidConfig`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou::LockError> {
/// let config = verrou::Config::from_deserializer(&mut serde_json::Deserializer::from_str(
///     r#"{ "ttl": "5s", "stores": { "local": { "driver": "memory" } } }"#,
/// ))?;
/// let verrou = config.build().await?;
/// assert_eq!(verrou.default_store_name(), "local");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The default store's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// An environment variable (for example `LOCK_STORE`) that, when set
    /// and not empty, names the default store instead of `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_from_env: Option<String>,
    /// The stores, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreConfig>,
    /// The default TTL of every store's locks (default 30 s; `"never"`:
    /// locks never expire unless given a TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Limit>,
    /// How `acquire` retries, on every store (default: every 250 ms for up
    /// to 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
}

impl Config {
    /// An empty configuration; add stores with [`store`](Self::store).
    pub fn new() -> Self {
        Config::default()
    }

    /// Adds (or replaces) the store `name`.
    ///
    /// ```
    /// use verrou::{Config, StoreConfig};
    ///
    /// let config = Config::new()
    ///     .store("local", StoreConfig::memory())
    ///     .store("shared", StoreConfig::from_url("redis://127.0.0.1:6379")?);
    /// assert_eq!(config.stores.len(), 2);
    /// # Ok::<(), verrou::LockError>(())
    /// ```
    pub fn store(mut self, name: impl Into<String>, store: StoreConfig) -> Self {
        self.stores.insert(name.into(), store);
        self
    }

    /// One store, named `"default"`, at `url` (see [`StoreConfig::from_url`]
    /// for the forms).
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] with the reason when the URL is not one
    /// of the forms; its password is never part of the message.
    pub fn from_url(url: &str) -> Result<Self, LockError> {
        Ok(Config::new().store(DEFAULT_STORE, StoreConfig::from_url(url)?))
    }

    /// One store, named `"default"`, at the URL in `LOCK_STORE_URL`;
    /// `None` when the variable is unset or empty, so that the caller
    /// chooses the fallback out loud:
    ///
    /// ```
    /// use verrou::{Config, StoreConfig};
    ///
    /// // Memory when nothing is configured: right for tests and demos,
    /// // wrong for several processes, so say it here rather than by default.
    /// let config = Config::from_env()?
    ///     .unwrap_or_else(|| Config::new().store("default", StoreConfig::memory()));
    /// # Ok::<(), verrou::LockError>(())
    /// ```
    ///
    /// To combine with a configuration file, read the file and call
    /// [`with_env`](Self::with_env) on it.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] when the variable holds something that is
    /// not a store URL, or is not UTF-8.
    pub fn from_env() -> Result<Option<Self>, LockError> {
        Ok(store_from_env()?.map(|store| Config::new().store(DEFAULT_STORE, store)))
    }

    /// This configuration, with `LOCK_STORE_URL` (when set and not empty)
    /// added as the store `"default"` and made the default: a file names
    /// every store and its options, the environment says where the default
    /// one lives. `default_from_env`, when its variable is set, still wins.
    ///
    /// ```
    /// use verrou::{Config, StoreConfig};
    ///
    /// let file = Config::new().store("audit", StoreConfig::memory());
    /// let config = file.with_env()?; // + "default" when LOCK_STORE_URL is set
    /// assert!(config.stores.contains_key("audit"));
    /// # Ok::<(), verrou::LockError>(())
    /// ```
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn with_env(mut self) -> Result<Self, LockError> {
        if let Some(store) = store_from_env()? {
            self.stores.insert(DEFAULT_STORE.to_owned(), store);
            self.default = Some(DEFAULT_STORE.to_owned());
        }
        Ok(self)
    }

    /// Reads a configuration from any serde format, turning the format's
    /// error (an unknown field or driver, a bad duration, with the line
    /// where the format knows it) into [`LockError::InvalidConfig`].
    ///
    /// `serde_json::from_str::<Config>(text)` works as well, with the
    /// format's own error type.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] with the format's message.
    pub fn from_deserializer<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, LockError> {
        Config::deserialize(deserializer).map_err(|e| invalid(e.to_string()))
    }
}

/// How `acquire` retries: after `attempts` tries or `timeout`, whichever
/// comes first, waiting `delay` between tries (doubling up to `max_delay`
/// when that is set). Absent fields keep [`RetryPolicy::default`]'s.
///
/// ```
/// let retry: verrou::RetryConfig =
///     serde_json::from_str(r#"{ "timeout": "2s", "delay": "20ms", "max_delay": "1s" }"#).unwrap();
/// let policy = retry.policy()?;
/// assert_eq!(policy.timeout(), Some(std::time::Duration::from_secs(2)));
/// # Ok::<(), verrou::LockError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// How many times to ask the store at most (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The wait between two tries (default 250 ms).
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// How long to try in all (default 30 s; `"none"`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Limit>,
    /// When set, the wait doubles after each try up to this, with jitter
    /// (default: a fixed wait).
    #[serde(
        default,
        with = "optional_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_delay: Option<Duration>,
}

impl RetryConfig {
    /// The retry policy this describes.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] for zero attempts, a wait or timeout
    /// under a millisecond, or a `max_delay` below `delay`.
    pub fn policy(&self) -> Result<RetryPolicy, LockError> {
        let mut policy = RetryPolicy::default();
        if let Some(attempts) = self.attempts {
            if attempts == 0 {
                return Err(invalid("retry.attempts must be at least 1"));
            }
            policy = policy.with_attempts(Some(attempts));
        }
        if let Some(delay) = self.delay {
            at_least_a_millisecond("retry.delay", delay)?;
            policy = policy.with_delay(delay);
        }
        if let Some(timeout) = self.timeout {
            if let Some(timeout) = timeout.duration() {
                at_least_a_millisecond("retry.timeout", timeout)?;
            }
            policy = policy.with_timeout(timeout.duration());
        }
        if let Some(max_delay) = self.max_delay {
            if max_delay < policy.delay() {
                return Err(invalid(format!(
                    "retry.max_delay ({max_delay:?}) is below retry.delay ({:?})",
                    policy.delay()
                )));
            }
            policy = policy.with_backoff(Backoff::Exponential { max_delay });
        }
        Ok(policy)
    }
}

fn at_least_a_millisecond(option: &str, duration: Duration) -> Result<(), LockError> {
    if duration < Duration::from_millis(1) {
        return Err(invalid(format!(
            "{option} must be at least 1ms, got {duration:?}"
        )));
    }
    Ok(())
}

/// The store in `LOCK_STORE_URL`, if any.
fn store_from_env() -> Result<Option<StoreConfig>, LockError> {
    match std::env::var(STORE_URL_VAR) {
        Ok(url) if url.trim().is_empty() => Ok(None),
        Ok(url) => StoreConfig::from_url(&url).map(Some).map_err(|e| match e {
            LockError::InvalidConfig { store, reason } => {
                LockError::invalid_config(store, format!("{STORE_URL_VAR}: {reason}"))
            }
            other => other,
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(invalid(format!("{STORE_URL_VAR} is not valid UTF-8")))
        }
    }
}

/// A configuration error that is no single store's.
pub(crate) fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config("verrou", reason)
}
