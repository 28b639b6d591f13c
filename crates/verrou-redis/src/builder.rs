//! `RedisStoreBuilder`: where the store connects and how long it waits.

use std::fmt;
use std::time::Duration;

use fred::clients::{Client, Pool};
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::{
    Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, ServerConfig,
};
use verrou_core::LockError;

use crate::error::{ConnectError, STORE};
use crate::store::{Commands, RedisStore};

/// The default server when neither a URL, a config nor a client is given.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The shortest connect or command timeout: tokio's timers tick in whole
/// milliseconds, so anything shorter cannot be honoured.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest connect or command timeout. A lock operation that may wait
/// longer is a hang in all but name; fred would also read zero as "no
/// timeout at all", which is why zero is refused rather than passed on.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A counter retention above this (about a century) keeps counters forever.
/// It also keeps the scripts' millisecond and microsecond sums exact in
/// Lua's doubles (below 2^53).
const FOREVER_AFTER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Configures and connects a [`RedisStore`]; see [`RedisStore::builder`].
///
/// ```rust,no_run
/// # async fn demo() -> Result<(), verrou_core::LockError> {
/// use std::time::Duration;
/// use verrou_redis::RedisStore;
///
/// let store = RedisStore::builder()
///     .url("redis-cluster://127.0.0.1:7000")
///     .prefix("billing:")
///     .connect_timeout(Duration::from_secs(2))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    counter_retention: Duration,
    pool_size: usize,
}

enum Target {
    Url(String),
    Config(Box<Config>),
    Client(Client),
    Pool(Pool),
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            target: Target::Url(DEFAULT_URL.to_owned()),
            prefix: String::new(),
            connect_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(5),
            counter_retention: Duration::from_secs(3600),
            pool_size: 1,
        }
    }
}

