//! `RedisStoreBuilder`: where the store connects and how long it waits.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use fred::clients::{Client, Pool};
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::{
    Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy, ServerConfig,
};
use verrou_core::LockError;
use verrou_core::store::within;

use crate::error::{ConnectError, STORE, store_error};
use crate::store::{Commands, RedisStore};
use crate::tls;

/// The default server when neither a URL, a config nor a client is given.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The shortest timeout: stores count time in whole milliseconds, and a
/// zero limit would fail every call (fred would even read it as "no limit").
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A counter retention above this (about a century) keeps counters forever,
/// and a timeout above it is no limit. It also keeps the scripts'
/// millisecond and microsecond sums exact in Lua's doubles (below 2^53).
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
    operation_timeout: Option<Duration>,
    counter_retention: Duration,
    max_connections: usize,
    ca_file: Option<PathBuf>,
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
            operation_timeout: Some(Duration::from_secs(5)),
            counter_retention: Duration::from_secs(3600),
            max_connections: 1,
            ca_file: None,
        }
    }
}

impl RedisStoreBuilder {
    /// The server, as a fred URL (default `redis://127.0.0.1:6379`).
    ///
    /// `redis://[[user:]password@]host[:port][/db]` for one server,
    /// `redis-cluster://host:port[?node=host:port...]` for a Cluster (one
    /// node is enough, the others are discovered). `valkey://` and
    /// `valkey-cluster://` work too.
    ///
    /// `rediss://`, `rediss-cluster://`, `rediss-sentinel://` (and
    /// `valkeys...`) connect with TLS (the `rustls` feature, on by default),
    /// checking the server's certificate against the platform's roots or
    /// [`ca_file`](Self::ca_file), and the host name in the URL against the
    /// certificate. A TLS URL is never served in plain text: without the
    /// feature, [`build`](Self::build) refuses it.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Target::Url(url.into());
        self
    }

    /// A fred [`Config`] instead of a URL (ACL user, sentinel, RESP3, a TLS
    /// set-up of your own such as client certificates...). Its TLS settings
    /// are used as they are, unless [`ca_file`](Self::ca_file) is set: that
    /// replaces the TLS connector (its roots and anything else set on it,
    /// such as a client certificate) with one trusting the file, and keeps
    /// the Cluster host mapping.
    pub fn config(mut self, config: Config) -> Self {
        self.target = Target::Config(Box::new(config));
        self
    }

    /// Reuse a connected fred client instead of opening a connection; the
    /// same as [`RedisStore::from_client`]. The store leaves it open when
    /// dropped.
    pub fn client(mut self, client: Client) -> Self {
        self.target = Target::Client(client);
        self
    }

    /// Reuse a connected fred pool; the same as [`RedisStore::from_pool`].
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
    /// each reconnect, and for the release subscriber's `SUBSCRIBE`s
    /// (default 3 s).
    ///
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]; `Duration::MAX` (anything above a
    /// century) means no limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one store operation may take, including while the
    /// connection is being re-established (default 5 s; `None`: unbounded).
    /// An operation that runs out of time fails with a
    /// [`LockError::Store`] whose source is
    /// [`TimedOut`](verrou_core::store::TimedOut); a command still queued
    /// then (the connection was down) is never sent. A
    /// [`prune`](verrou_core::LockStore::prune) sweep,
    /// which may scan a large keyspace, bounds each of its commands instead.
    ///
    /// Applies to a reused client or pool too, whatever its own settings.
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]; `Some(Duration::MAX)` (anything above a
    /// century) is the same as `None`.
    pub fn operation_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.operation_timeout = timeout;
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
    /// which is usually enough). Zero is [`LockError::InvalidConfig`].
    /// Ignored for a reused client or pool.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Trust only the certificate authorities in this PEM file for TLS
    /// (`rediss://`), instead of the platform's roots: a private CA, or a
    /// cloud provider's bundle. Read at [`build`](Self::build).
    ///
    /// [`build`](Self::build) fails with [`LockError::InvalidConfig`] when
    /// the file cannot be read or holds no certificate, and when the
    /// connection would not use TLS (a `redis://` URL, a config without
    /// TLS, a client or pool you connected yourself): a CA given for a
    /// plain connection is a mistake, not something to ignore. A server
    /// whose certificate this CA did not sign fails the build with a
    /// [`LockError::Store`].
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_redis::RedisStore::builder()
    ///     .url("rediss://redis.internal:6380")
    ///     .ca_file("/etc/verrou/redis-ca.pem")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Connects (unless given a client or pool) and returns the store.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] for an unusable URL, a timeout under a
    /// millisecond, zero connections or an unusable [`ca_file`](Self::ca_file)
    /// (see each option), before any connection is made;
    /// [`LockError::Store`] naming the address when the server cannot be
    /// reached within the connect timeout, or when its TLS certificate is
    /// not trusted or not for the host name connected to.
    pub async fn build(self) -> Result<RedisStore, LockError> {
        let settings = Settings {
            prefix: self.prefix,
            operation_timeout: limit("operation_timeout", self.operation_timeout)?,
            connect_timeout: limit("connect_timeout", Some(self.connect_timeout))?,
            counter_retention: retention(self.counter_retention)?,
        };
        if self.max_connections == 0 {
            return Err(LockError::invalid_config(
                STORE,
                "max_connections must be at least 1",
            ));
        }
        let ca_file = self.ca_file.as_deref();
        if ca_file.is_some() && matches!(self.target, Target::Client(_) | Target::Pool(_)) {
            return Err(LockError::invalid_config(
                STORE,
                "ca_file applies to connections the store opens; a client or pool you connected \
                 yourself keeps its own TLS settings",
            ));
        }
        let config = match self.target {
            Target::Client(client) => {
                return Ok(RedisStore::new(Commands::Client(client), false, settings));
            }
            Target::Pool(pool) => {
                return Ok(RedisStore::new(Commands::Pool(pool), false, settings));
            }
            Target::Url(url) => config_from_url(&url, ca_file)?,
            Target::Config(config) => with_ca_file(*config, ca_file)?,
        };
        let endpoint = describe(&config.server);
        #[cfg(feature = "rustls")]
        let tls = config.tls.is_some();
        #[cfg(not(feature = "rustls"))]
        let tls = false;
        let mut builder = Builder::from_config(config);
        builder
            .set_connection_config(connection_config(settings.connect_timeout))
            .set_performance_config(PerformanceConfig {
                default_command_timeout: fred_limit(settings.operation_timeout),
                ..PerformanceConfig::default()
            })
            .set_policy(reconnect_policy());
        let build_error = |e: fred::error::Error| LockError::invalid_config(STORE, e.to_string());
        let commands = if self.max_connections > 1 {
            Commands::Pool(
                builder
                    .build_pool(self.max_connections)
                    .map_err(build_error)?,
            )
        } else {
            Commands::Client(builder.build().map_err(build_error)?)
        };
        connect(&commands, &endpoint, tls, settings.connect_timeout).await?;
        Ok(RedisStore::new(commands, true, settings))
    }
}

