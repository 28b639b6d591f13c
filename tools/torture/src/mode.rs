//! The two runs every store gets.
//!
//! The plain run keeps each hold far inside the TTL. The renewal run
//! (`<store>-renewal`, [`Mode::Renewal`]) has every lease renewed in the background
//! (`LeasePolicy::renewing()`) while its hold works for two to three TTLs,
//! each access gated on the lost signal; holders stopped past their TTL in
//! the middle of a hold must see the signal before they write again.

use std::time::Duration;

use crate::renewing_hold::RenewalWork;

/// How the leases of a run live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Each hold brief, far inside the TTL; no renewal.
    Plain,
    /// Every lease renewed in the background while its hold works for
    /// several TTLs ([`WORK`]), on fewer keys ([`KEYS`]).
    Renewal,
}

impl Mode {
    /// Appended to a store's name for its renewal run (`redis-renewal`).
    pub const SUFFIX: &str = "-renewal";
}

/// The work of one renewing hold: 20 to 30 steps of 40 ms (0.8 to 1.2 s, two
/// to three 400 ms TTLs), each a fenced read-modify-write. Short steps mean
/// a holder touches the resource again within a step of being resumed,
/// which is when a lease lost during the stop must already be signalled.
pub const WORK: RenewalWork = RenewalWork {
    step: Duration::from_millis(40),
    min_steps: 20,
    max_steps: 30,
};

/// Keys of a renewal run: fewer than the plain run's four, so that a holder
/// stopped past its TTL usually finds its key taken when it resumes (a
/// write then is late by the plainest definition: someone else held it).
pub const KEYS: usize = 3;

/// Holds per store in a renewal run, from the operations asked for. A hold
/// lasts about a second, some two hundred plain operations, and only one per
/// key runs at a time: the short run's 2,000 operations make 24 holds
/// (about 13 s a store, some ten stops past the TTL included), the full
/// run's 100,000 make 500.
pub fn holds(ops: u64, short: bool) -> u64 {
    (if short { ops * 3 / 250 } else { ops / 200 }).max(12)
}
