//! `DynamoDbStore`: one conditional `UpdateItem` per lock operation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::customize::CustomizableOperation;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use tokio::time::Instant;
use verrou_core::store::within;
use verrou_core::{Acquisition, Expiry, LockError, LockStore, async_trait, random_owner};

use crate::builder::DynamoDbStoreBuilder;
use crate::clock::{lease, now_ms};
use crate::item::{self, FENCING_TOKEN, Holding, KEY, LEASE_MS, LEASE_VERSION, OWNER, Write};
use crate::takeover::Sightings;

pub(crate) const STORE: &str = "dynamodb";

/// DynamoDB's limit for a partition key of type S, in bytes of UTF-8: the
/// longest key the handle accepts. Keys are stored as given, without
/// prefix, so the whole limit is usable.
const MAX_KEY_BYTES: usize = 2048;

/// A lock store on a DynamoDB table. Clones share the client and what the
/// store has seen of other clients' leases.
///
/// DynamoDB conditions have no server time, so no wall clock decides when
/// *another* client's lease is over: a lease is taken over once this store
/// has seen it unchanged (same `lease_version`) for its whole length, timed
/// on this process's monotonic clock. See the crate documentation.
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
    sightings: Arc<Sightings>,
    /// Bounds each request; `None`: unbounded.
    operation_timeout: Option<Duration>,
}

/// A conditional `UpdateItem` as the store sends it: SDK retries turned off
/// for this request alone (see [`DynamoDbStore`]). `.send()` sends it.
pub type UpdateRequest =
    CustomizableOperation<UpdateItemOutput, UpdateItemError, UpdateItemFluentBuilder>;

/// What a conditional write came to.
enum Outcome {
    /// The write was applied; the attributes it asked back (`ReturnValues`).
    Applied(Option<HashMap<String, AttributeValue>>),
    /// The condition failed; the item as it was, when DynamoDB sent it back.
    Refused(Option<HashMap<String, AttributeValue>>),
}

impl DynamoDbStore {
    /// Configure a store that builds its own client.
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
    pub fn builder() -> DynamoDbStoreBuilder {
        DynamoDbStoreBuilder::default()
    }

    /// A builder for a store on a client you configured yourself (typically
    /// with `aws-config`, for roles, profiles and SSO). The client keeps its
    /// own connection settings; every other option is available, and
    /// [`build`](DynamoDbStoreBuilder::build) checks or creates the table as
    /// for a store with its own client.
    ///
    /// ```no_run
    /// # async fn demo(client: verrou_dynamodb::aws_sdk_dynamodb::Client) -> Result<(), verrou_core::LockError> {
    /// let store = verrou_dynamodb::DynamoDbStore::from_client(client)
    ///     .table_name("locks")
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_client(client: Client) -> DynamoDbStoreBuilder {
        DynamoDbStoreBuilder::on_client(client)
    }

    pub(crate) fn new(
        client: Client,
        table: Arc<str>,
        sightings: Arc<Sightings>,
        operation_timeout: Option<Duration>,
    ) -> Self {
        DynamoDbStore {
            client,
            table,
            sightings,
            operation_timeout,
        }
    }

    /// The SDK client, for anything else you want to do with DynamoDB.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table holding the locks.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The [clock-skew margin](DynamoDbStoreBuilder::clock_skew_margin).
    pub fn clock_skew_margin(&self) -> Duration {
        self.sightings.margin()
    }

    /// The `UpdateItem` of an acquire of `key` for `owner`, as
    /// [`LockStore::acquire`] sends it when this store is not taking over a
    /// lease it watched expire (the common path, and the only one on a free
    /// or fresh key): condition `attribute_not_exists(#owner)`, the update
    /// that writes owner, lease version, lease (or removes it for
    /// [`Expiry::Never`]) and sweep time and raises the fencing counter,
    /// `ReturnValues = UPDATED_NEW` (the new token comes back as
    /// `fencing_token`), the old item back on a failed condition, SDK
    /// retries off. A new lease version and the current time are taken
    /// now, as the store takes them per call.
    ///
    /// For audits and benchmarks (the bench's same-work floor sends it
    /// bare); not a way to take locks: sending it records nothing in this
    /// store (what the store sends next for this key, such as a takeover, is
    /// not the store's answer to it), and it applies no key-length check nor
    /// the operation timeout. Take locks with [`verrou_core::Lock`].
    ///
    /// # Errors
    /// [`LockError::NoRandomness`] if no random lease version could be drawn.
    pub fn acquire_request(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<UpdateRequest, LockError> {
        let version = new_version()?;
        let now = now_ms();
        let write = item::acquire(owner, now, &version, lease(now, expiry.duration()), None);
        Ok(self.request(key, write, ReturnValue::UpdatedNew, true))
    }

    /// The `UpdateItem` of a release of `key` held by `owner`, exactly as
    /// [`LockStore::release`] sends it: on condition that `owner` holds it
    /// and its lease has not ended by this client's clock, removes the
    /// owner and lease and sets the sweep time, keeping the counter;
    /// `ReturnValues = NONE`, SDK retries off. A failed condition
    /// (`ConditionalCheckFailedException`) means `owner` did not hold it.
    ///
    /// For audits and benchmarks; not a way to release locks: see
    /// [`acquire_request`](Self::acquire_request).
    pub fn release_request(&self, key: &str, owner: &str) -> UpdateRequest {
        let write = item::release(owner, now_ms());
        self.request(key, write, ReturnValue::None, false)
    }

    /// One conditional write, ready to send. `old_on_refusal` asks DynamoDB
    /// to send the item back if the condition fails: a refused acquire needs
    /// the lease it ran into (emulators may not send it: then it is read).
    fn request(
        &self,
        key: &str,
        write: Write,
        return_values: ReturnValue,
        old_on_refusal: bool,
    ) -> UpdateRequest {
        self.client
            .update_item()
            .table_name(&*self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .condition_expression(write.condition)
            .update_expression(write.update)
            .set_expression_attribute_names(Some(write.names))
            .set_expression_attribute_values(Some(write.values))
            .return_values(return_values)
            .set_return_values_on_condition_check_failure(
                old_on_refusal.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::new().retry_config(RetryConfig::disabled()),
            )
    }

    /// Sends one conditional write (see [`request`](Self::request)).
    async fn update(
        &self,
        what: &'static str,
        key: &str,
        write: Write,
        return_values: ReturnValue,
        old_on_refusal: bool,
    ) -> Result<Outcome, LockError> {
        let request = self
            .request(key, write, return_values, old_on_refusal)
            .send();
        let outcome = async {
            match request.await {
                Ok(output) => Ok(Outcome::Applied(output.attributes)),
                // Only a failed condition means "not yours / taken"; throttling,
                // a missing table, auth and network failures are store errors.
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(refusal)) => {
                        Ok(Outcome::Refused(refusal.item().cloned()))
                    }
                    _ => Err(LockError::store(STORE, e)),
                },
            }
        };
        within(STORE, self.operation_timeout, what, outcome).await
    }

