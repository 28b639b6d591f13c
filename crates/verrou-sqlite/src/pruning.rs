//! Pruning on the store's own initiative: every so many acquisitions, one
//! bounded prune in the background, so that locking ever-new keys keeps the
//! table bounded even if nobody calls `prune`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One background prune per this many acquisitions by a store and its
/// clones (like the memory store's amortized sweep: the cost of a prune is
/// spread over the acquisitions that made it necessary).
pub(crate) const PRUNE_EVERY: u64 = 1024;

/// The most rows one background prune deletes: four times what the
/// acquisitions between two prunes can add, so pruning keeps up with any
/// rate of new keys while each statement stays short.
pub(crate) const PRUNE_BATCH: i64 = 4096;

/// Counts acquisitions and hands out the one turn to prune.
#[derive(Debug, Default)]
pub(crate) struct AutoPrune {
    acquisitions: AtomicU64,
    running: AtomicBool,
}

impl AutoPrune {
    /// Counts one acquisition; a turn when a background prune is due and
    /// none is running (a slow prune is never joined by a second one).
    pub(crate) fn count(self: &Arc<Self>) -> Option<PruneTurn> {
        let n = self.acquisitions.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(PRUNE_EVERY) || self.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(PruneTurn(self.clone()))
    }
}

/// The right to run the background prune, given back when dropped (also
/// when the task is cancelled, at runtime shutdown for example).
pub(crate) struct PruneTurn(Arc<AutoPrune>);

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
        let turns: Vec<_> = (0..PRUNE_EVERY * 3).filter_map(|_| auto.count()).collect();
        // The first turn is still held: the later intervals found it running.
        assert_eq!(turns.len(), 1);
        drop(turns);
        let turns = (0..PRUNE_EVERY).filter_map(|_| auto.count()).count();
        assert_eq!(turns, 1);
    }
}
