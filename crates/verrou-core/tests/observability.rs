//! What the lock engine tells a `tracing` subscriber (and, with the
//! `metrics` feature, a `metrics` recorder), on the memory store.
//!
//! Every test runs on a current-thread runtime, so the capturing subscriber
//! and recorder (installed for the test's thread only) also see the
//! renewal and clean-up tasks, and tests never see each other's records.
//! Every test ends by scanning all it captured for the owner strings.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use verrou_core::{
    Acquisition, Expiry, LeasePolicy, LockError, LockFactory, LockStore, LossReason, RetryPolicy,
};
use verrou_memory::MemoryStore;

/// Owners a test can recognise anywhere they might leak.
const OWNER: &str = "owner-secret-7f3a";
const OTHER_OWNER: &str = "owner-secret-c91e";

// ---------------------------------------------------------------------------
// A capturing subscriber: every span with its parent and fields (including
// those recorded later), every event with its parent, level and fields.

#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    parent: Option<u64>,
    fields: BTreeMap<&'static str, String>,
}

#[derive(Debug, Default)]
struct Captured {
    /// Span `i` has id `i + 1`.
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
    /// Entered spans, innermost last (one thread per test).
    entered: Vec<u64>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>);

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl Capture {
    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.0.lock().unwrap()
    }

    fn spans(&self, name: &str) -> Vec<(u64, SpanRecord)> {
        self.lock()
            .spans
            .iter()
            .enumerate()
            .filter(|(_, span)| span.name == name)
            .map(|(i, span)| (i as u64 + 1, span.clone()))
            .collect()
    }

    fn span(&self, id: u64) -> SpanRecord {
        self.lock().spans[id as usize - 1].clone()
    }

    fn events(&self) -> Vec<EventRecord> {
        self.lock().events.clone()
    }

    /// Fails if any span or event field, message included, contains one of
    /// `secrets`.
    fn assert_never_contains(&self, secrets: &[&str]) {
        let captured = self.lock();
        assert!(!captured.spans.is_empty(), "nothing was captured");
        let spans = captured.spans.iter().map(|s| (s.name, &s.fields));
        let events = captured.events.iter().map(|e| ("event", &e.fields));
        for (what, fields) in spans.chain(events) {
            for (name, value) in fields {
                for secret in secrets {
                    assert!(
                        !value.contains(secret) && !name.contains(secret),
                        "{what}: field `{name}` = {value:?} contains an owner"
                    );
                }
            }
        }
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut captured = self.lock();
        let parent = if attributes.is_root() {
            None
        } else {
            attributes
                .parent()
                .map(Id::into_u64)
                .or_else(|| captured.entered.last().copied())
        };
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        captured.spans.push(SpanRecord {
            name: attributes.metadata().name(),
            parent,
            fields,
        });
        Id::from_u64(captured.spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut captured = self.lock();
        let span = &mut captured.spans[span.into_u64() as usize - 1];
        values.record(&mut Fields(&mut span.fields));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut captured = self.lock();
        let parent = if event.is_root() {
            None
        } else {
            event
                .parent()
                .map(Id::into_u64)
                .or_else(|| captured.entered.last().copied())
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        captured.events.push(EventRecord {
            level: *event.metadata().level(),
            parent,
            fields,
        });
    }
    fn enter(&self, span: &Id) {
        self.lock().entered.push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut captured = self.lock();
        if let Some(at) = captured
            .entered
            .iter()
            .rposition(|id| *id == span.into_u64())
        {
            captured.entered.remove(at);
        }
    }
}

/// The value of `field`, which must have been recorded.
fn field<'a>(span: &'a SpanRecord, field: &str) -> &'a str {
    span.fields
        .get(field)
        .unwrap_or_else(|| panic!("{} has no `{field}`: {span:?}", span.name))
}

// ---------------------------------------------------------------------------
// A memory store whose calls can be made to fail.

#[derive(Clone, Default)]
struct Flaky {
    store: MemoryStore,
    fail_extend: Arc<AtomicBool>,
    fail_acquire: Arc<AtomicBool>,
    extends: Arc<AtomicU64>,
}

fn injected() -> LockError {
    LockError::store("memory", "injected failure")
}