    /// Reads what another client would need to time the lease on `key`.
    async fn read(
        &self,
        what: &'static str,
        key: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, LockError> {
        let request = self
            .client
            .get_item()
            .table_name(&*self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .projection_expression("#owner, #len, #ver")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#len", LEASE_MS)
            .expression_attribute_names("#ver", LEASE_VERSION)
            .send();
        let output = async { request.await.map_err(|e| LockError::store(STORE, e)) };
        Ok(within(STORE, self.operation_timeout, what, output)
            .await?
            .item)
    }
}

/// A fresh lease version: random, so that no later write can ever carry a
/// version someone saw earlier (which would let them take over a renewed
/// lease).
fn new_version() -> Result<String, LockError> {
    random_owner()
}

#[async_trait]
impl LockStore for DynamoDbStore {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        let version = new_version()?;
        // The wall clock first, then the monotonic one: the lease is timed
        // here from no earlier than the instant its end was computed from.
        let now = now_ms();
        let sent = Instant::now();
        let lease = lease(now, expiry.duration());
        let takeover = self.sightings.expired_version(key, sent);
        let write = item::acquire(owner, now, &version, lease, takeover.as_deref());
        let attributes = match self
            .update("acquire", key, write, ReturnValue::UpdatedNew, true)
            .await?
        {
            Outcome::Applied(attributes) => attributes,
            Outcome::Refused(old) => {
                let old = match old {
                    Some(old) => Some(old),
                    // Without the item (emulators), a refusal during a running
                    // wait is not worth a read: the wait goes on, and if the
                    // lease changed meanwhile, the takeover at its end is
                    // refused and reads it then. This keeps a contended key at
                    // one request per attempt, at the price of noticing a
                    // renewal up to one lease late.
                    None if self.sightings.is_waiting(key, Instant::now()) => {
                        return Ok(Acquisition::Held);
                    }
                    // The refusal stands whatever the read does; a failed read
                    // only means the wait starts at a later sighting.
                    None => match self.read("acquire", key).await {
                        Ok(old) => old,
                        Err(_) => return Ok(Acquisition::Held),
                    },
                };
                self.sightings
                    .saw(key, Holding::of(old.as_ref()), Instant::now());
                return Ok(Acquisition::Held);
            }
        };
        self.sightings.wrote(key, version, lease, sent);
        let token = attributes
            .as_ref()
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
        let write = item::release(owner, now_ms());
        match self
            .update("release", key, write, ReturnValue::None, false)
            .await?
        {
            Outcome::Applied(_) => {
                self.sightings.forget(key);
                Ok(())
            }
            Outcome::Refused(_) => Err(LockError::not_owned(key)),
        }
    }

    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        // A refusal means the key was already free.
        let write = item::force_release(now_ms());
        self.update("force_release", key, write, ReturnValue::None, false)
            .await?;
        self.sightings.forget(key);
        Ok(())
    }

    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        let item = self.read("is_locked", key).await?;
        Ok(self
            .sightings
            .saw(key, Holding::of(item.as_ref()), Instant::now()))
    }

    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        let version = new_version()?;
        let now = now_ms();
        let sent = Instant::now();
        let lease = lease(now, expiry.duration());
        let write = item::extend(owner, now, &version, lease);
        match self
            .update("extend", key, write, ReturnValue::None, false)
            .await?
        {
            Outcome::Applied(_) => {
                self.sightings.wrote(key, version, lease, sent);
                Ok(())
            }
            Outcome::Refused(_) => Err(LockError::not_owned(key)),
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
