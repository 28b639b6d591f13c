//! Holds a lock across work that takes several times its TTL: the guard's
//! lease renews itself, and nobody else gets in meanwhile.
//!
//! ```text
//! cargo run -p verrou-core --example renewing_guard
//! ```

use std::time::{Duration, Instant};

use verrou_core::{LeasePolicy, LockError, LockFactory};
use verrou_memory::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), LockError> {
    let store = MemoryStore::new();
    let locks = LockFactory::new(store.clone()).with_lease(LeasePolicy::renewing());
    let ttl = Duration::from_millis(300);
    let lock = locks.create_lock("nightly-report", ttl)?;

    let started = Instant::now();
    let guard = lock.acquire_guard().await?;
    let lost = guard.lost();
    let rival = LockFactory::new(store).create_lock("nightly-report", ttl)?;
    for step in 1..=6 {
        // Work in steps; check the signal before each write.
        tokio::time::sleep(ttl / 2).await;
        if lost.is_lost() {
            println!(
                "lease lost ({:?}); stopping before step {step}",
                lost.reason()
            );
            return Ok(());
        }
        let rival_got_in = rival.try_acquire().await?;
        println!(
            "step {step} at {:>4} ms: renewed {} times, rival got in: {rival_got_in}",
            started.elapsed().as_millis(),
            guard.renewals(),
        );
        assert!(!rival_got_in);
    }
    guard.release().await?;
    println!(
        "held for {} ms with a {} ms TTL, then released",
        started.elapsed().as_millis(),
        ttl.as_millis()
    );

    // `run` does the same with a renewing policy: the work may outlive the TTL.
    let total = lock
        .run(|| async {
            tokio::time::sleep(ttl * 2).await;
            42
        })
        .await?;
    println!("run returned {total} after twice its TTL");
    Ok(())
}