#[verrou_core::async_trait]
impl LockStore for Flaky {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        if self.fail_acquire.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.store.acquire(key, owner, expiry).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.store.release(key, owner).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.store.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.store.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        if self.fail_extend.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.store.extend(key, owner, expiry).await
    }
    async fn watch_release(
        &self,
        key: &str,
    ) -> Result<Option<verrou_core::ReleaseWatch>, LockError> {
        self.store.watch_release(key).await
    }
    fn name(&self) -> &'static str {
        self.store.name()
    }
}

// ---------------------------------------------------------------------------
// Scenarios, each run by the tracing test and the metrics test.

/// A holder keeps the key while a waiter retries; the holder releases and
/// the waiter acquires.
async fn wait_then_acquire() {
    let locks = LockFactory::new(MemoryStore::new())
        .with_retry(RetryPolicy::default().with_delay(Duration::from_millis(100)));
    let holder = locks
        .create_lock_with_owner("orders:1", "10s", OWNER)
        .unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks
        .create_lock_with_owner("orders:1", "10s", OTHER_OWNER)
        .unwrap();
    let waiting = tokio::spawn(async move { waiter.acquire().await.map(|()| waiter) });
    // Paused time: the waiter tries (at once, after registering its watch,
    // then every 100 ms) until the release.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!waiting.is_finished());
    holder.release().await.unwrap();
    let waiter = waiting.await.unwrap().unwrap();
    waiter.release().await.unwrap();
}

/// Three ways to not get a held lock: the time limit, the attempt limit,
/// and a `try`.
async fn time_out_and_give_up() {
    let locks = LockFactory::new(MemoryStore::new());
    let holder = locks
        .create_lock_with_owner("orders:2", "60s", OWNER)
        .unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks
        .create_lock_with_owner("orders:2", "60s", OTHER_OWNER)
        .unwrap();
    let one_second = RetryPolicy::default()
        .with_delay(Duration::from_millis(100))
        .with_timeout(Some(Duration::from_secs(1)));
    assert!(matches!(
        waiter.acquire_with(&one_second).await,
        Err(LockError::Timeout { .. })
    ));
    let three_tries = RetryPolicy::default()
        .with_delay(Duration::from_millis(100))
        .with_attempts(Some(3));
    assert!(matches!(
        waiter.acquire_with(&three_tries).await,
        Err(LockError::Timeout { attempts: 3, .. })
    ));
    assert!(!waiter.try_acquire().await.unwrap());
    holder.release().await.unwrap();
}

/// A renewing lease renewed twice, then force-released behind its back: the
/// next renewal finds it gone.
async fn lose_a_renewing_lease() -> LossReason {
    let locks = LockFactory::new(MemoryStore::new()).with_lease(LeasePolicy::renewing());
    let lock = locks
        .create_lock_with_owner("reports:nightly", "3s", OWNER)
        .unwrap();
    let guard = lock.acquire_guard().await.unwrap();
    let lost = guard.lost();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(guard.renewals(), 2);
    locks
        .create_lock("reports:nightly", "3s")
        .unwrap()
        .force_release()
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), lost.lost())
        .await
        .expect("the loss was not noticed by the next renewal");
    assert!(matches!(
        guard.release().await,
        Err(LockError::NotOwned { .. })
    ));
    reason
}

/// A renewing lease whose renewals fail until the local clock gives it up.
async fn lose_a_lease_to_failing_renewals(store: &Flaky) -> LossReason {
    let locks = LockFactory::new(store.clone()).with_lease(LeasePolicy::renewing());
    let lock = locks
        .create_lock_with_owner("reports:hourly", "3s", OWNER)
        .unwrap();
    let guard = lock.acquire_guard().await.unwrap();
    store.fail_extend.store(true, Ordering::SeqCst);
    let reason = tokio::time::timeout(Duration::from_secs(10), guard.lost().lost())
        .await
        .expect("failing renewals never gave the lease up");
    drop(guard);
    reason
}

// ---------------------------------------------------------------------------
// Spans and events.

