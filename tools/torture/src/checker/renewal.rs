//! What the renewal run is checked for besides the plain run's rules: that
//! no holder wrote after its lease had ended unless its lost signal had
//! fired first, and that no renewing hold was released as if live after its
//! lease had certainly ended.
//!
//! # When a lease has certainly ended
//!
//! A renewing lease has no fixed end: each renewal moves it, and renewals
//! happen inside the library, out of the history's sight. So the checker
//! does not compute when a lease ended; it only recognises two timelines in
//! which it *certainly* had, at an instant `t`:
//!
//! 1. **Someone else was granted the key.** Another hold of the same key was
//!    granted after this one (its acquire returned later) and its acquire
//!    returned before `t`. A store grants a key only once the previous lease
//!    is over, so the lease was over by then. (A store that grants a live
//!    lease is caught separately, as "lease granted while another was live".)
//! 2. **The holder was paused past its TTL.** The worker was stopped
//!    (SIGSTOP, or a thread stalled whole) from `p` to `q`, inside the hold,
//!    with `q - p >= TTL + PAUSE_SLACK`, and `t >= p + TTL + PAUSE_SLACK`. A
//!    stopped process sends nothing, so the last renewal the store can apply
//!    was on its way at `p`: it is applied by `p + PAUSE_SLACK` and the lease
//!    it sets ends by `p + PAUSE_SLACK + TTL`, while the worker is still
//!    stopped. After the worker resumes it must send nothing more for this
//!    grant (a lost lease is never renewed again), so the lease stays over.
//!
//! # Whether the signal had fired
//!
//! Before each write the worker checks the signal and logs how long the
//! local clock still vouched for the lease (`vouched_until`); without an
//! `.await` between that check and the write, no renewal can move it. A
//! write that began at or after `vouched_until` had the signal fired under
//! it: the worker checked just before it was stopped, and only fencing can
//! stop such a write (the worker's own check-then-write window, counted but
//! not a fault of the signal). A write that began *before* `vouched_until`
//! and after its lease certainly ended means the library still vouched for a
//! lease the store had given up: the signal was late. There must be none.

use std::collections::BTreeMap;

use super::{Findings, Hold, Pause, TOLERANCE_US};
use crate::history::{Access, Release};

/// How long after a worker was stopped a store call it had already sent may
/// still be applied. Far more than any store here takes to apply a request
/// already on the wire, and less than the 150 ms by which every pause of the
/// run outlasts the TTL (see `runner::stall_for`).
pub const PAUSE_SLACK_US: u64 = 100_000;

/// The renewal run's figures for one store.
#[derive(Debug, Default, Clone)]
pub struct RenewalFindings {
    /// Renewing holds.
    pub holds: u64,
    /// Renewals the store confirmed, over all holds.
    pub renewals: u64,
    /// The most renewals of one hold.
    pub max_renewals: u64,
    /// Holds whose worker saw the lost signal fire and stopped writing.
    pub losses_signalled: u64,
    /// Those, by the signal's reason.
    pub losses_by_reason: BTreeMap<String, u64>,
    /// Pauses past the TTL (plus slack) that hit a renewing hold.
    pub pauses_in_holds: u64,
    /// Of those, the ones after which the holder saw the signal.
    pub pauses_then_signalled: u64,
    /// Writes a renewing holder sent to the resource.
    pub writes: u64,
    /// Writes sent after the lease had certainly ended (see the module).
    pub late_writes: u64,
    /// Of those, sent after the signal had fired: the worker checked, was
    /// stopped, then wrote (fencing's job).
    pub late_writes_signalled: u64,
    /// Of those, sent while the library still vouched for the lease: the
    /// signal fired late. Must be 0.
    pub late_writes_unsignalled: u64,
    /// Late writes the resource accepted (nobody newer had touched it yet).
    pub late_writes_accepted: u64,
}

