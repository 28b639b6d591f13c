//! A configuration turned into stores and a [`Verrou`].
//!
//! Each driver has one function here, compiled with the store when its
//! feature is on and, when it is off, an error naming the feature: a
//! configuration never falls back to another store.

use std::sync::Arc;

use verrou_core::{IntoTtl, LockError, LockFactory, LockStore, Ttl, Verrou};

use crate::config::{
    Config, DEFAULT_STORE, DynamoDbConfig, Limit, MemoryConfig, MysqlConfig, PostgresConfig,
    RedisConfig, SqliteConfig, StoreConfig, invalid,
};

impl Config {
    /// Builds every store (connecting to its server and checking its table,
    /// one store after the other) and returns the [`Verrou`] over them,
    /// each store's factory with this configuration's TTL and retry
    /// policy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), verrou::LockError> {
    /// let verrou = verrou::Config::from_url("memory:")?.build().await?;
    /// let lock = verrou.create_lock("report:7", "5s")?;
    /// assert!(lock.try_acquire().await?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`], before any connection, when there is
    /// no store, the default is ambiguous or names no store, a store's
    /// driver is not compiled in (the message names the feature), or the
    /// TTL, retry or a store option is unusable (the message names the
    /// store); then whatever a store's own `build` returns
    /// ([`LockError::Store`] for a server that is down).
    pub async fn build(&self) -> Result<Verrou, LockError> {
        let default = self.default_store()?;
        let ttl = self.ttl.map(ttl).transpose()?;
        let retry = self.retry.as_ref().map(|r| r.policy()).transpose()?;
        // Every check that needs no server comes first, so a bad second
        // store does not cost a connection to the first.
        for (name, store) in &self.stores {
            if name.is_empty() {
                return Err(invalid("a store name is empty"));
            }
            available(store).map_err(|e| in_store(name, e))?;
        }
        let mut verrou = Verrou::builder();
        for (name, store) in &self.stores {
            let store = store.build().await.map_err(|e| in_store(name, e))?;
            let mut factory = LockFactory::from_arc(store);
            if let Some(ttl) = ttl {
                factory = factory.with_default_ttl(ttl);
            }
            if let Some(retry) = &retry {
                factory = factory.with_retry(retry.clone());
            }
            verrou = verrou.factory(name.clone(), factory);
        }
        verrou.default_store(default).build()
    }

    /// The default store's name, by the rule in [`Config`]'s documentation.
    fn default_store(&self) -> Result<String, LockError> {
        let names = || self.stores.keys().cloned().collect::<Vec<_>>().join(", ");
        if self.stores.is_empty() {
            return Err(invalid(
                "no store configured: add one under `stores`, or set LOCK_STORE_URL",
            ));
        }
        let from_env = self.default_from_env.as_deref().and_then(|var| {
            let value = std::env::var(var).ok()?;
            let value = value.trim();
            (!value.is_empty()).then(|| (value.to_owned(), format!(" (from {var})")))
        });
        let (name, origin) = match (from_env, &self.default) {
            (Some(chosen), _) => chosen,
            (None, Some(name)) => (name.clone(), String::new()),
            (None, None) if self.stores.contains_key(DEFAULT_STORE) => {
                (DEFAULT_STORE.to_owned(), String::new())
            }
            (None, None) if self.stores.len() == 1 => (
                self.stores.keys().next().cloned().unwrap_or_default(),
                String::new(),
            ),
            (None, None) => {
                return Err(invalid(format!(
                    "several stores ({}) and no `default`: name the default store",
                    names()
                )));
            }
        };
        if !self.stores.contains_key(&name) {
            return Err(invalid(format!(
                "the default store `{name}`{origin} is not configured (stores: {})",
                names()
            )));
        }
        Ok(name)
    }
}

impl StoreConfig {
    /// Builds this one store: connects to its server and checks (or
    /// creates) its table.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] when the driver's feature is off (the
    /// message names it), a required option is missing, or the store's
    /// builder refuses an option; [`LockError::Store`] when the server
    /// cannot be reached or fails.
    pub async fn build(&self) -> Result<Arc<dyn LockStore>, LockError> {
        available(self)?;
        match self {
            StoreConfig::Memory(config) => memory(config),
            StoreConfig::Redis(config) => redis(config).await,
            StoreConfig::Postgres(config) => postgres(config).await,
            StoreConfig::Mysql(config) => mysql(config).await,
            StoreConfig::Sqlite(config) => sqlite(config).await,
            StoreConfig::DynamoDb(config) => dynamodb(config).await,
        }
    }
}

