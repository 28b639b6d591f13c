//! A store wrapper the cases use to count, slow down, park or break calls
//! to the real store underneath (never to replace it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};

/// Wraps a real store. Every knob is off by default.
pub(crate) struct Instrumented {
    inner: Arc<dyn LockStore>,
    pub(crate) acquires: AtomicU32,
    pub(crate) releases: AtomicU32,
    pub(crate) extends: AtomicU32,
    /// Parks this many microseconds before and after every inner call, so
    /// that a caller cut off by a timeout is cut before, during or after it
    /// even on a store that answers on the first poll.
    park_us: AtomicU64,
    /// Delays every acquire answer by this many microseconds (the store has
    /// already applied it), like a stalled server or a paused process.
    late_us: AtomicU64,
    /// Makes every extend fail with a store error (without reaching the store).
    pub(crate) extends_fail: AtomicBool,
    /// The last answer the real store gave to an acquire, set (and
    /// `answered` notified) before any late delay, so a case can drop the
    /// caller between "the store granted" and "the caller heard it".
    pub(crate) last_answer: std::sync::Mutex<Option<Acquisition>>,
    pub(crate) answered: tokio::sync::Notify,
}

impl Instrumented {
    pub(crate) fn new(inner: Arc<dyn LockStore>) -> Arc<Self> {
        Arc::new(Instrumented {
            inner,
            acquires: AtomicU32::new(0),
            releases: AtomicU32::new(0),
            extends: AtomicU32::new(0),
            park_us: AtomicU64::new(0),
            late_us: AtomicU64::new(0),
            extends_fail: AtomicBool::new(false),
            last_answer: std::sync::Mutex::new(None),
            answered: tokio::sync::Notify::new(),
        })
    }

    pub(crate) fn park(&self, each_side: Duration) {
        self.park_us
            .store(each_side.as_micros() as u64, Ordering::SeqCst);
    }

    pub(crate) fn answer_late(&self, by: Duration) {
        self.late_us.store(by.as_micros() as u64, Ordering::SeqCst);
    }

    async fn parked<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let park = Duration::from_micros(self.park_us.load(Ordering::SeqCst));
        if !park.is_zero() {
            tokio::time::sleep(park).await;
        }
        let out = call.await;
        if !park.is_zero() {
            tokio::time::sleep(park).await;
        }
        out
    }
}

#[async_trait]
impl LockStore for Instrumented {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        let answer = self.parked(self.inner.acquire(key, owner, expiry)).await;
        *self.last_answer.lock().unwrap() = answer.as_ref().ok().copied();
        self.answered.notify_one();
        let late = Duration::from_micros(self.late_us.load(Ordering::SeqCst));
        if !late.is_zero() {
            tokio::time::sleep(late).await;
        }
        answer
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.parked(self.inner.release(key, owner)).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.parked(self.inner.force_release(key)).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.inner.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        if self.extends_fail.load(Ordering::SeqCst) {
            return Err(LockError::store(
                self.inner.name(),
                "conformance: injected extend failure",
            ));
        }
        self.parked(self.inner.extend(key, owner, expiry)).await
    }
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        self.inner.watch_release(key).await
    }
    async fn prune(&self) -> Result<u64, LockError> {
        self.inner.prune().await
    }
    fn max_key_bytes(&self) -> usize {
        self.inner.max_key_bytes()
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