/// Checks the renewing holds among `holds`.
pub(super) fn check(holds: &[Hold], pauses: &[Pause], ttl_us: u64, f: &mut Findings) {
    let mut r = RenewalFindings::default();
    let long = ttl_us + PAUSE_SLACK_US;
    // Per key, the instants at which a grant returned, sorted.
    let mut grants: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for hold in holds {
        grants.entry(&hold.key).or_default().push(hold.got);
    }
    for gots in grants.values_mut() {
        gots.sort_unstable();
    }
    for hold in holds.iter().filter(|h| h.renewing) {
        r.holds += 1;
        let renewals = hold
            .steps
            .iter()
            .map(|s| s.renewals)
            .chain(hold.signals.iter().map(|s| s.renewals))
            .chain(hold.op.iter().map(|op| op.renewals))
            .max()
            .unwrap_or(0);
        r.renewals += renewals;
        r.max_renewals = r.max_renewals.max(renewals);
        if let Some(signal) = hold.signals.first() {
            r.losses_signalled += 1;
            *r.losses_by_reason.entry(signal.reason.clone()).or_default() += 1;
            if signal.reason == "NotOwned" && signal.at + TOLERANCE_US < hold.sent + ttl_us {
                f.violate(
                    "lease lost before its TTL",
                    format!(
                        "key {}: worker {} was told NotOwned by a renewal {} ms after sending its acquire (TTL {} ms)",
                        hold.key,
                        hold.w,
                        (signal.at - hold.sent) / 1000,
                        ttl_us / 1000
                    ),
                );
            }
        }
        // The first instant at which the lease had certainly ended.
        let next_grant = grants[hold.key.as_str()]
            .iter()
            .copied()
            .find(|&got| got > hold.got);
        let long_pauses: Vec<&Pause> = pauses
            .iter()
            .filter(|p| p.w == hold.w && p.from >= hold.sent && p.from < hold.cs_end)
            .filter(|p| p.to >= p.from + long)
            .collect();
        for pause in &long_pauses {
            r.pauses_in_holds += 1;
            if hold.signals.iter().any(|s| s.at >= pause.from) {
                r.pauses_then_signalled += 1;
            }
        }
        let ended_by = long_pauses
            .iter()
            .map(|p| p.from + long)
            .chain(next_grant)
            .min();
        for step in hold.steps.iter().filter(|s| s.write != Access::Skipped) {
            r.writes += 1;
            if ended_by.is_none_or(|end| step.write_start <= end) {
                continue;
            }
            r.late_writes += 1;
            if step.write == Access::Accepted {
                r.late_writes_accepted += 1;
                f.late_writes_accepted_harmless += 1;
            }
            if step.write_start >= step.vouched_until {
                r.late_writes_signalled += 1;
            } else {
                r.late_writes_unsignalled += 1;
                f.violate(
                    "wrote after its lease ended without the signal having fired",
                    format!(
                        "key {}: worker {} (token {:?}) wrote at {} (step {}), its lease certainly over by {}, yet the signal checked at {} vouched for it until {}",
                        hold.key,
                        hold.w,
                        hold.tok,
                        step.write_start,
                        step.i,
                        ended_by.unwrap_or(0),
                        step.checked,
                        step.vouched_until
                    ),
                );
            }
        }
        if let Some(op) = hold.op.as_ref().filter(|op| op.rel == Release::Ok)
            && ended_by.is_some_and(|end| op.rel_start > end)
        {
            f.violate(
                "expired lease released as if live",
                format!(
                    "key {}: worker {}'s release at {} succeeded, its lease certainly over by {}",
                    hold.key,
                    hold.w,
                    op.rel_start,
                    ended_by.unwrap_or(0)
                ),
            );
        }
    }
    f.renewal = Some(r);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::checker::check;
    use crate::fault::{Fault, InjectedFault};
    use crate::history::{Access, Event, Op, Release, Step};
    use crate::resource::{ACCOUNTS, Record, START_BALANCE};

    const TTL: u64 = 400_000;

    /// A renewing hold of worker `w` with one write at `write_start`,
    /// vouched for until `vouched_until` at its check.
    fn hold(w: u32, sent: u64, tok: u64, write_start: u64, vouched_until: u64) -> Vec<Event> {
        let got = sent + 1_000;
        let seq = u64::from(w) * 2;
        let step = Step {
            w,
            n: 0,
            i: 0,
            read: Access::Accepted,
            read_seq: seq + 1,
            write: Access::Accepted,
            write_seq: seq + 2,
            checked: write_start - 10,
            vouched_until,
            write_start,
            write_end: write_start + 100,
            renewals: 3,
        };
        let op = Op {
            w,
            n: 0,
            key: "k".into(),
            sent,
            got,
            tok: Some(tok),
            read: Access::Skipped,
            read_seq: 0,
            write: Access::Skipped,
            write_seq: 0,
            write_end: 0,
            rel_start: write_start + 1_000,
            rel_end: write_start + 2_000,
            rel: Release::Pending,
            stalled: false,
            renewals: 3,
        };
        vec![
            Event::Acquired {
                w,
                n: 0,
                key: "k".into(),
                sent,
                got,
                tok: Some(tok),
                renewing: true,
            },
            Event::Step(step),
            Event::Op(op),
            Event::Released {
                w,
                n: 0,
                rel: Release::NotOwned,
                rel_end: write_start + 2_000,
            },
        ]
    }

    fn stop(w: u32, at: u64, until: u64) -> InjectedFault {
        InjectedFault {
            kind: Fault::Stop,
            w: Some(w),
            at,
            until: Some(until),
            key: None,
        }
    }

    fn resource(writes: u64) -> HashMap<String, Record> {
        let record = Record {
            last_token: 0,
            seq: 0,
            writes,
            accounts: [START_BALANCE; ACCOUNTS],
        };
        HashMap::from([("k".to_owned(), record)])
    }

    const RULE: &str = "wrote after its lease ended without the signal having fired";

    #[test]
    fn a_write_after_a_long_stop_while_still_vouched_for_is_caught() {
        // Stopped 100 ms into the hold for 700 ms, then wrote with the
        // library still vouching for the lease: the signal was late.
        let events = hold(1, 1_000_000, 1, 1_900_000, 2_000_000);
        let f = check(events, &[stop(1, 1_100_000, 1_800_000)], &resource(1), TTL);
        assert_eq!(f.violation_counts.get(RULE), Some(&1), "{f:#?}");
        let r = f.renewal.unwrap();
        assert_eq!((r.late_writes, r.late_writes_unsignalled), (1, 1));
        assert_eq!(r.renewals, 3);
    }

    #[test]
    fn a_write_after_the_signal_fired_is_only_counted() {
        // The same stop, but the check came just before it: the signal fired
        // (by the clock) before the write.
        let events = hold(1, 1_000_000, 1, 1_900_000, 1_390_000);
        let f = check(events, &[stop(1, 1_100_000, 1_800_000)], &resource(1), TTL);
        assert!(f.violation_counts.is_empty(), "{f:#?}");
        let r = f.renewal.unwrap();
        assert_eq!((r.late_writes, r.late_writes_signalled), (1, 1));
    }

    #[test]
    fn a_write_after_someone_else_got_the_key_is_late() {
        // Worker 1 wrote after worker 2 had been granted the key, vouched for
        // all along: caught by both the double grant and the late write.
        let mut events = hold(1, 1_000_000, 1, 1_500_000, 1_600_000);
        events.extend(hold(2, 1_300_000, 2, 1_400_000, 1_700_000));
        let f = check(events, &[], &resource(2), TTL);
        assert_eq!(f.violation_counts.get(RULE), Some(&1), "{f:#?}");
    }

    #[test]
    fn a_short_stop_proves_nothing() {
        let events = hold(1, 1_000_000, 1, 1_900_000, 2_000_000);
        let f = check(events, &[stop(1, 1_100_000, 1_400_000)], &resource(1), TTL);
        assert!(f.violation_counts.is_empty(), "{f:#?}");
        assert_eq!(f.renewal.unwrap().late_writes, 0);
    }
}