/// Whether the driver is compiled in.
fn available(store: &StoreConfig) -> Result<(), LockError> {
    let compiled = match store {
        StoreConfig::Memory(_) => cfg!(feature = "memory"),
        StoreConfig::Redis(_) => cfg!(feature = "redis"),
        StoreConfig::Postgres(_) => cfg!(feature = "postgres"),
        StoreConfig::Mysql(_) => cfg!(feature = "mysql"),
        StoreConfig::Sqlite(_) => cfg!(feature = "sqlite"),
        StoreConfig::DynamoDb(_) => cfg!(feature = "dynamodb"),
    };
    if compiled {
        Ok(())
    } else {
        Err(disabled(store.driver()))
    }
}

fn disabled(driver: &'static str) -> LockError {
    LockError::invalid_config(
        driver,
        format!(
            "the `{driver}` driver is not compiled in: enable the `{driver}` feature of the \
             verrou crate (verrou = {{ version = \"0.1\", features = [\"{driver}\"] }})"
        ),
    )
}

/// Names the store in a configuration error: with several, the driver's
/// name alone does not say which.
fn in_store(name: &str, error: LockError) -> LockError {
    match error {
        LockError::InvalidConfig { store, reason } => {
            LockError::invalid_config(store, format!("store `{name}`: {reason}"))
        }
        other => other,
    }
}

fn ttl(limit: Limit) -> Result<Ttl, LockError> {
    match limit {
        Limit::Unbounded => Ok(Ttl::Never),
        Limit::After(duration) => duration
            .into_ttl()
            .map_err(|e| invalid(format!("ttl: {e}"))),
    }
}

#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "sqlite",
    feature = "dynamodb"
))]
use options::{Given, or_forever};

/// What the builders of the server stores share.
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "sqlite",
    feature = "dynamodb"
))]
mod options {
    use std::time::Duration;

    use crate::config::Limit;

    /// Sets an option on a builder only when the configuration gives it, so
    /// that every default stays the store's own.
    pub(super) trait Given: Sized {
        fn given<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
            match value {
                Some(value) => set(self, value),
                None => self,
            }
        }
    }

    impl<B> Given for B {}

    /// A limit for the options that take a plain `Duration`, where
    /// `Duration::MAX` is every store's "no limit".
    pub(super) fn or_forever(limit: Limit) -> Duration {
        limit.duration().unwrap_or(Duration::MAX)
    }

    /// A required URL, or the error naming the option.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(super) fn required<'a>(
        store: &'static str,
        url: Option<&'a crate::StoreUrl>,
    ) -> Result<&'a str, verrou_core::LockError> {
        url.map(crate::StoreUrl::as_str)
            .ok_or_else(|| verrou_core::LockError::invalid_config(store, "`url` is required"))
    }
}

#[cfg(feature = "memory")]
fn memory(_: &MemoryConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Ok(Arc::new(verrou_memory::MemoryStore::new()))
}

#[cfg(feature = "redis")]
async fn redis(config: &RedisConfig) -> Result<Arc<dyn LockStore>, LockError> {
    let store = verrou_redis::RedisStore::builder()
        .given(config.url.as_ref(), |b, url| b.url(url.as_str()))
        .given(config.prefix.clone(), |b, prefix| b.prefix(prefix))
        .given(config.max_connections, |b, n| b.max_connections(n))
        .given(config.connect_timeout, |b, t| {
            b.connect_timeout(or_forever(t))
        })
        .given(config.operation_timeout, |b, t| {
            b.operation_timeout(t.duration())
        })
        .given(config.counter_retention, |b, r| b.counter_retention(r))
        .given(config.ca_file.clone(), |b, path| b.ca_file(path))
        .build()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(feature = "postgres")]
async fn postgres(config: &PostgresConfig) -> Result<Arc<dyn LockStore>, LockError> {
    let url = options::required("postgres", config.url.as_ref())?;
    let store = verrou_postgres::PostgresStore::builder()
        .url(url)
        .given(config.table_name.clone(), |b, name| b.table_name(name))
        .given(config.create_table, |b, create| b.create_table(create))
        .given(config.max_connections, |b, n| b.max_connections(n))
        .given(config.connect_timeout, |b, t| {
            b.connect_timeout(or_forever(t))
        })
        .given(config.operation_timeout, |b, t| {
            b.operation_timeout(t.duration())
        })
        .given(config.release_announcements, |b, on| {
            b.release_announcements(on)
        })
        .given(config.synchronous_commit, |b, on| b.synchronous_commit(on))
        .given(config.ca_file.clone(), |b, path| b.ca_file(path))
        .build()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(feature = "mysql")]