impl RedisStoreBuilder {
    /// The server, as a fred URL (default `redis://127.0.0.1:6379`).
    ///
    /// `redis://[[user:]password@]host[:port][/db]` for one server,
    /// `redis-cluster://host:port[?node=host:port...]` for a Cluster (one
    /// node is enough, the others are discovered), `rediss://` needs a TLS
    /// feature of `fred`. `valkey://` and `valkey-cluster://` work too.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Target::Url(url.into());
        self
    }

    /// A fred [`Config`] instead of a URL (TLS, ACL user, sentinel, RESP3...).
    pub fn config(mut self, config: Config) -> Self {
        self.target = Target::Config(Box::new(config));
        self
    }

    /// Reuse a connected fred client instead of opening a connection. The
    /// store leaves it open when dropped. See [`RedisStore::from_client`].
    pub fn client(mut self, client: Client) -> Self {
        self.target = Target::Client(client);
        self
    }

    /// Reuse a connected fred pool. See [`RedisStore::from_pool`].
    pub fn pool(mut self, pool: Pool) -> Self {
        self.target = Target::Pool(pool);
        self
    }

    /// Put in front of every lock key, e.g. `"myapp:"` (default: none).
    /// Stores with different prefixes never see each other's locks, whatever
    /// the prefixes and keys (see the crate's "Data layout").
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for the server when connecting, at start-up and on
    /// each reconnect (default 3 s). [`build`](Self::build) refuses values
    /// outside 1 ms ..= 1 h.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one store operation may wait for its answer, including
    /// while the connection is being re-established, before it fails with a
    /// `Store` error (default 5 s). [`build`](Self::build) refuses values
    /// outside 1 ms ..= 1 h.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long a key's fencing counter is kept after the instant its last
    /// token names (default 1 h). Tokens are the server clock in
    /// microseconds (or the last token + 1 if that is higher), so a counter
    /// the clock has passed is only needed if the clock steps back: **the
    /// Redis server's clock must never step back by more than this**, or a
    /// key unused for longer could be given a token it gave before.
    /// Shorter keeps less memory when you lock ever-new keys (one counter,
    /// about 165 bytes, per key locked within the period).
    ///
    /// At least 1 ms ([`build`](Self::build) refuses less); a value above a
    /// century, such as `Duration::MAX`, keeps counters forever (the
    /// behaviour of earlier versions; [`prune`](verrou_core::LockStore::prune)
    /// then removes nothing). Stores that share a prefix should share this
    /// setting: each acquire sets the expiry its own store asks for.
    pub fn counter_retention(mut self, retention: Duration) -> Self {
        self.counter_retention = retention;
        self
    }

    /// Open this many connections (per Cluster node) instead of one
    /// (default 1: fred pipelines concurrent commands on one connection,
    /// which is usually enough). Ignored for `client` and `pool`.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Connects (unless given a client or pool) and returns the store.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] for an unusable URL or a duration out of
    /// its range (see each option); [`LockError::Store`] naming the address
    /// when the server cannot be reached within the connect timeout.
    pub async fn build(self) -> Result<RedisStore, LockError> {
        let settings = Settings {
            prefix: self.prefix,
            command_timeout: timeout_in_range("command_timeout", self.command_timeout)?,
            connect_timeout: timeout_in_range("connect_timeout", self.connect_timeout)?,
            counter_retention: retention(self.counter_retention)?,
        };
        let config = match self.target {
            Target::Client(client) => {
                return Ok(RedisStore::new(Commands::Client(client), false, settings));
            }
            Target::Pool(pool) => {
                return Ok(RedisStore::new(Commands::Pool(pool), false, settings));
            }
            Target::Url(url) => Config::from_url(&url).map_err(|e| {
                LockError::invalid_config(STORE, format!("bad redis url `{}`: {e}", redact(&url)))
            })?,
            Target::Config(config) => *config,
        };
        let endpoint = describe(&config.server);
        let mut builder = Builder::from_config(config);
        builder
            .set_connection_config(connection_config(settings.connect_timeout))
            .set_performance_config(PerformanceConfig {
                default_command_timeout: settings.command_timeout,
                ..PerformanceConfig::default()
            })
            .set_policy(reconnect_policy());
        let build_error = |e: fred::error::Error| LockError::invalid_config(STORE, e.to_string());
        let commands = if self.pool_size > 1 {
            Commands::Pool(builder.build_pool(self.pool_size).map_err(build_error)?)
        } else {
            Commands::Client(builder.build().map_err(build_error)?)
        };
        connect(&commands, &endpoint, settings.connect_timeout).await?;
        Ok(RedisStore::new(commands, true, settings))
    }
}

/// What the store keeps from the builder besides its connection.
pub(crate) struct Settings {
    pub(crate) prefix: String,
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// `None`: counters are kept forever.
    pub(crate) counter_retention: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        let defaults = RedisStoreBuilder::default();
        Settings {
            prefix: defaults.prefix,
            command_timeout: defaults.command_timeout,
            connect_timeout: defaults.connect_timeout,
            counter_retention: Some(defaults.counter_retention),
        }
    }
}

fn timeout_in_range(option: &str, timeout: Duration) -> Result<Duration, LockError> {
    if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        Ok(timeout)
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!("{option} must be between 1 ms and 1 h, got {timeout:?}"),
        ))
    }
}

fn retention(retention: Duration) -> Result<Option<Duration>, LockError> {
    if retention < Duration::from_millis(1) {
        Err(LockError::invalid_config(
            STORE,
            format!("counter_retention must be at least 1 ms, got {retention:?}"),
        ))
    } else if retention > FOREVER_AFTER {
        Ok(None)
    } else {
        Ok(Some(retention))
    }
}

/// Connections the store opens itself: bounded connect, and no automatic
/// resend of a command whose connection dropped (a resent acquire or release
/// could report `Held`/`NotOwned` for what the first send did; the caller
/// gets a `Store` error instead).
pub(crate) fn connection_config(connect_timeout: Duration) -> ConnectionConfig {
    ConnectionConfig {
        connection_timeout: connect_timeout,
        internal_command_timeout: connect_timeout,
        max_command_attempts: 1,
        // Names each connection after the client id, so operators (and the
        // tests) can find the store's connections in `CLIENT LIST`.
        auto_client_setname: true,
        ..ConnectionConfig::default()
    }
}

