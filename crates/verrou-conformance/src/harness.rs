//! What the cases share: capabilities, fresh keys, bounded waits, service gating.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verrou_core::{LockFactory, LockStore, RetryPolicy};

/// What a store can do beyond the required contract. Cases for a missing
/// capability still run, asserting only what every store must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `save` returns fencing tokens.
    pub fencing_tokens: bool,
    /// `watch_release` announces releases, so a waiter wakes well before its
    /// retry delay.
    pub release_announcements: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            fencing_tokens: true,
            release_announcements: true,
        }
    }
}

/// Whether tests must fail rather than skip when a service is missing
/// (`VERROU_REQUIRE_SERVICES=1`, as CI sets it).
pub fn services_required() -> bool {
    std::env::var("VERROU_REQUIRE_SERVICES")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Turns "could not reach the server" into a skip on a developer's laptop and
/// a failure in CI.
///
/// ```
/// let store: Option<u32> = verrou_conformance::require_service("demo", Ok::<_, String>(1));
/// assert_eq!(store, Some(1));
/// ```
///
/// # Panics
/// When `result` is an error and `VERROU_REQUIRE_SERVICES=1`.
pub fn require_service<T, E: Display>(service: &str, result: Result<T, E>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) if services_required() => {
            panic!("{service} is required (VERROU_REQUIRE_SERVICES=1) but unavailable: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: {service} unavailable ({error}); set VERROU_REQUIRE_SERVICES=1 to fail instead"
            );
            None
        }
    }
}

/// A key no other test or run uses.
pub(crate) fn fresh_key(case: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("verrou-conformance:{case}:{suffix}")
}

/// A factory that waits at most `timeout`, polling every 20 ms.
pub(crate) fn factory(store: &Arc<dyn LockStore>) -> LockFactory {
    LockFactory::from_arc(store.clone()).with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_millis(20))
            .with_timeout(Some(Duration::from_secs(10))),
    )
}

/// Generous upper bound for anything that should happen "soon".
pub(crate) const SOON: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds; panics after [`SOON`]. Returns the time it took.
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SOON,
            "timed out after {SOON:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the store says `key` is free.
pub(crate) async fn until_free(store: &Arc<dyn LockStore>, key: &str) -> Duration {
    eventually(&format!("`{key}` to be free"), || async {
        !store.is_locked(key).await.expect("exists")
    })
    .await
}

/// The fencing token of a grant; panics on anything else (for store tests
/// of stores that have tokens).
///
/// # Panics
/// When `acquisition` is not a grant with a token.
pub fn granted_token(acquisition: verrou_core::Acquisition) -> u64 {
    match acquisition {
        verrou_core::Acquisition::Acquired {
            fencing_token: Some(token),
        } => token,
        other => panic!("expected an acquisition with a token, got {other:?}"),
    }
}

/// Locks and releases `count` distinct keys `{prefix}{i}` through the raw
/// trait, `concurrency` at a time: the churn of a service that locks per
/// order or per request, for tests that per-key state stays bounded.
///
/// # Panics
/// When the store fails or does not grant a free key with a token.
pub async fn churn_distinct_keys(
    store: Arc<dyn LockStore>,
    prefix: &str,
    count: usize,
    concurrency: usize,
) {
    let concurrency = concurrency.max(1);
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let store = store.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for i in (worker..count).step_by(concurrency) {
                    let key = format!("{prefix}{i}");
                    let owner = "churn";
                    granted_token(
                        store
                            .acquire(&key, owner, verrou_core::Expiry::Never)
                            .await
                            .unwrap(),
                    );
                    store.release(&key, owner).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

/// The soak: a million distinct keys churned in rounds of 10,000, with
/// `state_size` (rows, keys: what the store keeps) sampled after each round
/// and printed every tenth. Returns the peak, which a bounded store keeps
/// flat. Minutes long: for `#[ignore]`d tests run by hand.
///
/// # Panics
/// As [`churn_distinct_keys`].
pub async fn soak_distinct_keys<F, Fut>(
    store: Arc<dyn LockStore>,
    concurrency: usize,
    mut state_size: F,
) -> u64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u64>,
{
    let started = Instant::now();
    let mut peak = 0;
    for round in 0..100 {
        churn_distinct_keys(store.clone(), &format!("r{round}-"), 10_000, concurrency).await;
        let size = state_size().await;
        peak = peak.max(size);
        if round % 10 == 9 {
            println!(
                "{:>8} keys, {size:>6} kept (peak {peak}), {:.0?}",
                (round + 1) * 10_000,
                started.elapsed()
            );
        }
    }
    peak
}
