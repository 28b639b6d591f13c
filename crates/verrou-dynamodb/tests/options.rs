//! Every `Duration` option at its extremes (zero, one nanosecond, huge,
//! `Duration::MAX`): a clear `InvalidConfig` or the documented meaning, never
//! a panic or a hang. TTLs at their extremes are checked on the raw store too.

mod support;

use std::future::Future;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_dynamodb::{DynamoDbOptions, DynamoDbStore};

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

#[tokio::test]
async fn timeouts_under_a_millisecond_are_invalid_config() {
    // Checked before any request: no emulator needed.
    for limit in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ] {
        assert_invalid_config(
            &format!("timeout {limit:?}"),
            within("build", support::options().timeout(limit).build()).await,
            "`timeout` must be at least 1ms",
        );
        assert_invalid_config(
            &format!("connect_timeout {limit:?}"),
            within("build", support::options().connect_timeout(limit).build()).await,
            "`connect_timeout` must be at least 1ms",
        );
    }
}

/// Builds a store from `options` and takes, checks and frees one lock.
async fn round_trip(what: &str, options: DynamoDbOptions) -> Option<DynamoDbStore> {
    let store =
        verrou_conformance::require_service("dynamodb", within(what, options.build()).await)?;
    let key = support::fresh_table("extreme-options");
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
            ("timeout", support::options().timeout(limit)),
            ("connect_timeout", support::options().connect_timeout(limit)),
            (
                "both timeouts",
                support::options().timeout(limit).connect_timeout(limit),
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
    let options = support::options().timeout(Duration::from_millis(1));
    match within("build with a 1 ms timeout", options.build()).await {
        Ok(_) | Err(LockError::Store { .. }) => {}
        Err(other) => panic!("a 1 ms timeout: {other:?}"),
    }
}

#[tokio::test]
async fn table_ready_timeout_from_zero_to_max() {
    // Zero and a nanosecond check once without waiting: enough for a table
    // that exists, and for one the emulator creates ACTIVE at once. Huge
    // limits and `Duration::MAX` (past what the clock can hold) are no limit.
    for limit in [Duration::ZERO, Duration::from_nanos(1), HUGE, Duration::MAX] {
        let what = format!("table_ready_timeout {limit:?}");
        if round_trip(&what, support::options().table_ready_timeout(limit))
            .await
            .is_none()
        {
            return;
        }
        let fresh = support::fresh_table("ready-timeout");
        round_trip(
            &format!("{what}, new table"),
            support::options()
                .table_ready_timeout(limit)
                .table_name(fresh),
        )
        .await;
    }
}

#[tokio::test]
async fn clock_skew_margin_from_zero_to_max() {
    for margin in [Duration::ZERO, Duration::from_nanos(1), HUGE, Duration::MAX] {
        let what = format!("clock_skew_margin {margin:?}");
        let Some(store) = round_trip(&what, support::options().clock_skew_margin(margin)).await
        else {
            return;
        };
        assert_eq!(store.clock_skew_margin(), margin, "{what}");

        // An abandoned 50 ms lease, written by this store.
        let key = support::fresh_table("extreme-margin");
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
        let key = support::fresh_table("ttl-tiny");
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
        let key = support::fresh_table("ttl-huge");
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
