//! `DynamoDbStoreBuilder`: where the locks live and how to reach DynamoDB.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use verrou_core::LockError;

use crate::store::{DynamoDbStore, STORE};
use crate::takeover::Sightings;
use crate::{table, tls};

/// The shortest timeout accepted: stores count time in whole milliseconds,
/// and a zero limit would fail every call with what looks like an outage.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// DynamoDB's limits on a table name.
const TABLE_NAME_BYTES: std::ops::RangeInclusive<usize> = 3..=255;

/// Configures and builds a [`DynamoDbStore`]; start from
/// [`DynamoDbStore::builder`], or from [`DynamoDbStore::from_client`] with a
/// client of your own.
///
/// The connection settings (`endpoint`, `region`, `credentials`,
/// `connect_timeout`, `ca_file`, and `load_aws_config` with the feature of
/// that name) make the builder's own client; a store on your own client
/// keeps that client's settings and uses all the others.
///
/// `Debug` shows the access key id but never the secret.
#[derive(Clone)]
pub struct DynamoDbStoreBuilder {
    table_name: String,
    create_table: bool,
    native_ttl: bool,
    table_ready_timeout: Duration,
    clock_skew_margin: Duration,
    operation_timeout: Option<Duration>,
    client: Option<Client>,
    endpoint: Option<String>,
    region: Option<String>,
    credentials: Option<Credentials>,
    connect_timeout: Duration,
    ca_file: Option<PathBuf>,
    /// Region and credentials from the SDK's chain (feature `aws-config`).
    load_aws_config: bool,
}

impl Default for DynamoDbStoreBuilder {
    fn default() -> Self {
        DynamoDbStoreBuilder {
            table_name: "verrou".to_owned(),
            create_table: true,
            native_ttl: true,
            table_ready_timeout: Duration::from_secs(60),
            clock_skew_margin: Duration::ZERO,
            operation_timeout: Some(Duration::from_secs(10)),
            client: None,
            endpoint: None,
            region: None,
            credentials: None,
            connect_timeout: Duration::from_secs(3),
            ca_file: None,
            load_aws_config: false,
        }
    }
}

/// What table set-up needs from the builder.
pub(crate) struct TableSettings<'a> {
    pub(crate) table: &'a str,
    pub(crate) create_table: bool,
    pub(crate) native_ttl: bool,
    pub(crate) table_ready_timeout: Duration,
    /// Bounds each request; `None`: unbounded.
    pub(crate) operation_timeout: Option<Duration>,
}

impl DynamoDbStoreBuilder {
    /// A builder on `client`; see [`DynamoDbStore::from_client`].
    pub(crate) fn on_client(client: Client) -> Self {
        DynamoDbStoreBuilder {
            client: Some(client),
            ..Self::default()
        }
    }

    /// The table holding the locks (default `verrou`): 3 to 255 characters
    /// among `a-z`, `A-Z`, `0-9`, `_`, `-` and `.`, as DynamoDB allows;
    /// [`build`](Self::build) refuses any other name with
    /// [`LockError::InvalidConfig`].
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
    /// At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]. The table is always looked at once, so
    /// 1 ms is enough for a table that is ACTIVE already (or becomes so the
    /// moment it is created, as in the emulators). `Duration::MAX` (a limit
    /// too far away for the clock to represent) means no limit.
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
    /// let builder = verrou_dynamodb::DynamoDbStore::builder()
    ///     .clock_skew_margin(Duration::from_millis(500));
    /// ```
    pub fn clock_skew_margin(mut self, margin: Duration) -> Self {
        self.clock_skew_margin = margin;
        self
    }

    /// The limit for one request to DynamoDB, the SDK's retries included
    /// (default 10 s; `None`: unbounded): every lock operation and each
    /// request of the table set-up. A request that runs out of time fails
    /// with a [`LockError::Store`] whose source is
    /// [`TimedOut`](verrou_core::store::TimedOut).
    ///
    /// Applies to a store on your own client too, on top of the client's
    /// own timeouts. At least 1 ms, or [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`]; `Some(Duration::MAX)` is the same as
    /// `None`.
    pub fn operation_timeout(mut self, limit: Option<Duration>) -> Self {
        self.operation_timeout = limit;
        self
    }