#[tokio::test(start_paused = true)]
async fn an_acquire_that_waits_records_its_attempts_and_outcome() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    wait_then_acquire().await;

    let acquires = capture.spans("verrou.acquire");
    // The holder's, the waiter's, in that order.
    assert_eq!(acquires.len(), 2, "{acquires:?}");
    let waited: Vec<_> = acquires
        .iter()
        .map(|(_, span)| span)
        .filter(|span| field(span, "attempts").parse::<u32>().unwrap() > 1)
        .collect();
    assert_eq!(waited.len(), 1, "{acquires:?}");
    let span = waited[0];
    assert_eq!(field(span, "key"), "orders:1");
    assert_eq!(field(span, "store"), "memory");
    assert_eq!(field(span, "outcome"), "acquired");
    let waited_s: f64 = field(span, "waited_s").parse().unwrap();
    assert!((0.25..1.0).contains(&waited_s), "{waited_s}");
    assert!(!span.fields.contains_key("error"));
    // Each grant has a lease span, not nested in the acquire (it outlives it).
    let leases = capture.spans("verrou.lease");
    assert_eq!(leases.len(), 2);
    for (_, lease) in &leases {
        assert_eq!(field(lease, "key"), "orders:1");
        assert_eq!(field(lease, "ended"), "released");
        assert!(lease.parent.is_none());
    }
    capture.assert_never_contains(&[OWNER, OTHER_OWNER]);
}

#[tokio::test(start_paused = true)]
async fn an_acquire_that_gives_up_says_why() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    time_out_and_give_up().await;

    let outcomes: Vec<_> = capture
        .spans("verrou.acquire")
        .iter()
        .map(|(_, span)| {
            assert_eq!(field(span, "store"), "memory");
            (
                field(span, "outcome").to_owned(),
                field(span, "attempts").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("acquired", "1"),
        // Twice at once (before and after registering the release watch),
        // then every 100 ms up to and including the deadline.
        ("timed_out", "12"),
        ("gave_up", "3"),
        // A `try` finds the key held by asking the store once.
        ("gave_up", "1"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
    assert_eq!(outcomes, expected);
    let timed_out = &capture.spans("verrou.acquire")[1].1;
    assert_eq!(field(timed_out, "waited_s"), "1.0");
    capture.assert_never_contains(&[OWNER, OTHER_OWNER]);
}

#[tokio::test(start_paused = true)]
async fn release_and_extend_have_spans() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let locks = LockFactory::new(MemoryStore::new());
    // A random owner this time: found through the handle.
    let lock = locks.create_lock("cart:9", "10s").unwrap();
    lock.acquire().await.unwrap();
    let owner = lock.owner();
    lock.extend().await.unwrap();
    lock.extend_by("20s").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    lock.release().await.unwrap();
    assert!(matches!(
        lock.release().await,
        Err(LockError::NotOwned { .. })
    ));

    let extends = capture.spans("verrou.extend");
    assert_eq!(extends.len(), 2);
    for ((_, span), ttl) in extends.iter().zip(["10s", "20s"]) {
        assert_eq!(field(span, "key"), "cart:9");
        assert_eq!(field(span, "store"), "memory");
        assert_eq!(field(span, "outcome"), "extended");
        assert!(field(span, "ttl").contains(ttl), "{span:?}");
    }
    let releases = capture.spans("verrou.release");
    let outcomes: Vec<_> = releases
        .iter()
        .map(|(_, span)| field(span, "outcome"))
        .collect();
    assert_eq!(outcomes, ["released", "not_owned"]);
    assert!(!releases[0].1.fields.contains_key("background"));

    let leases = capture.spans("verrou.lease");
    assert_eq!(leases.len(), 1);
    let (lease_id, lease) = &leases[0];
    assert_eq!(field(lease, "ended"), "released");
    assert_eq!(field(lease, "held_s"), "1.5");
    assert_eq!(field(lease, "fencing_token"), "1");
    assert_eq!(field(lease, "restored"), "false");
    // The end of a released lease is a DEBUG event, not a loss.
    let ends: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.parent == Some(*lease_id))
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].level, Level::DEBUG);
    assert_eq!(ends[0].fields["reason"], "released");
    let base = owner.split('.').next().unwrap();
    capture.assert_never_contains(&[base]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_guard_is_released_in_a_background_span() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks
        .create_lock_with_owner("cart:10", "10s", OWNER)
        .unwrap();
    drop(lock.acquire_guard().await.unwrap());
    // The release runs in a spawned task; let it.
    tokio::time::timeout(Duration::from_secs(1), async {
        while lock.is_locked().await.unwrap() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    let releases = capture.spans("verrou.release");
    assert_eq!(releases.len(), 1);
    let release = &releases[0].1;
    assert_eq!(field(release, "background"), "guard dropped");
    assert_eq!(field(release, "outcome"), "released");
    capture.assert_never_contains(&[OWNER]);
}

#[tokio::test(start_paused = true)]
async fn a_lost_renewing_lease_reports_renewals_and_the_loss() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    assert_eq!(lose_a_renewing_lease().await, LossReason::NotOwned);

    let leases = capture.spans("verrou.lease");
    assert_eq!(leases.len(), 1);
    let (lease_id, lease) = &leases[0];
    assert_eq!(field(lease, "key"), "reports:nightly");
    assert_eq!(field(lease, "store"), "memory");
    assert_eq!(field(lease, "ended"), "not_owned");
    // Every renewal is a child of the lease's span.
    let renewals = capture.spans("verrou.renew");
    let outcomes: Vec<_> = renewals
        .iter()
        .map(|(_, span)| {
            assert_eq!(span.parent, Some(*lease_id));
            field(span, "outcome")
        })
        .collect();
    assert_eq!(outcomes, ["renewed", "renewed", "not_owned"]);
    // One loss, a WARN in the lease's span, with its reason; the release
    // that found the lease gone does not report it twice.
    let losses: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].parent, Some(*lease_id));
    assert_eq!(losses[0].fields["reason"], "not_owned");
    // Its span names the key (and the store) for a log line.
    let context = capture.span(*lease_id);
    assert_eq!(field(&context, "key"), "reports:nightly");
    assert!(losses[0].fields["message"].starts_with("lease lost"));
    let release = &capture.spans("verrou.release")[0].1;
    assert_eq!(field(release, "outcome"), "not_owned");
    capture.assert_never_contains(&[OWNER]);
}