/// Reconnect forever, quickly at first, at most once a second.
pub(crate) fn reconnect_policy() -> ReconnectPolicy {
    ReconnectPolicy::new_exponential(0, 50, 1_000, 2)
}

async fn connect(commands: &Commands, endpoint: &str, within: Duration) -> Result<(), LockError> {
    let init = async {
        match commands {
            Commands::Client(client) => client.init().await.map(drop),
            Commands::Pool(pool) => pool.init().await.map(drop),
        }
    };
    // fred bounds each connection attempt; this bounds the whole start-up
    // (DNS, several Cluster nodes, the health check).
    let limit = within.saturating_add(Duration::from_secs(1));
    let failure = match tokio::time::timeout(limit, init).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(source)) => Some(source),
        Err(_) => None,
    };
    // Stop the reconnect loop of a client nobody will use.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        match commands {
            Commands::Client(client) => client.quit().await,
            Commands::Pool(pool) => pool.quit().await,
        }
    })
    .await;
    Err(LockError::store(
        STORE,
        ConnectError {
            endpoint: endpoint.to_owned(),
            within,
            source: failure,
        },
    ))
}

/// `host:port` of each configured server, for error messages (no password).
pub(crate) fn describe(server: &ServerConfig) -> String {
    let hosts: Vec<String> = server
        .hosts()
        .iter()
        .map(|s| format!("{}:{}", s.host, s.port))
        .collect();
    let kind = match server {
        ServerConfig::Clustered { .. } => "cluster ",
        ServerConfig::Sentinel { .. } => "sentinel ",
        _ => "",
    };
    format!("{kind}{}", hosts.join(","))
}

/// A URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    // Credentials end at the *last* `@`: a password may itself contain `/`,
    // `@` or `:` when the user did not percent-encode it, so no smarter
    // parse of the authority is trusted here.
    match (url.split_once("://"), url.rfind('@')) {
        (_, None) => url.to_owned(),
        (Some((scheme, _)), Some(at)) if at > scheme.len() => {
            format!("{scheme}://***{}", &url[at..])
        }
        (_, Some(at)) => format!("***{}", &url[at..]),
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Url(url) => redact(url),
            Target::Config(config) => describe(&config.server),
            Target::Client(client) => format!("client {}", client.id()),
            Target::Pool(_) => "pool".to_owned(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("target", &target)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("counter_retention", &self.counter_retention)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_outside_their_range_are_invalid_config() {
        for bad in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(999),
            Duration::from_secs(3601),
            Duration::MAX,
        ] {
            let error = timeout_in_range("command_timeout", bad).unwrap_err();
            assert!(
                matches!(error, LockError::InvalidConfig { .. }),
                "{bad:?}: {error:?}"
            );
            assert!(error.to_string().contains("command_timeout"), "{error}");
        }
        for good in [MIN_TIMEOUT, Duration::from_secs(5), MAX_TIMEOUT] {
            assert_eq!(timeout_in_range("t", good).unwrap(), good);
        }
    }

    #[test]
    fn retention_is_at_least_a_millisecond_and_huge_means_forever() {
        for bad in [Duration::ZERO, Duration::from_nanos(1)] {
            assert!(matches!(
                retention(bad),
                Err(LockError::InvalidConfig { .. })
            ));
        }
        let ms = Duration::from_millis(1);
        assert_eq!(retention(ms).unwrap(), Some(ms));
        assert_eq!(retention(FOREVER_AFTER).unwrap(), Some(FOREVER_AFTER));
        assert_eq!(retention(FOREVER_AFTER + ms).unwrap(), None);
        assert_eq!(retention(Duration::MAX).unwrap(), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:hunter2@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://bob:hunter2@host"), "redis://***@host");
        assert_eq!(redact("redis://:pa/ss@w@rd@host/0"), "redis://***@host/0");
        assert_eq!(redact("hunter2@host"), "***@host");
        assert_eq!(redact("redis://hunter2@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        let debug = format!("{:?}", RedisStore::builder().url("redis://u:s3cret@h:1"));
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