    /// The endpoint URL, for an emulator or a VPC endpoint
    /// (`http://127.0.0.1:8000`). Default: AWS's endpoint for the region.
    /// `https` needs the `rustls` feature (on by default). Not used with
    /// your own client.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The AWS region (default: `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    /// Not used with your own client.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Static credentials (default: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`). For instance roles,
    /// SSO and profiles, use `load_aws_config` (feature `aws-config`), or
    /// build a client yourself and use [`DynamoDbStore::from_client`]. Not
    /// used with your own client.
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

    /// The limit for opening a connection (default 3 s). At least one
    /// millisecond; `Duration::MAX` means no limit. Not used with your own
    /// client.
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// Trust only the certificate authorities in this PEM file for HTTPS,
    /// instead of the platform's roots: a private CA in front of an
    /// emulator or a proxy (default: the platform's roots). Applies to every
    /// request of the builder's own client, those of the credential chain
    /// included (`load_aws_config`: STS, SSO). Read at
    /// [`build`](Self::build).
    ///
    /// [`build`](Self::build) fails with [`LockError::InvalidConfig`] when
    /// the file cannot be read or holds no certificate rustls accepts, with
    /// an `http://` endpoint, with your own client
    /// ([`DynamoDbStore::from_client`]), or without the `rustls` feature.
    /// A server whose certificate this CA did not sign fails the build with
    /// a [`LockError::Store`].
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_dynamodb::DynamoDbStore::builder()
    ///     .endpoint("https://dynamodb.internal:8443")
    ///     .ca_file("/etc/verrou/internal-ca.pem")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Take the region, the credentials and any endpoint override from the
    /// AWS SDK's default chain when the store is built, as
    /// `aws_config::load_defaults` does: environment variables, the shared
    /// `config` and `credentials` files and their profiles (`AWS_PROFILE`),
    /// IAM Identity Center (SSO), web identity tokens (EKS IRSA and pod
    /// identity), `credential_process`, ECS task roles and EC2 instance
    /// roles (IMDSv2). Credentials are refreshed by the chain as they
    /// expire.
    ///
    /// What is set on the builder wins: [`region`](Self::region),
    /// [`credentials`](Self::credentials), [`endpoint`](Self::endpoint).
    /// The chain's own requests (STS, SSO, the instance metadata service)
    /// use the builder's HTTP client, its TLS and
    /// [`connect_timeout`](Self::connect_timeout); loading is bounded by
    /// the [`operation_timeout`](Self::operation_timeout). Not used with
    /// your own client.
    ///
    /// Needs the `aws-config` feature.
    ///
    /// ```rust,no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_dynamodb::DynamoDbStore::builder()
    ///     .load_aws_config()
    ///     .table_name("locks")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "aws-config")]
    pub fn load_aws_config(mut self) -> Self {
        self.load_aws_config = true;
        self
    }

    /// Checks the options, builds the client (unless given one), checks (or
    /// creates) the table and returns the store.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`], before any request, when the table name
    /// is not one DynamoDB accepts, a timeout is under a millisecond, or
    /// (for the builder's own client) the region or credentials are missing,
    /// `ca_file` is unusable, or an `https` endpoint is asked for without
    /// the `rustls` feature; and when the table has another key schema.
    /// [`LockError::Store`] when DynamoDB cannot be reached, does not answer
    /// in time or presents a TLS certificate that is not trusted or not for
    /// its host name, when the credential chain finds no credentials, or
    /// when the table is missing and `create_table` is off.
    pub async fn build(self) -> Result<DynamoDbStore, LockError> {
        check_table_name(&self.table_name)?;
        for (option, limit) in [
            ("operation_timeout", self.operation_timeout),
            ("connect_timeout", Some(self.connect_timeout)),
            ("table_ready_timeout", Some(self.table_ready_timeout)),
        ] {
            at_least_a_millisecond(option, limit)?;
        }
        let client = match &self.client {
            Some(_) if self.ca_file.is_some() => {
                return Err(LockError::invalid_config(
                    STORE,
                    "ca_file applies to the builder's own client; a client passed to \
                     `from_client` keeps its own TLS settings",
                ));
            }
            Some(client) => client.clone(),
            None => self.own_client().await?,
        };
        table::ensure(
            &client,
            &TableSettings {
                table: &self.table_name,
                create_table: self.create_table,
                native_ttl: self.native_ttl,
                table_ready_timeout: self.table_ready_timeout,
                operation_timeout: self.operation_timeout,
            },
        )
        .await?;
        Ok(DynamoDbStore::new(
            client,
            self.table_name.into(),
            Arc::new(Sightings::new(self.clock_skew_margin)),
            self.operation_timeout,
        ))
    }

