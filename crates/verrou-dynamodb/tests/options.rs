//! Every `Duration` option at its extremes (zero, one nanosecond, huge,
//! `Duration::MAX`): a clear `InvalidConfig` (every timeout under a
//! millisecond) or the documented meaning, never a panic or a hang. TTLs at
//! their extremes are checked on the raw store too.

mod support;

use std::future::Future;
use std::time::Duration;

use verrou_conformance::builders;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use verrou_dynamodb::aws_sdk_dynamodb::{self, Client};
use verrou_dynamodb::{DynamoDbStore, DynamoDbStoreBuilder};
use verrou_testkit::unique;

/// A century: huge, but still a time the clock can represent.
const HUGE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Anything that should answer at once answers within this, or the test
/// says which call hung.
async fn within<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn assert_invalid_config(what: &str, result: Result<DynamoDbStore, LockError>, needle: &str) {
    match result {
        Err(LockError::InvalidConfig {
            store: "dynamodb",
            ref reason,
            ..
        }) if reason.contains(needle) => {}
        other => panic!("{what}: expected InvalidConfig naming `{needle}`, got {other:?}"),
    }
}

/// Checked before any request: no emulator needed. On a store's own client
/// and on a given one alike.
#[tokio::test]
async fn timeouts_under_a_millisecond_are_invalid_config() {
    builders::rejects_timeouts_under_a_millisecond("operation_timeout", |limit| {
        support::builder().operation_timeout(Some(limit)).build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("connect_timeout", |limit| {
        support::builder().connect_timeout(limit).build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("table_ready_timeout", |limit| {
        support::builder().table_ready_timeout(limit).build()
    })
    .await;
    // A client nobody connects: the options are checked first.
    let client = Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build(),
    );
    builders::rejects_timeouts_under_a_millisecond("operation_timeout", |limit| {
        DynamoDbStore::from_client(client.clone())
            .operation_timeout(Some(limit))
            .build()
    })
    .await;
    builders::rejects_timeouts_under_a_millisecond("table_ready_timeout", |limit| {
        DynamoDbStore::from_client(client.clone())
            .table_ready_timeout(limit)
            .build()
    })
    .await;
    // The message names the option.
    for (option, builder) in [
        (
            "operation_timeout",
            support::builder().operation_timeout(Some(Duration::ZERO)),
        ),
        (
            "connect_timeout",
            support::builder().connect_timeout(Duration::ZERO),
        ),
        (
            "table_ready_timeout",
            support::builder().table_ready_timeout(Duration::ZERO),
        ),
    ] {
        assert_invalid_config(
            option,
            within("build", builder.build()).await,
            &format!("`{option}` must be at least 1ms"),
        );
    }
}

/// Builds a store from `builder` and takes, checks and frees one lock.
async fn round_trip(what: &str, builder: DynamoDbStoreBuilder) -> Option<DynamoDbStore> {
    let store =
        verrou_conformance::require_service("dynamodb", within(what, builder.build()).await)?;
    let key = unique("extreme-options");
    let acquired = within(
        what,
        store.acquire(&key, "a", Expiry::After(Duration::from_secs(30))),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        matches!(acquired, Acquisition::Acquired { .. }),
        "{what}: {acquired:?}"
    );
    assert!(within(what, store.is_locked(&key)).await.unwrap());
    within(what, store.release(&key, "a")).await.unwrap();
    Some(store)
}

#[tokio::test]
async fn huge_timeouts_mean_no_limit() {
    for limit in [HUGE, Duration::MAX] {
        for (what, options) in [
            (
                "operation_timeout",
                support::builder().operation_timeout(Some(limit)),
            ),
            ("connect_timeout", support::builder().connect_timeout(limit)),
            (
                "both timeouts",
                support::builder()
                    .operation_timeout(Some(limit))
                    .connect_timeout(limit),
            ),
            (
                "no operation_timeout",
                support::builder().operation_timeout(None),
            ),
        ] {
            if round_trip(&format!("{what} {limit:?}"), options)
                .await
                .is_none()
            {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_one_millisecond_timeout_is_accepted_and_fails_as_a_store_error_if_too_short() {
    // The smallest accepted value. Whether a request fits in it depends on
    // the machine; if not, the failure is a store error, not a hang.
    let builder = support::builder().operation_timeout(Some(Duration::from_millis(1)));
    match within("build with a 1 ms timeout", builder.build()).await {
        Ok(_) | Err(LockError::Store { .. }) => {}
        Err(other) => panic!("a 1 ms timeout: {other:?}"),
    }
}

#[tokio::test]
async fn table_ready_timeout_from_a_millisecond_to_max() {
    // A millisecond, the least, still looks once: enough for a table that
    // exists. Huge limits and `Duration::MAX` (past what the clock can
    // hold) are no limit, so a new table is waited for.
    for limit in [Duration::from_millis(1), HUGE, Duration::MAX] {
        let what = format!("table_ready_timeout {limit:?}");
        if round_trip(&what, support::builder().table_ready_timeout(limit))
            .await
            .is_none()
        {
            return;
        }
        let fresh = unique("ready-timeout");
        let builder = support::builder()
            .table_ready_timeout(limit)
            .table_name(fresh);
        if limit > Duration::from_secs(1) {
            round_trip(&format!("{what}, new table"), builder).await;
            continue;
        }
        // The emulator flips a new table to ACTIVE on its next timer tick,
        // which a look right after `CreateTable` can beat: with 1 ms that
        // one look decides, and "not ACTIVE yet" is the right answer.
        match within(&what, builder.build()).await {
            Ok(_) => {}
            Err(LockError::Store { source, .. }) => assert!(
                source
                    .to_string()
                    .contains("did not become ACTIVE within 1ms"),
                "{what}, new table: {source}"
            ),
            Err(other) => panic!("{what}, new table: {other:?}"),
        }
    }
}

#[tokio::test]
async fn clock_skew_margin_from_zero_to_max() {
    for margin in [Duration::ZERO, Duration::from_nanos(1), HUGE, Duration::MAX] {
        let what = format!("clock_skew_margin {margin:?}");
        let Some(store) = round_trip(&what, support::builder().clock_skew_margin(margin)).await
        else {
            return;
        };
        assert_eq!(store.clock_skew_margin(), margin, "{what}");

        // An abandoned 50 ms lease, written by this store.
        let key = unique("extreme-margin");
        store
            .acquire(&key, "crashed", Expiry::After(Duration::from_millis(50)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let taken = store
            .acquire(&key, "next", Expiry::After(Duration::from_secs(30)))
            .await
            .unwrap();
        if margin < Duration::from_millis(200) {
            assert!(
                matches!(taken, Acquisition::Acquired { .. }),
                "{what}: {taken:?}"
            );
        } else {
            // Past the lease, but not past the margin; `Duration::MAX` is a
            // wait that never ends, so only a force release frees the key.
            assert_eq!(taken, Acquisition::Held, "{what}");
            assert!(store.is_locked(&key).await.unwrap(), "{what}");
        }
        store.force_release(&key).await.unwrap();
        assert!(!store.is_locked(&key).await.unwrap(), "{what}");
    }
}

#[tokio::test]
async fn raw_ttls_from_zero_to_max() {
    let Some(store) = verrou_conformance::require_service("dynamodb", support::make_store().await)
    else {
        return;
    };
    // Zero and a nanosecond are the shortest lease the store can write: one
    // millisecond (plus one for the clock's rounding), over at once.
    for ttl in [Duration::ZERO, Duration::from_nanos(1)] {
        let key = unique("ttl-tiny");
        let acquired = store.acquire(&key, "a", Expiry::After(ttl)).await.unwrap();
        assert!(matches!(acquired, Acquisition::Acquired { .. }), "{ttl:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!store.is_locked(&key).await.unwrap(), "{ttl:?}");
        assert!(matches!(
            store.release(&key, "a").await,
            Err(LockError::NotOwned { .. })
        ));
    }
    // Past what an epoch timestamp can say: held until released, as `Never`.
    for ttl in [HUGE * 100, Duration::MAX] {
        let key = unique("ttl-huge");
        store.acquire(&key, "a", Expiry::After(ttl)).await.unwrap();
        assert!(store.is_locked(&key).await.unwrap(), "{ttl:?}");
        assert_eq!(
            store.acquire(&key, "b", Expiry::Never).await.unwrap(),
            Acquisition::Held
        );
        store.extend(&key, "a", Expiry::After(ttl)).await.unwrap();
        store.release(&key, "a").await.unwrap();
    }
}
