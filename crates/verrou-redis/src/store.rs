//! `RedisStore`: the `LockStore` on Redis, Redis Cluster and compatible servers.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::{Client, Pool};
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::Value;
use fred::types::config::{Options, PerformanceConfig};
use tokio::sync::OnceCell;
use verrou_core::store::within;
use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

use crate::announcements::Announcements;
use crate::builder::{RedisStoreBuilder, Settings, describe, fred_limit, reconnect_policy};
use crate::error::{STORE, store_error};
use crate::keys::LockKeys;
use crate::prune::sweep;
use crate::scripts::Scripts;

/// The longest user key the handle accepts, in bytes. Redis itself takes far
/// longer keys; this keeps the escaped name (at most twice as long)
/// reasonable.
const MAX_KEY_BYTES: usize = 1024;

/// A TTL above this many milliseconds (about 285,000 years) is stored as
/// "never expires": Redis rejects expiry times that overflow its clock.
const MAX_TTL_MS: u64 = 1 << 53;

/// A lock store on Redis (one server, Redis Cluster, or a Redis-compatible
/// server such as Valkey). Clones share the connection.
///
/// See the [crate documentation](crate) for the key layout, the scripts and
/// the fencing-token design.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    commands: Commands,
    /// Whether the store opened `commands` itself (and so closes them).
    owned: bool,
    prefix: String,
    /// At most one send, bounded by the operation timeout (see `bounded`).
    options: Options,
    /// `None`: unbounded.
    operation_timeout: Option<Duration>,
    /// Bounds the subscriber's connection and `SUBSCRIBE`s; `None`: unbounded.
    connect_timeout: Option<Duration>,
    /// How long a counter outlives its last token; `None`: forever.
    counter_retention: Option<Duration>,
    scripts: Scripts,
    /// Connected on the first `watch_release`, retried after a failure.
    announcements: OnceCell<Announcements>,
}

/// The connection(s) operations are sent on.
pub(crate) enum Commands {
    Client(Client),
    Pool(Pool),
}

impl Commands {
    fn client(&self) -> &Client {
        match self {
            Commands::Client(client) => client,
            Commands::Pool(pool) => pool.next(),
        }
    }
}

impl RedisStore {
    /// Configure a store: URL or fred config, key prefix, timeouts.
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_redis::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .prefix("verrou:")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to `url` with the default settings; see
    /// [`RedisStoreBuilder::url`].
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, LockError> {
        Self::builder().url(url).build().await
    }

