//! Hand-off latency: 16 tasks wait for one key; each release wakes the
//! waiters through the store's pub/sub announcement. Measures the time from
//! the start of a release to the moment the next holder's `acquire` returns.
//!
//! ```text
//! cargo run --release -p verrou-redis --example handoff -- [URL] [HANDOFFS]
//! cargo run --release -p verrou-redis --example handoff -- redis-cluster://127.0.0.1:7000
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use verrou_core::{LockFactory, RetryPolicy, Ttl};
use verrou_redis::RedisStore;

const WAITERS: usize = 16;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let handoffs: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let store = RedisStore::builder()
        .url(&url)
        .prefix("verrou-handoff:")
        .build()
        .await?;
    // A retry delay far above any hand-off: a waiter that gets the lock was
    // woken by the announcement, not by its own polling.
    let locks = LockFactory::new(store).with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_secs(5))
            .with_timeout(Some(Duration::from_secs(60))),
    );
    let key = format!("handoff:{}", std::process::id());
    let released_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let (count, _) = tokio::sync::watch::channel(0u64);
    let count = Arc::new(count);

    let mut tasks = Vec::new();
    for _ in 0..WAITERS {
        let lock = locks.create_lock(&key, Ttl::Never)?;
        let (released_at, samples, count) = (released_at.clone(), samples.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = count.subscribe();
            loop {
                lock.acquire().await?;
                if *count.borrow() >= handoffs {
                    return lock.release().await;
                }
                if let Some(at) = released_at.lock().unwrap().take() {
                    samples.lock().unwrap().push(at.elapsed());
                }
                let n = {
                    let mut n = 0;
                    count.send_modify(|c| {
                        *c += 1;
                        n = *c;
                    });
                    n
                };
                *released_at.lock().unwrap() = Some(Instant::now());
                lock.release().await?;
                if n >= handoffs {
                    return Ok::<_, verrou_core::LockError>(());
                }
                // Step back until a woken waiter has taken the lock, so every
                // sample is a wake-up, not this task taking it straight back.
                let _ = seen.wait_for(|c| *c > n || *c >= handoffs).await;
                if *seen.borrow() >= handoffs {
                    return Ok(());
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }

    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{url}: {} hand-offs between {WAITERS} waiters: median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