#[tokio::test(start_paused = true)]
async fn failing_renewals_are_warned_then_the_lease_is_lost_as_unreachable() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let store = Flaky::default();
    assert_eq!(
        lose_a_lease_to_failing_renewals(&store).await,
        LossReason::Unreachable
    );

    let (lease_id, lease) = &capture.spans("verrou.lease")[0];
    assert_eq!(field(lease, "ended"), "unreachable");
    let renewals = capture.spans("verrou.renew");
    assert!(renewals.len() >= 2, "{renewals:?}");
    for (_, renewal) in &renewals {
        assert_eq!(field(renewal, "outcome"), "error");
        assert_eq!(field(renewal, "error"), "memory store error");
    }
    let warnings: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    let (losses, failures): (Vec<_>, Vec<_>) =
        warnings.iter().partition(|e| e.parent == Some(*lease_id));
    assert_eq!(failures.len(), renewals.len());
    assert_eq!(losses.len(), 1);
    assert_eq!(losses[0].fields["reason"], "unreachable");
    capture.assert_never_contains(&[OWNER]);
}

/// A lease released after its TTL ran out (by the local clock) was lost
/// first: its holder worked unprotected.
#[tokio::test(start_paused = true)]
async fn a_lease_released_after_it_ran_out_is_reported_expired() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks
        .create_lock_with_owner("cart:11", "60s", OWNER)
        .unwrap();
    lock.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    // The memory store's clock is not paused: it still holds the key.
    lock.release().await.unwrap();
    let losses: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].fields["reason"], "expired");
    let lease = &capture.spans("verrou.lease")[0].1;
    assert_eq!(field(lease, "ended"), "released");
    capture.assert_never_contains(&[OWNER]);
}

#[tokio::test(start_paused = true)]
async fn a_store_error_fails_the_acquire_span() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let store = Flaky::default();
    store.fail_acquire.store(true, Ordering::SeqCst);
    let lock = LockFactory::new(store)
        .create_lock_with_owner("cart:12", "1s", OWNER)
        .unwrap();
    assert!(matches!(lock.acquire().await, Err(LockError::Store { .. })));
    let span = &capture.spans("verrou.acquire")[0].1;
    assert_eq!(field(span, "outcome"), "error");
    assert_eq!(field(span, "error"), "memory store error");
    assert_eq!(field(span, "attempts"), "1");
    capture.assert_never_contains(&[OWNER]);
}