    /// A builder for a store on a fred client you already have (connected
    /// with `init`), with every other option available (prefix, timeouts).
    /// The client's configuration is used as is, except that each store
    /// operation is sent at most once and bounded by the
    /// [operation timeout](RedisStoreBuilder::operation_timeout). Release
    /// announcements use one more connection made from the same
    /// configuration. The store leaves the client open when dropped.
    ///
    /// ```rust,no_run
    /// # async fn demo(client: verrou_redis::fred::clients::Client) -> Result<(), verrou_core::LockError> {
    /// let store = verrou_redis::RedisStore::from_client(client)
    ///     .prefix("billing:")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_client(client: Client) -> RedisStoreBuilder {
        Self::builder().client(client)
    }

    /// A builder for a store on a fred pool you already have (connected
    /// with `init`); see [`from_client`](Self::from_client).
    pub fn from_pool(pool: Pool) -> RedisStoreBuilder {
        Self::builder().pool(pool)
    }

    pub(crate) fn new(commands: Commands, owned: bool, settings: Settings) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                commands,
                owned,
                prefix: settings.prefix,
                options: Options {
                    // Never resend: see `builder::connection_config`.
                    max_attempts: Some(1),
                    timeout: Some(fred_limit(settings.operation_timeout)),
                    ..Options::default()
                },
                operation_timeout: settings.operation_timeout,
                connect_timeout: settings.connect_timeout,
                counter_retention: settings.counter_retention,
                scripts: Scripts::new(),
                announcements: OnceCell::new(),
            }),
        }
    }

    /// The fred client operations are sent on (the next one, for a pool),
    /// e.g. to run your own commands on the same connection.
    pub fn client(&self) -> &Client {
        self.inner.commands.client()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn keys(&self, key: &str) -> LockKeys {
        LockKeys::new(&self.inner.prefix, key)
    }

    async fn run(
        &self,
        what: &'static str,
        script: &crate::scripts::Script,
        keys: &[&str],
        args: impl Fn() -> Vec<Value> + Send,
    ) -> Result<Value, LockError> {
        let client = self.client().with_options(&self.inner.options);
        // fred's command futures are kilobytes each, and this one would be
        // moved whole into the timeout, the span and the boxed trait future
        // around it; on the heap only a pointer moves (a profile showed
        // memcpy as half of the instructions of an acquire+release).
        let call = Box::pin(script.run(&client, keys, args));
        self.bounded(what, call).await
    }

    /// Runs one store operation within the operation timeout, which then
    /// fails it with a `TimedOut` source, as on every store.
    ///
    /// fred bounds each command by the same limit (`options`) too, because
    /// only its own timeout marks a command it gave up on so that, if it is
    /// still queued (the connection is down), it is never sent after the
    /// reconnect: a late acquire would take a lock nobody waits for. fred's
    /// limit starts a moment after ours, so when fred reports it, ours has
    /// run out as well: waiting on lets `within` report it.
    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, FredError>>,
    ) -> Result<T, LockError> {
        let limit = self.inner.operation_timeout;
        let started = Instant::now();
        let operation = async {
            match operation.await {
                Err(error)
                    if *error.kind() == ErrorKind::Timeout
                        && limit.is_some_and(|limit| started.elapsed() >= limit) =>
                {
                    std::future::pending().await
                }
                result => result.map_err(store_error),
            }
        };
        within(STORE, limit, what, operation).await
    }

    async fn announcements(&self) -> Result<&Announcements, LockError> {
        self.inner
            .announcements
            .get_or_try_init(|| async {
                let commands = self.client();
                let subscriber = Client::new(
                    commands.client_config(),
                    Some(PerformanceConfig {
                        // Room for bursts of releases before the fan-out
                        // lags (a lag wakes every waiter, which is safe).
                        broadcast_channel_capacity: 1024,
                        ..commands.perf_config()
                    }),
                    Some(commands.connection_config().clone()),
                    Some(
                        commands
                            .client_reconnect_policy()
                            .unwrap_or_else(reconnect_policy),
                    ),
                );
                Announcements::connect(subscriber, self.inner.connect_timeout).await
            })
            .await
    }
}

/// Milliseconds for `PX`/`PEXPIRE` by the one rule ([`Expiry::whole_millis`]);
/// empty for no expiry.
fn ttl_arg(ttl: Option<Duration>) -> Value {
    match ttl
        .map_or(Expiry::Never, Expiry::After)
        .whole_millis(MAX_TTL_MS)
    {
        Some(ms) => Value::from(ms.to_string()),
        None => Value::from(""),
    }
}

/// The counter retention in whole milliseconds, rounded up (the builder
/// bounds it well below 2^53 ms); empty to keep counters forever.
fn retention_arg(retention: Option<Duration>) -> Value {
    match retention {
        Some(retention) => Value::from(retention.as_nanos().div_ceil(1_000_000).to_string()),
        None => Value::from(""),
    }
}

fn as_flag(value: Value) -> Result<bool, LockError> {
    match value {
        Value::Integer(1) => Ok(true),
        Value::Integer(0) => Ok(false),
        other => Err(unexpected(other)),
    }
}

fn unexpected(value: Value) -> LockError {
    LockError::store(
        STORE,
        format!("unexpected reply from a verrou script: {value:?}"),
    )
}

