//! Table set-up: creation, reuse, concurrent creation, custom names, and a
//! clear error when the table is missing and creation is off.

mod support;

use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::types::TableStatus;
use verrou_testkit::unique;

async fn table_status(store: &DynamoDbStore, table: &str) -> Option<TableStatus> {
    match store
        .client()
        .describe_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(output) => output.table().and_then(|t| t.table_status().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("describe_table: {e:?}"),
    }
}

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

#[tokio::test]
async fn a_missing_table_is_created_and_an_existing_one_reused() {
    let Some(default_store) =
        verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let table = unique("verrou-create");
    assert_eq!(table_status(&default_store, &table).await, None);

    let first = support::builder().table_name(&table).build().await.unwrap();
    assert_eq!(first.table_name(), table);
    assert_eq!(
        table_status(&default_store, &table).await,
        Some(TableStatus::Active)
    );
    assert!(matches!(
        first.acquire("k", "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));

    // Built again on the same table: the lock taken above is still there, so
    // the table was reused, not recreated.
    let second = support::builder().table_name(&table).build().await.unwrap();
    assert!(second.is_locked("k").await.unwrap());
    assert_eq!(
        second.acquire("k", "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    second.release("k", "a").await.unwrap();
}

#[tokio::test]
async fn stores_built_at_the_same_time_on_a_new_table_all_succeed() {
    if verrou_conformance::require_service("dynamodb", support::make_store().await).is_none() {
        return;
    }
    let table = unique("verrou-race");
    let builds = (0..8).map(|_| {
        let options = support::builder().table_name(&table);
        tokio::spawn(options.build())
    });
    let mut stores = Vec::new();
    for build in builds {
        stores.push(
            build
                .await
                .unwrap()
                .expect("every concurrent build succeeds"),
        );
    }
    // They all talk to one table: exactly one of them gets the lock.
    let mut acquired = 0;
    for (i, store) in stores.iter().enumerate() {
        if let Acquisition::Acquired { .. } =
            store.acquire("k", &format!("o{i}"), TTL).await.unwrap()
        {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 1);
}

#[tokio::test]
async fn a_custom_table_keeps_its_locks_apart_from_the_default_table() {
    let Some(default_store) =
        verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let custom = support::builder()
        .table_name(unique("verrou-custom"))
        .build()
        .await
        .unwrap();
    assert_eq!(default_store.table_name(), "verrou");
    assert_ne!(custom.table_name(), "verrou");

    let key = unique("shared-key");
    assert!(matches!(
        custom.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    assert!(!default_store.is_locked(&key).await.unwrap());
    assert!(matches!(
        default_store.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    custom.release(&key, "a").await.unwrap();
    default_store.release(&key, "b").await.unwrap();
}

#[tokio::test]
async fn a_missing_table_with_creation_off_is_a_clear_store_error() {
    let Some(default_store) =
        verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let table = unique("verrou-absent");
    let error = support::builder()
        .table_name(&table)
        .create_table(false)
        .build()
        .await
        .unwrap_err();
    match &error {
        LockError::Store { store, source } => {
            assert_eq!(*store, "dynamodb");
            let message = source.to_string();
            assert!(
                message.contains(&table) && message.contains("does not exist"),
                "{message}"
            );
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(
        table_status(&default_store, &table).await,
        None,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_table_with_another_key_schema_is_refused() {
    use verrou_dynamodb::aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let Some(default_store) =
        verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let table = unique("verrou-foreign");
    default_store
        .client()
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let error = support::builder()
        .table_name(&table)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LockError::InvalidConfig {
                store: "dynamodb",
                ..
            }
        ),
        "{error:?}"
    );
}

/// DynamoDB table names may hold `-` and `.`, which SQL stores refuse.
#[tokio::test]
async fn a_table_name_with_dashes_and_dots_works() {
    if verrou_conformance::require_service("dynamodb", support::make_store().await).is_none() {
        return;
    }
    let table = format!("{}.v-2", unique("verrou-dash-dot"));
    let store = support::builder().table_name(&table).build().await.unwrap();
    assert_eq!(store.table_name(), table);
    assert!(matches!(
        store.acquire("k", "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release("k", "a").await.unwrap();
}

/// `from_client` starts a builder: the table options apply to a store on the
/// application's own client as to one with the builder's client.
#[tokio::test]
async fn a_given_client_takes_every_table_option() {
    let Some(default_store) =
        verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    let table = unique("verrou-given-client");
    let margin = Duration::from_millis(250);
    let missing = DynamoDbStore::from_client(default_store.client().clone())
        .table_name(&table)
        .create_table(false)
        .build()
        .await;
    assert!(
        matches!(missing, Err(LockError::Store { .. })),
        "{missing:?}"
    );
    let store = DynamoDbStore::from_client(default_store.client().clone())
        .table_name(&table)
        .clock_skew_margin(margin)
        .build()
        .await
        .unwrap();
    assert_eq!(store.table_name(), table);
    assert_eq!(store.clock_skew_margin(), margin);
    assert_eq!(
        table_status(&default_store, &table).await,
        Some(TableStatus::Active)
    );
    assert!(matches!(
        store.acquire("k", "a", TTL).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release("k", "a").await.unwrap();
}
