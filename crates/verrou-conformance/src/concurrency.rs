//! Many holders at once: mutual exclusion under real concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use verrou_core::{LockFactory, LockStore, RetryPolicy};

use crate::Capabilities;
use crate::harness::{factory, fresh_key};

/// Two factories on one store exclude each other: `run` sections never overlap.
pub async fn run_is_exclusive_across_two_factories(store: Arc<dyn LockStore>, _caps: Capabilities) {
    let key = fresh_key("two-factories");
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let locks = factory(&store);
        let (key, inside, entries) = (key.clone(), inside.clone(), entries.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..15 {
                let lock = locks.create_lock(&key, "10s").unwrap();
                lock.run(|| async {
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    entries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(entries.load(Ordering::SeqCst), 30);
}

/// 100 tasks each read a counter, yield, and write it back plus one, under
/// the lock: no update is lost.
pub async fn concurrent_read_yield_write_loses_no_update(
    store: Arc<dyn LockStore>,
    _caps: Capabilities,
) {
    let key = fresh_key("counter");
    let locks = LockFactory::from_arc(store.clone()).with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_millis(10))
            .with_timeout(Some(Duration::from_secs(120))),
    );
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let lock = locks.create_lock(&key, "30s").unwrap();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            lock.run(|| async {
                let read = counter.load(Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.store(read + 1, Ordering::SeqCst);
            })
            .await
            .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 100, "updates were lost");
    assert!(!store.is_locked(&key).await.unwrap());
}
