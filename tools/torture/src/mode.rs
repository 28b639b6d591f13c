//! The two runs every store gets.
//!
//! The plain run keeps each hold far inside the TTL. The renewal run
//! (`<store>-renewal`) has every lease renewed in the background
//! (`LeasePolicy::renewing()`) while its hold works for two to three TTLs,
//! each access gated on the lost signal; holders stopped past their TTL in
//! the middle of a hold must see the signal before they write again.

use std::time::Duration;

use super::renewing_hold::RenewalWork;

/// Appended to a store's name for its renewal run, the way
/// `redis-volatile` names the other variant.
pub const RENEWAL_SUFFIX: &str = "-renewal";

/// The store and whether the run renews: `redis-renewal` → `("redis", true)`.
pub fn parse(name: &str) -> (&str, bool) {
    match name.strip_suffix(RENEWAL_SUFFIX) {
        Some(store) => (store, true),
        None => (name, false),
    }
}

/// The name of `store`'s renewal run.
pub fn renewal_name(store: &str) -> String {
    format!("{store}{RENEWAL_SUFFIX}")
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
