//! Where the run is and about how long it has left, on stderr.
//!
//! Every step (one workload of one round on one store) has a planned length:
//! the seconds it is asked to run. The time left is the planned time left,
//! scaled by how much longer than planned the steps done so far actually
//! took (connecting, the herd gathering, the peer's turn, stalls), so the
//! estimate improves as the run goes.

use std::time::{Duration, Instant};

use verrou_testkit::StoreKind;

use crate::Settings;
use crate::sample::Workload;

/// The bench's progress through its plan.
#[derive(Debug)]
pub struct Progress {
    settings: Settings,
    started: Instant,
    /// Planned seconds of the steps done.
    done: f64,
    /// Planned seconds of the steps still to run, on every store (a store
    /// not yet started counts with every workload).
    left: f64,
    /// The part of `left` that belongs to the store being run.
    store_left: f64,
}

impl Progress {
    /// The plan for `stores` stores run with `settings`.
    pub fn new(settings: &Settings, stores: usize) -> Progress {
        #[allow(clippy::cast_precision_loss)] // a handful of stores
        let left = planned_per_store(settings, &Workload::ALL) * stores as f64;
        Progress {
            settings: settings.clone(),
            started: Instant::now(),
            done: 0.0,
            left,
            store_left: 0.0,
        }
    }

    /// A store that could not be opened: its steps leave the plan.
    pub fn skip_store(&mut self) {
        self.left = (self.left - planned_per_store(&self.settings, &Workload::ALL)).max(0.0);
    }

    /// The next store's steps begin: it runs `workloads` (the same-work
    /// floors only where it has one), the rest leaves the plan.
    pub fn start_store(&mut self, workloads: &[Workload]) {
        let all = planned_per_store(&self.settings, &Workload::ALL);
        self.store_left = planned_per_store(&self.settings, workloads);
        self.left = (self.left - (all - self.store_left)).max(0.0);
    }

    /// The store's run ended (all its steps, or a failure that ends it):
    /// whatever it did not run leaves the plan.
    pub fn end_store(&mut self) {
        self.left = (self.left - self.store_left).max(0.0);
        self.store_left = 0.0;
    }

    /// Prints which store, round and workload start now, and the estimate.
    pub fn starting(&self, store: StoreKind, round: usize, workload: Workload) {
        let warm_up = self.settings.warm_up();
        let round = if round < warm_up {
            "warm-up round".to_owned()
        } else {
            format!("round {}/{}", round + 1 - warm_up, self.settings.rounds)
        };
        let left = estimate(self.started.elapsed(), self.done, self.left)
            .map_or_else(|| "estimated after the first step".to_owned(), fmt_left);
        eprintln!("bench: {store}, {round}, {workload} (time left: {left})");
    }

    /// The step started last ran.
    pub fn finished(&mut self, workload: Workload, counted: bool) {
        let planned = self.settings.round_secs(workload, counted);
        self.done += planned;
        self.left = (self.left - planned).max(0.0);
        self.store_left = (self.store_left - planned).max(0.0);
    }
}

/// Planned seconds of one store: every round (warm-up included) of each of
/// `workloads`.
fn planned_per_store(settings: &Settings, workloads: &[Workload]) -> f64 {
    (0..settings.all_rounds())
        .flat_map(|round| {
            let counted = round >= settings.warm_up();
            workloads
                .iter()
                .map(move |&workload| settings.round_secs(workload, counted))
        })
        .sum()
}

/// Time left: the planned seconds `left`, at the pace of the steps done
/// (`elapsed` for `done` planned seconds). `None` before anything is done.
fn estimate(elapsed: Duration, done: f64, left: f64) -> Option<Duration> {
    if done <= 0.0 {
        return None;
    }
    let secs = elapsed.as_secs_f64() / done * left;
    Duration::try_from_secs_f64(secs).ok()
}

/// `8 s`, `3 min 05 s`, `1 h 02 min`.
fn fmt_left(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_millis() >= 500);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(smoke: bool, rounds: usize, secs: f64) -> Settings {
        Settings {
            smoke,
            rounds,
            secs,
            peer: false,
            footprint_locks: None,
            out: None,
            stores: Vec::new(),
        }
    }

    #[test]
    fn the_plan_counts_every_round_and_the_longer_contended_one() {
        // Smoke: one round, no warm-up; contended runs twice as long.
        let smoke = settings(true, 1, 0.1);
        assert!((planned_per_store(&smoke, &Workload::ALL) - 1.1).abs() < 1e-9);
        // Two rounds of 1 s after a warm-up capped at 0.3 s a workload.
        let full = settings(false, 2, 1.0);
        let planned = planned_per_store(&full, &Workload::ALL);
        assert!((planned - (3.0 + 2.0 * 11.0)).abs() < 1e-9, "{planned}");
        // A store without same-work floors skips three workloads, and the
        // two of the driver comparison.
        let without: Vec<_> = Workload::ALL
            .into_iter()
            .filter(|w| !w.is_floor())
            .collect();
        assert!((planned_per_store(&smoke, &without) - 0.6).abs() < 1e-9);
    }

    #[test]
    fn the_estimate_follows_the_pace_so_far() {
        assert_eq!(estimate(Duration::from_secs(5), 0.0, 10.0), None);
        // Steps took twice their plan: 10 planned seconds take 20.
        assert_eq!(
            estimate(Duration::from_secs(4), 2.0, 10.0),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn a_skipped_or_failed_store_leaves_the_plan() {
        let settings = settings(true, 1, 0.1);
        let mut progress = Progress::new(&settings, 3);
        progress.skip_store();
        progress.start_store(&Workload::ALL);
        progress.finished(Workload::RoundTrip, true);
        // The store fails after its first step: the rest of it is dropped.
        progress.end_store();
        assert!((progress.left - 1.1).abs() < 1e-9, "{}", progress.left);
        assert!((progress.done - 0.1).abs() < 1e-9);
        // A store without floors drops them from the plan when it starts.
        let without: Vec<_> = Workload::ALL
            .into_iter()
            .filter(|w| !w.is_floor())
            .collect();
        progress.start_store(&without);
        assert!((progress.left - 0.6).abs() < 1e-9, "{}", progress.left);
    }

    #[test]
    fn time_left_reads_as_seconds_minutes_or_hours() {
        assert_eq!(fmt_left(Duration::from_millis(7_600)), "8 s");
        assert_eq!(fmt_left(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(fmt_left(Duration::from_secs(3_720)), "1 h 02 min");
    }
}
