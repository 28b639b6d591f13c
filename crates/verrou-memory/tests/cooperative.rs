//! The memory store never waits, so a task that acquires and releases in a
//! loop yields only because the lock engine spends the task's cooperative
//! budget (as tokio's own locks do). Without that, one such task would hold
//! its worker thread and starve every other task scheduled there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use verrou_core::LockFactory;
use verrou_memory::MemoryStore;

#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_acquires_and_releases_lets_other_tasks_run() {
    let lock = LockFactory::new(MemoryStore::new())
        .create_lock("busy", "30s")
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    // On a current-thread runtime this task runs only if the loop yields.
    let other = {
        let ran = ran.clone();
        tokio::spawn(async move { ran.store(true, Ordering::SeqCst) })
    };
    for _ in 0..10_000 {
        lock.acquire().await.unwrap();
        lock.release().await.unwrap();
        if ran.load(Ordering::SeqCst) {
            break;
        }
    }
    assert!(
        ran.load(Ordering::SeqCst),
        "10,000 acquires and releases never yielded to the runtime"
    );
    other.await.unwrap();
}
