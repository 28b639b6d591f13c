//! `DynamoDbOptions`: where the locks live and how to reach DynamoDB.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use verrou_core::LockError;

use crate::store::{DynamoDbStore, STORE};

/// The shortest `timeout` and `connect_timeout` accepted.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// How to build a [`DynamoDbStore`]; start from [`DynamoDbStore::builder`].
///
/// The connection settings (`endpoint`, `region`, `credentials`, timeouts)
/// are used by [`build`](Self::build) only; [`DynamoDbStore::from_client`]
/// keeps the client's own and uses the table settings.
///
/// `Debug` shows the access key id but never the secret.
#[derive(Clone)]
pub struct DynamoDbOptions {
    pub(crate) table_name: String,
    pub(crate) create_table: bool,
    pub(crate) native_ttl: bool,
    pub(crate) table_ready_timeout: Duration,
    pub(crate) clock_skew_margin: Duration,
    endpoint: Option<String>,
    region: Option<String>,
    credentials: Option<Credentials>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for DynamoDbOptions {
    fn default() -> Self {
        DynamoDbOptions {
            table_name: "verrou".to_owned(),
            create_table: true,
            native_ttl: true,
            table_ready_timeout: Duration::from_secs(60),
            clock_skew_margin: Duration::ZERO,
            endpoint: None,
            region: None,
            credentials: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

impl DynamoDbOptions {
    /// The table holding the locks (default `verrou`).
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Create the table when it is missing (default `true`): partition key
    /// `key` of type S, on-demand billing. Building waits until it is ACTIVE.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// Turn on DynamoDB's native TTL on the `delete_after` attribute so that
    /// abandoned and released locks are eventually deleted by AWS (default
    /// `true`). Failures (an emulator without TTL, a role without
    /// `dynamodb:UpdateTimeToLive`) are ignored: TTL only saves storage.
    pub fn native_ttl(mut self, enable: bool) -> Self {
        self.native_ttl = enable;
        self
    }

    /// How long building waits for the table to become ACTIVE (default 60 s).
    ///
    /// Zero checks once and does not wait: the table must already be ACTIVE
    /// (or become so the moment it is created, as in the emulators). A limit
    /// too far away for the clock to represent (`Duration::MAX`) means no
    /// limit.
    pub fn table_ready_timeout(mut self, limit: Duration) -> Self {
        self.table_ready_timeout = limit;
        self
    }

    /// How much longer than a lease's length this client waits before it
    /// takes over a lease it has seen unchanged (default zero).
    ///
    /// DynamoDB conditions have no server time, so no wall clock decides
    /// when *another* client's lease is over: this client takes a lock over
    /// only after it has seen the same lease version on it for the lease's
    /// whole length (plus this margin), timed on its own monotonic clock from
    /// after the holder's write arrived. A holder that renews writes a new
    /// version and restarts the wait. Clocks that disagree on the time of
    /// day, by any amount, therefore cannot let two holders in.
    ///
    /// What is left is the *rate* at which clocks tick (the sense of "skew"
    /// in NTP): a holder whose clock runs slow by a fraction of the TTL. The
    /// lock's drift margin (1% of the TTL plus 1 ms by default) already
    /// covers that, so zero is safe; raise the margin only for clocks that
    /// may tick slower than that, or to leave a crashed holder's lease alone
    /// for longer. Releases free a lock at once whatever the margin.
    ///
    /// A margin too large to add to the clock (`Duration::MAX`) means an
    /// abandoned lease is never taken over: only a release or
    /// [`force_release`](verrou_core::Lock::force_release) frees it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = verrou_dynamodb::DynamoDbStore::builder()
    ///     .clock_skew_margin(Duration::from_millis(500));
    /// ```
    pub fn clock_skew_margin(mut self, margin: Duration) -> Self {
        self.clock_skew_margin = margin;
        self
    }

    /// The endpoint URL, for an emulator or a VPC endpoint
    /// (`http://127.0.0.1:8000`). Default: AWS's endpoint for the region,
    /// which needs the `rustls` feature.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The AWS region (default: `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Static credentials (default: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`). For instance roles,
    /// SSO and profiles build a client with `aws-config` and use
    /// [`DynamoDbStore::from_client`].
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "verrou-dynamodb",
        ));
        self
    }

    /// The limit for one request, retries included (default 10 s). At least
    /// one millisecond; `Duration::MAX` means no limit.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The limit for opening a connection (default 3 s). At least one
    /// millisecond; `Duration::MAX` means no limit.
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// Builds the client, checks (or creates) the table and returns the store.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] when the region or credentials are missing,
    /// a timeout is under a millisecond, or an `https` endpoint is asked for
    /// without the `rustls` feature; [`LockError::Store`] when DynamoDB cannot
    /// be reached or the table is missing and `create_table` is off.
    pub async fn build(self) -> Result<DynamoDbStore, LockError> {
        let client = self.client()?;
        DynamoDbStore::from_client(client, self).await
    }

    fn client(&self) -> Result<Client, LockError> {
        // A request cannot even be written in less; zero would fail every
        // call with a timeout that looks like an outage.
        for (name, limit) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if limit < MIN_TIMEOUT {
                return Err(LockError::invalid_config(
                    STORE,
                    format!("`{name}` must be at least {MIN_TIMEOUT:?}, got {limit:?}"),
                ));
            }
        }
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                LockError::invalid_config(STORE, "no region: call `.region(..)` or set AWS_REGION")
            })?;
        let credentials = self
            .credentials
            .clone()
            .or_else(env_credentials)
            .ok_or_else(|| {
                LockError::invalid_config(
                    STORE,
                    "no credentials: call `.credentials(..)`, set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or pass a client built with aws-config to `from_client`",
                )
            })?;
        let https = self
            .endpoint
            .as_deref()
            .is_none_or(|url| !url.to_ascii_lowercase().starts_with("http://"));
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .http_client(http_client(https)?)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_timeout(self.timeout)
                    .build(),
            )
            // Reads and table set-up retry; the lock writes turn retries off
            // per call (see `DynamoDbStore`).
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(config.build()))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_credentials() -> Option<Credentials> {
    Some(Credentials::new(
        env("AWS_ACCESS_KEY_ID")?,
        env("AWS_SECRET_ACCESS_KEY")?,
        env("AWS_SESSION_TOKEN"),
        None,
        "verrou-dynamodb-env",
    ))
}

#[cfg(feature = "rustls")]
fn http_client(_https: bool) -> Result<SharedHttpClient, LockError> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    // ring rather than aws-lc: the same TLS, much less C to compile.
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https())
}

#[cfg(not(feature = "rustls"))]
fn http_client(https: bool) -> Result<SharedHttpClient, LockError> {
    if https {
        return Err(LockError::invalid_config(
            STORE,
            "HTTPS needs the `rustls` feature of verrou-dynamodb (or a client of your own \
             passed to `DynamoDbStore::from_client`); only `http://` endpoints work without it",
        ));
    }
    // A plain HTTP client: no TLS stack to compile for emulators and tests.
    Ok(aws_smithy_http_client::Builder::new().build_http())
}

impl fmt::Debug for DynamoDbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbOptions")
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("native_ttl", &self.native_ttl)
            .field("table_ready_timeout", &self.table_ready_timeout)
            .field("clock_skew_margin", &self.clock_skew_margin)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.credentials.as_ref().map(Credentials::access_key_id),
            )
            .field(
                "secret_access_key",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