#[async_trait]
impl LockStore for RedisStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let ttl = expiry.duration();
        let keys = self.keys(key);
        let reply = self
            .run(
                "acquire",
                &self.inner.scripts.acquire,
                &[&keys.lock, &keys.fence],
                || {
                    vec![
                        Value::from(owner),
                        ttl_arg(ttl),
                        retention_arg(self.inner.counter_retention),
                    ]
                },
            )
            .await?;
        match reply {
            Value::Null => Ok(Acquisition::Held),
            Value::Integer(token) if token > 0 => Ok(Acquisition::Acquired {
                fencing_token: Some(token as u64),
            }),
            other => Err(unexpected(other)),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let keys = self.keys(key);
        let reply = self
            .run(
                "release",
                &self.inner.scripts.release,
                &[&keys.lock],
                || vec![Value::from(owner), Value::from(keys.channel.as_str())],
            )
            .await?;
        if as_flag(reply)? {
            Ok(())
        } else {
            Err(LockError::not_owned(key))
        }
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        let keys = self.keys(key);
        self.run(
            "force_release",
            &self.inner.scripts.force_release,
            &[&keys.lock],
            || vec![Value::from(keys.channel.as_str())],
        )
        .await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let keys = self.keys(key);
        let client = self.client().with_options(&self.inner.options);
        let count: i64 = self
            .bounded("is_locked", client.exists(keys.lock.as_str()))
            .await?;
        Ok(count > 0)
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let ttl = expiry.duration();
        let keys = self.keys(key);
        let reply = self
            .run("extend", &self.inner.scripts.extend, &[&keys.lock], || {
                vec![Value::from(owner), ttl_arg(ttl)]
            })
            .await?;
        if as_flag(reply)? {
            Ok(())
        } else {
            Err(LockError::not_owned(key))
        }
    }

    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        let keys = self.keys(key);
        let watch = self.announcements().await?.watch(&keys.channel).await?;
        Ok(Some(ReleaseWatch::new(watch)))
    }

    /// Counters carry their own expiry, so Redis removes them by itself (see
    /// the crate's "Fencing tokens"); this sweep is for counters without
    /// one, written by earlier versions (for a store without prefix the
    /// names are the same) or kept "forever" by a store configured so. It
    /// `SCAN`s the whole keyspace of every primary for this prefix's
    /// counters and deletes those whose lock is free and whose value the
    /// server clock has passed by more than this store's counter retention.
    /// Run it once after upgrading, not on a schedule. With a retention of
    /// "forever" it removes nothing.
    async fn prune(&self) -> Result<u64, LockError> {
        let Some(retention) = self.inner.counter_retention else {
            return Ok(0);
        };
        let retention_ms =
            u64::try_from(retention.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        sweep(
            self.client(),
            &self.inner.options,
            &self.inner.prefix,
            retention_ms,
            &self.inner.scripts.prune,
        )
        .await
        .map_err(store_error)
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        STORE
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // Close the connections the store opened; a user's client stays open.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let commands = match &self.commands {
            Commands::Client(client) => Commands::Client(client.clone()),
            Commands::Pool(pool) => Commands::Pool(pool.clone()),
        };
        runtime.spawn(async move {
            let _ = match commands {
                Commands::Client(client) => client.quit().await,
                Commands::Pool(pool) => pool.quit().await,
            };
        });
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client = self.client();
        f.debug_struct("RedisStore")
            .field("server", &describe(&client.client_config().server))
            .field("prefix", &self.inner.prefix)
            .field("client", &client.id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds() {
        assert_eq!(ttl_arg(Some(Duration::from_micros(1))), Value::from("1"));
        assert_eq!(
            ttl_arg(Some(Duration::from_micros(1_500))),
            Value::from("2")
        );
        assert_eq!(ttl_arg(Some(Duration::from_secs(30))), Value::from("30000"));
    }

    #[test]
    fn retentions_are_whole_milliseconds_or_forever() {
        assert_eq!(
            retention_arg(Some(Duration::from_micros(1))),
            Value::from("1")
        );
        assert_eq!(
            retention_arg(Some(Duration::from_secs(3600))),
            Value::from("3600000")
        );
        assert_eq!(retention_arg(None), Value::from(""));
    }

    #[test]
    fn no_ttl_and_absurd_ttls_never_expire() {
        assert_eq!(ttl_arg(None), Value::from(""));
        assert_eq!(ttl_arg(Some(Duration::MAX)), Value::from(""));
        let largest = Duration::from_millis(1 << 53);
        assert_eq!(
            ttl_arg(Some(largest)),
            Value::from((1u64 << 53).to_string())
        );
    }
}