/// A fred config from a URL, TLS decided by its scheme (see
/// [`tls::strip_tls_scheme`]).
fn config_from_url(url: &str, ca_file: Option<&std::path::Path>) -> Result<Config, LockError> {
    let (plain, use_tls) = tls::strip_tls_scheme(url);
    #[allow(unused_mut)] // set only with TLS support
    let mut config = Config::from_url(&plain).map_err(|e| {
        LockError::invalid_config(STORE, format!("bad redis url `{}`: {e}", redact(url)))
    })?;
    match (use_tls, ca_file) {
        (false, None) => {}
        (false, Some(_)) => {
            return Err(LockError::invalid_config(
                STORE,
                "ca_file is set but the URL does not ask for TLS: use `rediss://` (or \
                 `rediss-cluster://`)",
            ));
        }
        #[cfg(feature = "rustls")]
        (true, ca_file) => config.tls = Some(tls::connector(ca_file)?.into()),
        #[cfg(not(feature = "rustls"))]
        (true, _) => return Err(tls::unsupported("a `rediss://` URL")),
    }
    Ok(config)
}

/// A config of the caller's, its roots replaced by `ca_file` if set.
fn with_ca_file(config: Config, ca_file: Option<&std::path::Path>) -> Result<Config, LockError> {
    let Some(ca_file) = ca_file else {
        return Ok(config);
    };
    #[cfg(feature = "rustls")]
    {
        let mut config = config;
        match config.tls.as_mut() {
            Some(tls) => tls.connector = tls::connector(Some(ca_file))?,
            None => {
                return Err(LockError::invalid_config(
                    STORE,
                    "ca_file is set but the config has no TLS settings (`Config::tls`)",
                ));
            }
        }
        Ok(config)
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = (config, ca_file);
        Err(tls::unsupported("ca_file"))
    }
}