/// A restored lock's lease span says so; it has no hold time (the grant
/// was taken elsewhere).
#[tokio::test(start_paused = true)]
async fn a_restored_lease_is_marked_restored() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let locks = LockFactory::new(MemoryStore::new());
    let lock = locks
        .create_lock_with_owner("cart:13", "10s", OWNER)
        .unwrap();
    lock.acquire().await.unwrap();
    let restored = locks.restore_lock(&lock.serialize()).unwrap();
    restored.extend().await.unwrap();
    restored.release().await.unwrap();
    let leases = capture.spans("verrou.lease");
    assert_eq!(leases.len(), 2);
    let restored = &leases[1].1;
    assert_eq!(field(restored, "restored"), "true");
    assert_eq!(field(restored, "ended"), "released");
    assert!(!restored.fields.contains_key("held_s"));
    capture.assert_never_contains(&[OWNER]);
}

/// A cancelled acquire still closes its span with an outcome.
#[tokio::test(start_paused = true)]
async fn a_cancelled_acquire_is_recorded_as_cancelled() {
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let locks = LockFactory::new(MemoryStore::new());
    let holder = locks
        .create_lock_with_owner("cart:14", "60s", OWNER)
        .unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks
        .create_lock_with_owner("cart:14", "60s", OTHER_OWNER)
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), waiter.acquire())
            .await
            .is_err()
    );
    let waiter_span = &capture.spans("verrou.acquire")[1].1;
    assert_eq!(field(waiter_span, "outcome"), "cancelled");
    holder.release().await.unwrap();
    capture.assert_never_contains(&[OWNER, OTHER_OWNER]);
}

// ---------------------------------------------------------------------------
// Metrics.

#[cfg(feature = "metrics")]
mod metrics_recorded {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use metrics_util::{CompositeKey, MetricKind};

    use super::*;

    /// Everything recorded, by kind, name and sorted labels.
    struct Recorded(Vec<(CompositeKey, Option<metrics::SharedString>, DebugValue)>);

    impl Recorded {
        fn take(snapshotter: &Snapshotter) -> Self {
            Recorded(
                snapshotter
                    .snapshot()
                    .into_vec()
                    .into_iter()
                    .map(|(key, _, description, value)| (key, description, value))
                    .collect(),
            )
        }

        fn find(
            &self,
            kind: MetricKind,
            name: &str,
            labels: &[(&str, &str)],
        ) -> Option<&DebugValue> {
            let mut wanted: Vec<_> = labels.to_vec();
            wanted.sort();
            self.0.iter().find_map(|(key, _, value)| {
                let mut have: Vec<_> = key
                    .key()
                    .labels()
                    .map(|label| (label.key(), label.value()))
                    .collect();
                have.sort();
                (key.kind() == kind && key.key().name() == name && have == wanted).then_some(value)
            })
        }

        /// A counter's value; 0 when it was never incremented.
        fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
            match self.find(MetricKind::Counter, name, labels) {
                Some(DebugValue::Counter(n)) => *n,
                None => 0,
                other => panic!("{name}: {other:?}"),
            }
        }

