//! Making sure the lock table exists, is ACTIVE and has the right key.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use verrou_core::LockError;
use verrou_core::store::within;

use crate::builder::TableSettings;
use crate::item::{DELETE_AFTER, KEY};
use crate::store::STORE;

/// Between two `DescribeTable` calls while the table is being created.
const POLL: Duration = Duration::from_millis(100);

/// Waits until the table serves requests (ACTIVE or UPDATING), creating it
/// first if it is missing and `create_table` is on. Several processes may do
/// this at once: whoever loses the `CreateTable` race gets
/// `ResourceInUseException` and simply waits. Each request is bounded by
/// the operation timeout; the wait as a whole by `table_ready_timeout`,
/// checked after each look so that the table is always looked at once.
pub(crate) async fn ensure(client: &Client, settings: &TableSettings<'_>) -> Result<(), LockError> {
    let table = settings.table;
    let limit = settings.operation_timeout;
    // `None`: a limit too far away for the clock, which is no limit.
    let deadline = Instant::now().checked_add(settings.table_ready_timeout);
    loop {
        let describe = async { Ok(client.describe_table().table_name(table).send().await) };
        match within(STORE, limit, "describing the table", describe).await? {
            Ok(output) => {
                if let Some(description) = output.table() {
                    check_key_schema(table, description)?;
                    // UPDATING (an index or capacity change) still serves
                    // reads and writes; only CREATING and worse must wait.
                    if matches!(
                        description.table_status(),
                        Some(TableStatus::Active | TableStatus::Updating)
                    ) {
                        break;
                    }
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                if !settings.create_table {
                    return Err(LockError::store(
                        STORE,
                        format!(
                            "table `{table}` does not exist and table creation is off: create it \
                             with partition key `{KEY}` of type S, or turn `create_table` on"
                        ),
                    ));
                }
                within(STORE, limit, "creating the table", create(client, table)).await?;
                continue;
            }
            Err(e) => return Err(LockError::store(STORE, e)),
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(LockError::store(
                STORE,
                format!(
                    "table `{table}` did not become ACTIVE within {:?}",
                    settings.table_ready_timeout
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    if settings.native_ttl {
        // Best effort, but bounded (both requests together): a silent server
        // must not hang the build here.
        let _ = within(STORE, limit, "enabling native TTL", async {
            enable_native_ttl(client, table).await;
            Ok(())
        })
        .await;
    }
    Ok(())
}

async fn create(client: &Client, table: &str) -> Result<(), LockError> {
    let result = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| LockError::store(STORE, e))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| LockError::store(STORE, e))?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Another process created it first; the caller waits for ACTIVE.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(LockError::store(STORE, e)),
    }
}

/// A table keyed on anything but `key` (S) alone would turn every lock call
/// into a validation error; say so once, at build time.
fn check_key_schema(table: &str, description: &TableDescription) -> Result<(), LockError> {
    let schema = description.key_schema();
    let hash_on_key = schema.len() == 1
        && schema[0].attribute_name() == KEY
        && schema[0].key_type() == &KeyType::Hash;
    let key_is_string = description
        .attribute_definitions()
        .iter()
        .any(|d| d.attribute_name() == KEY && d.attribute_type() == &ScalarAttributeType::S);
    if hash_on_key && key_is_string {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!("table `{table}` must have exactly one key: partition key `{KEY}` of type S"),
        ))
    }
}

/// Best effort: TTL only reclaims storage, the lock conditions never rely on
/// it. Emulators often lack the API and IAM roles may lack the permission.
async fn enable_native_ttl(client: &Client, table: &str) {
    let status = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .ok()
        .and_then(|out| {
            out.time_to_live_description()
                .and_then(|d| d.time_to_live_status().cloned())
        });
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return;
    }
    let Ok(specification) = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(DELETE_AFTER)
        .build()
    else {
        return;
    };
    // A concurrent builder may have turned it on a moment ago
    // (`ValidationException`): that is fine too.
    let _ = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await;
}