async fn mysql(config: &MysqlConfig) -> Result<Arc<dyn LockStore>, LockError> {
    let url = options::required("mysql", config.url.as_ref())?;
    let store = verrou_mysql::MysqlStore::builder()
        .url(url)
        .given(config.table_name.clone(), |b, name| b.table_name(name))
        .given(config.create_table, |b, create| b.create_table(create))
        .given(config.max_connections, |b, n| b.max_connections(n))
        .given(config.connect_timeout, |b, t| {
            b.connect_timeout(or_forever(t))
        })
        .given(config.operation_timeout, |b, t| {
            b.operation_timeout(t.duration())
        })
        .given(config.ca_file.clone(), |b, path| b.ca_file(path))
        .build()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(feature = "sqlite")]
async fn sqlite(config: &SqliteConfig) -> Result<Arc<dyn LockStore>, LockError> {
    let builder = match (&config.path, config.in_memory) {
        (Some(path), false) => verrou_sqlite::SqliteStore::builder().path(path),
        (None, true) => verrou_sqlite::SqliteStore::builder().in_memory(),
        (Some(_), true) => {
            return Err(LockError::invalid_config(
                "sqlite",
                "`path` and `in_memory = true` both given: choose one",
            ));
        }
        (None, false) => {
            return Err(LockError::invalid_config(
                "sqlite",
                "`path` is required (or `in_memory = true`)",
            ));
        }
    };
    let store = builder
        .given(config.table_name.clone(), |b, name| b.table_name(name))
        .given(config.create_table, |b, create| b.create_table(create))
        .given(config.busy_timeout, |b, t| b.busy_timeout(or_forever(t)))
        .given(config.max_connections, |b, n| b.max_connections(n))
        .build()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(feature = "dynamodb")]
async fn dynamodb(config: &DynamoDbConfig) -> Result<Arc<dyn LockStore>, LockError> {
    let credentials = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.expose().to_owned())),
        (None, None) => None,
        _ => {
            return Err(LockError::invalid_config(
                "dynamodb",
                "`access_key_id` and `secret_access_key` go together: give both or neither",
            ));
        }
    };
    let builder = match config.aws_config {
        Some(true) => aws_config(verrou_dynamodb::DynamoDbStore::builder())?,
        Some(false) | None => verrou_dynamodb::DynamoDbStore::builder(),
    };
    let store = builder
        .given(config.endpoint.as_ref(), |b, url| b.endpoint(url.as_str()))
        .given(config.ca_file.clone(), |b, path| b.ca_file(path))
        .given(config.region.clone(), |b, region| b.region(region))
        .given(credentials, |b, (id, secret)| b.credentials(id, secret))
        .given(config.table_name.clone(), |b, name| b.table_name(name))
        .given(config.create_table, |b, create| b.create_table(create))
        .given(config.native_ttl, |b, on| b.native_ttl(on))
        .given(config.table_ready_timeout, |b, t| {
            b.table_ready_timeout(or_forever(t))
        })
        .given(config.clock_skew_margin, |b, margin| {
            b.clock_skew_margin(margin)
        })
        .given(config.operation_timeout, |b, t| {
            b.operation_timeout(t.duration())
        })
        .given(config.connect_timeout, |b, t| {
            b.connect_timeout(or_forever(t))
        })
        .build()
        .await?;
    Ok(Arc::new(store))
}

#[cfg(all(feature = "dynamodb", feature = "aws-config"))]
fn aws_config(
    builder: verrou_dynamodb::DynamoDbStoreBuilder,
) -> Result<verrou_dynamodb::DynamoDbStoreBuilder, LockError> {
    Ok(builder.load_aws_config())
}

/// Asked for without the feature: refused, rather than a store that
/// silently looks for keys in the environment only.
#[cfg(all(feature = "dynamodb", not(feature = "aws-config")))]
fn aws_config(
    _: verrou_dynamodb::DynamoDbStoreBuilder,
) -> Result<verrou_dynamodb::DynamoDbStoreBuilder, LockError> {
    Err(LockError::invalid_config(
        "dynamodb",
        "`aws_config = true` needs the `aws-config` feature of the verrou crate \
         (verrou = { version = \"0.1\", features = [\"aws-config\"] })",
    ))
}

// Without its feature a driver is refused by `available` before these run;
// they exist so that `build` reads the same whatever the features.

#[cfg(not(feature = "memory"))]
fn memory(_: &MemoryConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("memory"))
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &RedisConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("redis"))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_: &PostgresConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("postgres"))
}

#[cfg(not(feature = "mysql"))]
async fn mysql(_: &MysqlConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("mysql"))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(_: &SqliteConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("sqlite"))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb(_: &DynamoDbConfig) -> Result<Arc<dyn LockStore>, LockError> {
    Err(disabled("dynamodb"))
}
