//! `DynamoDbStore`: one conditional `UpdateItem` per lock operation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use verrou_core::{Acquisition, Expiry, LockError, LockStore, async_trait, validate_key};

use crate::clock::{lease_end_ms, now_ms};
use crate::item::{self, EXPIRES_AT_MS, FENCING_TOKEN, KEY, OWNER, Write};
use crate::options::DynamoDbOptions;
use crate::table;

pub(crate) const STORE: &str = "dynamodb";

/// DynamoDB's limit for a partition key of type S, in bytes of UTF-8. Keys
/// are stored as given, without prefix, so the whole limit is usable.
const MAX_KEY_BYTES: usize = 2048;

/// A lock store on a DynamoDB table. Clones share the client.
///
/// Expiry is judged by the **client's clock** (DynamoDB conditions have no
/// server time): see the crate documentation for the clock-skew margin.
///
/// The lock writes are sent with SDK retries turned off, whatever the
/// client's retry configuration: a retried conditional write whose first
/// attempt did land would fail its condition and report a lock this caller
/// holds as `Held` (or a release that happened as `NotOwned`). A failed
/// attempt is a [`LockError::Store`] instead, which the lock layer handles
/// (an acquire that failed this way is followed by an owner-checked release).
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: Arc<str>,
    /// [`DynamoDbOptions::clock_skew_margin`] in whole milliseconds.
    skew_margin_ms: u64,
}

impl DynamoDbStore {
    /// Options for a store that builds its own client.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), verrou_core::LockError> {
    /// let store = verrou_dynamodb::DynamoDbStore::builder()
    ///     .endpoint("http://127.0.0.1:8000")
    ///     .region("us-east-1")
    ///     .credentials("local", "local")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> DynamoDbOptions {
        DynamoDbOptions::default()
    }

    /// A store on a client you configured yourself (typically with
    /// `aws-config`, for roles, profiles and SSO). Only the table settings of
    /// `options` are used; the table is checked or created as in
    /// [`DynamoDbOptions::build`].
    ///
    /// # Errors
    /// [`LockError::Store`] when DynamoDB cannot be reached or the table is
    /// missing and `create_table` is off; [`LockError::InvalidConfig`] when the
    /// table has another key schema.
    pub async fn from_client(client: Client, options: DynamoDbOptions) -> Result<Self, LockError> {
        table::ensure(&client, &options).await?;
        Ok(DynamoDbStore {
            client,
            table: options.table_name.into(),
            // Rounded up: a margin is a lower bound on the wait.
            skew_margin_ms: u64::try_from(options.clock_skew_margin.as_micros().div_ceil(1000))
                .unwrap_or(u64::MAX),
        })
    }

    /// The SDK client, for anything else you want to do with DynamoDB.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table holding the locks.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The [clock-skew margin](DynamoDbOptions::clock_skew_margin).
    pub fn clock_skew_margin(&self) -> Duration {
        Duration::from_millis(self.skew_margin_ms)
    }

    /// Leases that ended before this instant of the client's clock are over
    /// for everybody, whatever their clocks say (see the margin).
    fn ended_before(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.skew_margin_ms)
    }

    async fn update(
        &self,
        key: &str,
        write: Write,
        return_values: ReturnValue,
    ) -> Result<Option<UpdateItemOutput>, LockError> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .condition_expression(write.condition)
            .update_expression(write.update)
            .set_expression_attribute_names(Some(write.names))
            .set_expression_attribute_values(Some(write.values))
            .return_values(return_values)
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::new().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output)),
            // Only a failed condition means "not yours / taken"; throttling,
            // a missing table, auth and network failures are store errors.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(LockError::store(STORE, e)),
        }
    }
}

#[async_trait]
impl LockStore for DynamoDbStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let ttl = expiry.duration();
        validate_key(key, MAX_KEY_BYTES)?;
        let now = now_ms();
        let write = item::acquire(owner, now, self.ended_before(now), lease_end_ms(now, ttl));
        let Some(output) = self.update(key, write, ReturnValue::UpdatedNew).await? else {
            return Ok(Acquisition::Held);
        };
        let token = output
            .attributes()
            .and_then(|a| a.get(FENCING_TOKEN))
            .and_then(item::number)
            .ok_or_else(|| {
                LockError::store(STORE, "the acquire answer carries no fencing token")
            })?;
        Ok(Acquisition::Acquired {
            fencing_token: Some(token),
        })
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate_key(key, MAX_KEY_BYTES)?;
        let write = item::release(owner, now_ms());
        match self.update(key, write, ReturnValue::None).await? {
            Some(_) => Ok(()),
            None => Err(LockError::not_owned(key)),
        }
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        validate_key(key, MAX_KEY_BYTES)?;
        // A failed condition means the key was already free.
        self.update(key, item::force_release(now_ms()), ReturnValue::None)
            .await?;
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        validate_key(key, MAX_KEY_BYTES)?;
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .projection_expression("#owner, #exp")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#exp", EXPIRES_AT_MS)
            .send()
            .await
            .map_err(|e| LockError::store(STORE, e))?;
        // Read the clock after the answer: a slow reply errs towards "free",
        // which only makes a waiter try `save`, whose condition decides.
        Ok(output
            .item()
            .is_some_and(|item| item::is_held(item, self.ended_before(now_ms()))))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let ttl = expiry.duration();
        validate_key(key, MAX_KEY_BYTES)?;
        let now = now_ms();
        let write = item::extend(owner, now, lease_end_ms(now, ttl));
        match self.update(key, write, ReturnValue::None).await? {
            Some(_) => Ok(()),
            None => Err(LockError::not_owned(key)),
        }
    }

    fn max_key_bytes(&self) -> usize {
        MAX_KEY_BYTES
    }

    fn name(&self) -> &'static str {
        STORE
    }
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its configuration is long, and credentials belong
        // nowhere near a log line.
        f.debug_struct("DynamoDbStore")
            .field("table", &self.table)
            .field("region", &self.client.config().region())
            .field("clock_skew_margin", &self.clock_skew_margin())
            .finish_non_exhaustive()
    }
}
