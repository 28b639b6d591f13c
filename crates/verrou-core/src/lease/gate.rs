//! `Gate`: one holder at a time, for the engine's nearly always uncontended
//! locks (a grant's store calls, a handle's turn).
//!
//! An uncontended entry and exit cost an atomic swap and a store. tokio's
//! `Mutex` and `Semaphore`, used before, also lock their wait list on every
//! release, and an owned permit shared by clones needs an allocation: that
//! was a tenth of an in-process acquire and release. Waiters are not queued
//! fairly (a newcomer may enter before a woken waiter): only the tasks
//! sharing one handle, or the few calls of one grant, ever wait here.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// A one-holder async lock.
#[derive(Default)]
pub(crate) struct Gate {
    busy: AtomicBool,
    /// Set, for good, by the first entry that had to wait: until then a
    /// holder leaving has nobody to wake.
    contended: AtomicBool,
    freed: Notify,
}

impl Gate {
    /// Enters if nobody holds the gate.
    pub(crate) fn try_enter(&self) -> bool {
        !self.busy.swap(true, Ordering::SeqCst)
    }

    /// Waits until the gate is free, and enters. Cancel-safe: a waiter
    /// dropped after being chosen passes the wake-up on (tokio's
    /// `notify_one` guarantee).
    ///
    /// Like tokio's own locks, an entry spends a unit of the task's
    /// cooperative budget (and yields once it is spent): a task that
    /// acquires and releases in a loop on a store that never waits (memory)
    /// must still let the other tasks of its worker run.
    pub(crate) async fn enter(&self) {
        tokio::task::coop::consume_budget().await;
        loop {
            if self.try_enter() {
                return;
            }
            // Flagged and registered before looking again, so that a holder
            // leaving after this look (it stores `false`, then reads the flag
            // and notifies) wakes us.
            self.contended.store(true, Ordering::SeqCst);
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_enter() {
                return;
            }
            freed.await;
        }
    }

    /// Lets the next one in; called once per entry.
    pub(crate) fn leave(&self) {
        self.busy.store(false, Ordering::SeqCst);
        if self.contended.load(Ordering::SeqCst) {
            // With nobody waiting now, this leaves a permit that makes the
            // next waiter look once more; with waiters it wakes the first.
            self.freed.notify_one();
        }
    }

    /// Enters and returns a guard that leaves when dropped.
    pub(crate) async fn lock(&self) -> Entered<'_> {
        self.enter().await;
        Entered(self)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("busy", &self.busy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A held [`Gate`]; dropping it lets the next one in.
pub(crate) struct Entered<'a>(&'a Gate);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A handle's turns: at most one [`Turn`] at a time.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    gate: Gate,
    /// Clones of the current turn alive; the turn ends with the last.
    holders: AtomicUsize,
}

impl Turns {
    /// The turn, if nobody has it.
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<Turn> {
        self.gate.try_enter().then(|| self.taken())
    }

    /// Waits for the turn. Cancel-safe.
    pub(crate) async fn take(self: &Arc<Self>) -> Turn {
        self.gate.enter().await;
        self.taken()
    }

    fn taken(self: &Arc<Self>) -> Turn {
        // Entering the gate orders this after the last holder's leaving.
        self.holders.store(1, Ordering::Relaxed);
        Turn {
            turns: self.clone(),
        }
    }
}

/// The handle's turn: a handle holds at most one grant at a time, and the
/// turn is let go only once the grant's release has been answered (or its
/// clean-up has finished), so the next acquire through the handle is never
/// sent while a call for the previous grant is still travelling. Clones
/// share it (the grant and the clean-ups of its calls); it ends when the
/// last is dropped.
pub(crate) struct Turn {
    turns: Arc<Turns>,
}

impl Clone for Turn {
    fn clone(&self) -> Self {
        // A clone is made from a live one: the count is at least one.
        self.turns.holders.fetch_add(1, Ordering::Relaxed);
        Turn {
            turns: self.turns.clone(),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Release-acquire, as `Arc`'s count: everything done under any clone
        // happens before the next turn.
        if self.turns.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.turns.gate.leave();
        }
    }
}

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Turn")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_at_a_time() {
        let gate = Arc::new(Gate::default());
        let inside = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside) = (gate.clone(), inside.clone());
                tokio::spawn(async move {
                    for _ in 0..200 {
                        let _held = gate.lock().await;
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        tokio::task::yield_now().await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("a waiter was never let in")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_waiter_dropped_after_being_chosen_lets_the_next_one_in() {
        let gate = Gate::default();
        let held = gate.lock().await;
        let mut cx = Context::from_waker(Waker::noop());
        let mut chosen = Box::pin(gate.lock());
        let mut next = Box::pin(gate.lock());
        assert!(chosen.as_mut().poll(&mut cx).is_pending());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        drop(held);
        drop(chosen);
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the wake-up was passed on");
    }

    #[tokio::test]
    async fn a_turn_lasts_as_long_as_its_last_clone() {
        let turns = Arc::new(Turns::default());
        let turn = turns.try_take().expect("free");
        let clone = turn.clone();
        assert!(turns.try_take().is_none());
        drop(turn);
        assert!(turns.try_take().is_none(), "a clone still holds it");
        let mut cx = Context::from_waker(Waker::noop());
        let mut waiting = Box::pin(turns.take());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        drop(clone);
        let next = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the last clone gave the turn back");
        assert!(turns.try_take().is_none());
        drop(next);
        assert!(turns.try_take().is_some());
    }
}