/// What the store keeps from the builder besides its connection.
pub(crate) struct Settings {
    pub(crate) prefix: String,
    /// `None`: unbounded.
    pub(crate) operation_timeout: Option<Duration>,
    /// `None`: unbounded.
    pub(crate) connect_timeout: Option<Duration>,
    /// `None`: counters are kept forever.
    pub(crate) counter_retention: Option<Duration>,
}

/// The one rule for timeouts: under a millisecond is a configuration error,
/// above a century (`Duration::MAX` included) is no limit (`None`).
fn limit(option: &str, timeout: Option<Duration>) -> Result<Option<Duration>, LockError> {
    match timeout {
        Some(timeout) if timeout < MIN_TIMEOUT => Err(LockError::invalid_config(
            STORE,
            format!("{option} must be at least 1 ms, got {timeout:?}"),
        )),
        Some(timeout) if timeout > FOREVER_AFTER => Ok(None),
        timeout => Ok(timeout),
    }
}

/// A limit as fred takes it: zero is fred's "no timeout".
pub(crate) fn fred_limit(limit: Option<Duration>) -> Duration {
    limit.unwrap_or(Duration::ZERO)
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
pub(crate) fn connection_config(connect_timeout: Option<Duration>) -> ConnectionConfig {
    ConnectionConfig {
        connection_timeout: fred_limit(connect_timeout),
        internal_command_timeout: fred_limit(connect_timeout),
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

async fn connect(
    commands: &Commands,
    endpoint: &str,
    tls: bool,
    connect_timeout: Option<Duration>,
) -> Result<(), LockError> {
    let init = async {
        match commands {
            Commands::Client(client) => client.init().await.map(drop),
            Commands::Pool(pool) => pool.init().await.map(drop),
        }
        .map_err(store_error)
    };
    // fred bounds each connection attempt; this bounds the whole start-up
    // (DNS, several Cluster nodes, the health check).
    let whole = connect_timeout.map(|limit| limit.saturating_add(Duration::from_secs(1)));
    let source = match within(STORE, whole, "connecting", init).await {
        Ok(()) => return Ok(()),
        // The driver's error, or `TimedOut`: kept as the source, under a
        // message that names the server.
        Err(LockError::Store { source, .. }) => source,
        Err(other) => return Err(other),
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
            tls,
            source,
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
            .field("operation_timeout", &self.operation_timeout)
            .field("counter_retention", &self.counter_retention)
            .field("max_connections", &self.max_connections)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_under_a_millisecond_are_invalid_config_and_huge_ones_no_limit() {
        for bad in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(999),
        ] {
            let error = limit("operation_timeout", Some(bad)).unwrap_err();
            assert!(
                matches!(error, LockError::InvalidConfig { .. }),
                "{bad:?}: {error:?}"
            );
            assert!(error.to_string().contains("operation_timeout"), "{error}");
        }
        for good in [MIN_TIMEOUT, Duration::from_secs(5), FOREVER_AFTER] {
            assert_eq!(limit("t", Some(good)).unwrap(), Some(good));
        }
        for unbounded in [None, Some(FOREVER_AFTER + MIN_TIMEOUT), Some(Duration::MAX)] {
            assert_eq!(limit("t", unbounded).unwrap(), None);
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
    }
}
