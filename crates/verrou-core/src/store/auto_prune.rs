//! `AutoPrune`: pruning on a store's own initiative, every so many
//! acquisitions, so that locking ever-new keys keeps a store bounded even
//! if nobody calls [`LockStore::prune`](crate::LockStore::prune).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::LockError;

/// Counts a store's acquisitions and, every [`EVERY`](Self::EVERY) of them,
/// runs one bounded prune in a background task (like the memory store's
/// amortized sweep: the cost of a prune is spread over the acquisitions that
/// made it necessary). A slow prune is never joined by a second one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use verrou_core::store::AutoPrune;
///
/// let auto = Arc::new(AutoPrune::default());
/// for _ in 0..AutoPrune::EVERY {
///     // After each successful acquire:
///     auto.after_acquire("my-store", || async { Ok(0) /* prune up to AutoPrune::BATCH */ });
/// }
/// # }
/// ```
#[derive(Debug, Default)]
pub struct AutoPrune {
    acquisitions: AtomicU64,
    running: AtomicBool,
}

impl AutoPrune {
    /// One background prune per this many acquisitions by a store and its
    /// clones.
    pub const EVERY: u64 = 1024;

    /// The most keys one background prune should remove: four times what
    /// the acquisitions between two prunes can add, so pruning keeps up with
    /// any rate of new keys while each statement stays short.
    pub const BATCH: u32 = 4096;

    /// Counts one acquisition; when a prune is due and none is running,
    /// spawns `prune` on the current tokio runtime. Its outcome can only be
    /// traced: a failure leaves the state for the next turn or an explicit
    /// [`LockStore::prune`](crate::LockStore::prune), which reports it.
    pub fn after_acquire<F, Fut>(self: &Arc<Self>, store: &'static str, prune: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, LockError>> + Send + 'static,
    {
        let Some(turn) = self.turn() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pruning = prune();
        runtime.spawn(async move {
            let _turn = turn;
            match pruning.await {
                Ok(pruned) => tracing::debug!(store, pruned, "background prune"),
                Err(error) => {
                    crate::observe::store_failed(store, "prune", &error);
                    tracing::warn!(store, %error, "background prune failed");
                }
            }
        });
    }

    fn turn(self: &Arc<Self>) -> Option<PruneTurn> {
        let n = self.acquisitions.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(Self::EVERY) || self.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(PruneTurn(self.clone()))
    }
}

/// The right to run the background prune, given back when dropped (also
/// when the task is cancelled, at runtime shutdown for example).
struct PruneTurn(Arc<AutoPrune>);

impl Drop for PruneTurn {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turn_per_interval_and_never_two_at_once() {
        let auto = Arc::new(AutoPrune::default());
        let turns: Vec<_> = (0..AutoPrune::EVERY * 3)
            .filter_map(|_| auto.turn())
            .collect();
        // The first turn is still held: the later intervals found it running.
        assert_eq!(turns.len(), 1);
        drop(turns);
        let turns = (0..AutoPrune::EVERY).filter_map(|_| auto.turn()).count();
        assert_eq!(turns, 1);
    }
}