        /// A histogram's samples.
        fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
            match self.find(MetricKind::Histogram, name, labels) {
                Some(DebugValue::Histogram(samples)) => {
                    samples.iter().map(|s| s.into_inner()).collect()
                }
                None => Vec::new(),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    const MEMORY: (&str, &str) = ("store", "memory");

    #[tokio::test(start_paused = true)]
    async fn acquisitions_contention_and_hold_times_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        wait_then_acquire().await;

        let recorded = Recorded::take(&snapshotter);
        assert_eq!(
            recorded.counter(
                "verrou_acquisitions_total",
                &[MEMORY, ("outcome", "acquired")]
            ),
            2
        );
        // At least the waiter's first two attempts found the key held.
        assert!(recorded.counter("verrou_acquire_contention_total", &[MEMORY]) >= 2);
        let waits = recorded.histogram("verrou_acquire_duration_seconds", &[MEMORY]);
        assert_eq!(waits.len(), 2);
        assert!(waits.iter().any(|w| (0.25..1.0).contains(w)), "{waits:?}");
        let held = recorded.histogram("verrou_held_duration_seconds", &[MEMORY]);
        assert_eq!(held.len(), 2, "{held:?}");
        assert_eq!(
            recorded.counter("verrou_acquire_timeouts_total", &[MEMORY]),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_counted_apart_from_giving_up() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        time_out_and_give_up().await;

        let recorded = Recorded::take(&snapshotter);
        let acquisitions = |outcome| {
            recorded.counter("verrou_acquisitions_total", &[MEMORY, ("outcome", outcome)])
        };
        assert_eq!(acquisitions("acquired"), 1);
        assert_eq!(acquisitions("timed_out"), 1);
        assert_eq!(acquisitions("gave_up"), 2);
        assert_eq!(
            recorded.counter("verrou_acquire_timeouts_total", &[MEMORY]),
            1
        );
        // 12 + 3 + 1 attempts found the key held.
        assert_eq!(
            recorded.counter("verrou_acquire_contention_total", &[MEMORY]),
            16
        );
        // Only acquisitions that acquired are timed.
        assert_eq!(
            recorded
                .histogram("verrou_acquire_duration_seconds", &[MEMORY])
                .len(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_and_a_lost_lease_are_counted_with_the_reason() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        lose_a_renewing_lease().await;

        let recorded = Recorded::take(&snapshotter);
        assert_eq!(recorded.counter("verrou_renewals_total", &[MEMORY]), 2);
        assert_eq!(
            recorded.counter(
                "verrou_leases_lost_total",
                &[MEMORY, ("reason", "not_owned")]
            ),
            1
        );
        assert_eq!(
            recorded
                .histogram("verrou_held_duration_seconds", &[MEMORY])
                .len(),
            1
        );
        // "Not owned" is an answer, not a store error.
        assert_eq!(
            recorded.counter(
                "verrou_store_errors_total",
                &[MEMORY, ("operation", "renew")]
            ),
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn store_errors_are_counted_by_operation() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let store = Flaky::default();
        lose_a_lease_to_failing_renewals(&store).await;
        store.fail_acquire.store(true, Ordering::SeqCst);
        let lock = LockFactory::new(store.clone())
            .create_lock("cart:15", "1s")
            .unwrap();
        assert!(lock.acquire().await.is_err());

        let recorded = Recorded::take(&snapshotter);
        let errors = |operation| {
            recorded.counter(
                "verrou_store_errors_total",
                &[MEMORY, ("operation", operation)],
            )
        };
        assert_eq!(errors("renew"), store.extends.load(Ordering::SeqCst));
        assert!(errors("renew") >= 2);
        assert_eq!(errors("acquire"), 1);
        assert_eq!(
            recorded.counter(
                "verrou_leases_lost_total",
                &[MEMORY, ("reason", "unreachable")]
            ),
            1
        );
        assert_eq!(
            recorded.counter("verrou_acquisitions_total", &[MEMORY, ("outcome", "error")]),
            1
        );
    }

    /// `describe_metrics` gives every metric the lock engine records a
    /// description.
    #[tokio::test(start_paused = true)]
    async fn every_recorded_metric_is_described() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        verrou_core::describe_metrics();
        wait_then_acquire().await;
        time_out_and_give_up().await;
        lose_a_renewing_lease().await;
        lose_a_lease_to_failing_renewals(&Flaky::default()).await;

        let recorded = Recorded::take(&snapshotter);
        let mut names: Vec<_> = recorded
            .0
            .iter()
            .map(|(key, description, _)| {
                let name = key.key().name().to_owned();
                assert!(description.is_some(), "{name} has no description");
                assert!(name.starts_with("verrou_"), "{name}");
                name
            })
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            [
                "verrou_acquire_contention_total",
                "verrou_acquire_duration_seconds",
                "verrou_acquire_timeouts_total",
                "verrou_acquisitions_total",
                "verrou_held_duration_seconds",
                "verrou_leases_lost_total",
                "verrou_renewals_total",
                "verrou_store_errors_total",
            ]
        );
    }
}