    async fn own_client(&self) -> Result<Client, LockError> {
        let https = self
            .endpoint
            .as_deref()
            .is_none_or(|url| !url.to_ascii_lowercase().starts_with("http://"));
        if self.ca_file.is_some() && !https {
            return Err(LockError::invalid_config(
                STORE,
                "ca_file is set but the endpoint is `http://`: use `https://`",
            ));
        }
        let http_client = tls::http_client(https, self.ca_file.as_deref())?;
        // The operation timeout is the store's own (`within`), the same for
        // this client and one given to `from_client`.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .build();
        // Reads and table set-up retry; the lock writes turn retries off per
        // call (see `DynamoDbStore`).
        let retries = RetryConfig::standard().with_max_attempts(3);
        #[cfg(feature = "aws-config")]
        if self.load_aws_config {
            let sdk = crate::chain::load(
                crate::chain::Overrides {
                    region: self.region.as_deref(),
                    credentials: self.credentials.as_ref(),
                    endpoint: self.endpoint.as_deref(),
                },
                http_client,
                timeouts.clone(),
                self.operation_timeout,
            )
            .await?;
            let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .timeout_config(timeouts)
                .retry_config(retries);
            return Ok(Client::from_conf(config.build()));
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
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .http_client(http_client)
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(config.build()))
    }
}

/// Under a millisecond cannot be honoured: time is counted in whole
/// milliseconds, and zero would fail every call.
fn at_least_a_millisecond(option: &str, limit: Option<Duration>) -> Result<(), LockError> {
    match limit {
        Some(limit) if limit < MIN_TIMEOUT => Err(LockError::invalid_config(
            STORE,
            format!("`{option}` must be at least {MIN_TIMEOUT:?}, got {limit:?}"),
        )),
        _ => Ok(()),
    }
}

/// DynamoDB's rule for table names, checked before any request so that a bad
/// name is a configuration error rather than a `ValidationException`.
fn check_table_name(name: &str) -> Result<(), LockError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if TABLE_NAME_BYTES.contains(&name.len()) && name.chars().all(allowed) {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!(
                "`table_name` {name:?} is not a DynamoDB table name: 3 to 255 characters \
                 among a-z, A-Z, 0-9, `_`, `-` and `.`"
            ),
        ))
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

impl fmt::Debug for DynamoDbStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbStoreBuilder")
            .field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("native_ttl", &self.native_ttl)
            .field("table_ready_timeout", &self.table_ready_timeout)
            .field("clock_skew_margin", &self.clock_skew_margin)
            .field("operation_timeout", &self.operation_timeout)
            // Not the client itself: its configuration is long, and
            // credentials belong nowhere near a log line.
            .field("given_client", &self.client.is_some())
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
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_file", &self.ca_file)
            .field("load_aws_config", &self.load_aws_config)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for good in ["verrou", "abc", "a.b-c_D9", &"a".repeat(255)] {
            assert!(check_table_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "ver rou",
            "ver/rou",
            "verrou\u{e9}",
            &"a".repeat(256),
        ] {
            let error = check_table_name(bad).unwrap_err();
            assert!(error.to_string().contains("table_name"), "{error}");
        }
    }
}
