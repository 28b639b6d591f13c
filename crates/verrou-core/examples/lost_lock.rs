//! Reacts to a lost lock: a worker and its child task watch the lease's lost
//! signal, and a renewing `run` is cut off with `LeaseLost` when an
//! administrator force-releases the lock mid-work.
//!
//! ```text
//! cargo run -p verrou-core --example lost_lock
//! ```

use std::time::Duration;

use verrou_core::{LeasePolicy, LockError, LockFactory};
use verrou_memory::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), LockError> {
    let store = MemoryStore::new();
    let locks = LockFactory::new(store.clone()).with_lease(LeasePolicy::renewing());
    let lock = locks.create_lock("ledger", "500ms")?;
    let admin = LockFactory::new(store).create_lock("ledger", "1s")?;

    // 1. A child task holds a clone of the signal, like a cancellation token.
    let guard = lock.acquire_guard().await?;
    let lost = guard.lost();
    let child = tokio::spawn(async move {
        let mut writes = 0u32;
        loop {
            tokio::select! {
                reason = lost.lost() => return (writes, reason),
                () = tokio::time::sleep(Duration::from_millis(50)) => writes += 1,
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.force_release().await?; // someone pulls the lock away
    let (writes, reason) = child.await.expect("child task");
    println!("child stopped after {writes} writes: {reason}");
    drop(guard);

    // 2. A renewing `run` races its work against the signal.
    let result = lock
        .run(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            admin.force_release().await?;
            // Never reached: the work is dropped at this `.await`.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, LockError>("finished")
        })
        .await;
    match result {
        Err(LockError::LeaseLost { key, reason }) => {
            println!("run on `{key}` was cut off: {reason}");
            Ok(())
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}
