//! Reads the histories of a run and decides whether the locks held.
//!
//! Every worker on this machine reads the same wall clock as the store, so the
//! times in the histories can be compared with each other and with the TTL:
//!
//! - A hold *certainly* lasted, in the store, from `got` (the acquire returned)
//!   until the earlier of `rel_start` (the release was sent) and
//!   `sent + TTL` (the server granted it after `sent`, so its lease cannot end
//!   before `sent + TTL`). Two such intervals on one key that intersect are a
//!   **violation**: the store granted a lease that was still live.
//! - A critical section is `got..rel_start` (or until the worker was killed).
//!   Two that intersect without a violation are **explained**: the earlier
//!   holder was paused past its lease, and the fenced resource must then have
//!   refused its late accesses (checked from the resource's own order).
//!
//! A renewing hold's lease outlives `sent + TTL`; what it is checked for
//! besides is in [`renewal`].

mod renewal;

use std::collections::{BTreeMap, HashMap};

pub use renewal::RenewalFindings;

use crate::fault::{Fault, InjectedFault};
use crate::history::{Access, Event, Op, Release, Step};
use crate::resource::{ACCOUNTS, Record, START_BALANCE};

/// Slack for timestamps stored in whole milliseconds by the stores.
pub const TOLERANCE_US: u64 = 5_000;

/// One hold of a lock, finished or cut short by a kill.
#[derive(Debug, Clone)]
struct Hold {
    w: u32,
    key: String,
    sent: u64,
    got: u64,
    tok: Option<u64>,
    /// End of the critical section.
    cs_end: u64,
    /// End of the interval in which the lease was certainly live.
    lease_end: u64,
    op: Option<Op>,
    /// The lease renewed itself (a renewal run).
    renewing: bool,
    /// A renewing hold's steps, in order.
    steps: Vec<Step>,
    /// When a renewing holder saw its lost signal, and why.
    signals: Vec<Signal>,
}

/// A renewing holder's sighting of its lost signal.
#[derive(Debug, Clone)]
struct Signal {
    at: u64,
    reason: String,
    renewals: u64,
}

/// A stretch in which a worker could send nothing: stopped with SIGSTOP by
/// the runner, or a thread stalled whole.
#[derive(Debug, Clone, Copy)]
struct Pause {
    w: u32,
    from: u64,
    to: u64,
}

impl Hold {
    /// Every access the resource accepted from this hold: (sequence, token, worker).
    fn accepted_accesses(&self) -> Vec<(u64, u64, u32)> {
        let Some(tok) = self.tok else {
            return Vec::new();
        };
        let op = self
            .op
            .iter()
            .flat_map(|op| [(op.read, op.read_seq), (op.write, op.write_seq)]);
        let steps = self
            .steps
            .iter()
            .flat_map(|s| [(s.read, s.read_seq), (s.write, s.write_seq)]);
        op.chain(steps)
            .filter(|(access, _)| *access == Access::Accepted)
            .map(|(_, seq)| (seq, tok, self.w))
            .collect()
    }

    /// Writes the resource accepted from this hold.
    fn accepted_writes(&self) -> u64 {
        let op = self
            .op
            .as_ref()
            .is_some_and(|op| op.write == Access::Accepted);
        u64::from(op)
            + self
                .steps
                .iter()
                .filter(|s| s.write == Access::Accepted)
                .count() as u64
    }

    /// Whether the resource refused any access of this hold.
    fn fenced_off(&self) -> bool {
        let op = self
            .op
            .as_ref()
            .is_some_and(|op| op.read == Access::Rejected || op.write == Access::Rejected);
        op || self
            .steps
            .iter()
            .any(|s| s.read == Access::Rejected || s.write == Access::Rejected)
    }
}

/// Everything the report says about one store's run.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Completed lock operations.
    pub ops: u64,
    /// Holds whose worker was killed before releasing.
    pub killed_holds: u64,
    /// Holds cut short without a recorded kill (the worker died on its own).
    pub unexplained_unfinished: u64,
    /// Acquire attempts that failed with a store error.
    pub acquire_errors: u64,
    /// Releases that failed with a store error.
    pub release_errors: u64,
    /// Releases answered `NotOwned` (the lease had run out).
    pub releases_not_owned: u64,
    /// Faults by kind.
    pub faults: BTreeMap<Fault, u64>,
    /// Critical sections that overlapped another one.
    pub overlaps: u64,
    /// Of those, explained by an expired lease.
    pub overlaps_explained: u64,
    /// Reads refused by the fenced resource.
    pub reads_rejected: u64,
    /// Writes refused by the fenced resource.
    pub writes_rejected: u64,
    /// Late writes (after the lease ran out) that the resource accepted because
    /// nobody newer had touched it yet.
    pub late_writes_accepted_harmless: u64,
    /// After each kill -9 of a holder: how long after the killed hold's
    /// acquire the next holder got the key (ms), the smallest.
    pub min_takeover_after_kill_ms: Option<u64>,
    /// Violations, each with a line of explanation (first few kept).
    pub violations: Vec<String>,
    /// Violation counts by rule.
    pub violation_counts: BTreeMap<&'static str, u64>,
    /// Money: the sum of all balances minus what it should be.
    pub money_lost: i64,
    /// Writes the resource applied minus accepted writes in the histories
    /// (positive only up to the number of killed holds).
    pub unlogged_writes: i64,
    /// What the renewal run adds (`None` for a plain run).
    pub renewal: Option<RenewalFindings>,
}

impl Findings {
    /// The number of violations of any rule.
    pub fn violation_total(&self) -> u64 {
        self.violation_counts.values().sum()
    }

    fn violate(&mut self, rule: &'static str, detail: String) {
        *self.violation_counts.entry(rule).or_default() += 1;
        if self.violations.len() < 20 {
            self.violations.push(format!("{rule}: {detail}"));
        }
    }
}

/// Checks one run: the workers' events, the faults injected, the final
/// resource records, the TTL in microseconds.
pub fn check(
    events: Vec<Event>,
    faults: &[InjectedFault],
    records: &HashMap<String, Record>,
    ttl_us: u64,
) -> Findings {
    let mut f = Findings::default();
    let holds = check_holds(events, faults, ttl_us, &mut f);
    check_bank(&holds, records, &mut f);
    f
}

/// What can be checked while the run goes on: every rule but the
/// resource's final balance, on the holds `events` show whole. A lower
/// bound: holds still open are left out until they end (see
/// [`progress`](crate::progress)).
pub fn check_so_far(
    events: impl IntoIterator<Item = Event>,
    faults: &[InjectedFault],
    ttl_us: u64,
) -> Findings {
    let mut f = Findings::default();
    check_holds(events, faults, ttl_us, &mut f);
    f
}

/// Every rule on the holds; returns them for the resource's check.
fn check_holds(
    events: impl IntoIterator<Item = Event>,
    faults: &[InjectedFault],
    ttl_us: u64,
    f: &mut Findings,
) -> Vec<Hold> {
    for fault in faults {
        *f.faults.entry(fault.kind).or_default() += 1;
    }
    let kill_time: HashMap<u32, u64> = faults
        .iter()
        .filter(|x| x.kind == Fault::Kill9)
        .filter_map(|x| x.w.map(|w| (w, x.at)))
        .collect();
    let mut pauses: Vec<Pause> = faults
        .iter()
        .filter(|x| x.kind == Fault::Stop)
        .filter_map(|x| {
            Some(Pause {
                w: x.w?,
                from: x.at,
                to: x.until?,
            })
        })
        .collect();
    let holds = collect_holds(events, &kill_time, ttl_us, &mut pauses, f);

    let mut by_key: BTreeMap<&str, Vec<&Hold>> = BTreeMap::new();
    for hold in &holds {
        by_key.entry(hold.key.as_str()).or_default().push(hold);
    }
    for (key, mut holds) in by_key {
        holds.sort_by_key(|h| h.got);
        check_grants(key, &holds, f);
        check_tokens(key, &holds, f);
        check_resource_order(key, &holds, f);
        takeovers(&holds, f);
    }
    check_ops(&holds, ttl_us, f);
    if holds.iter().any(|h| h.renewing) {
        renewal::check(&holds, &pauses, ttl_us, f);
    }
    holds
}

fn collect_holds(
    events: impl IntoIterator<Item = Event>,
    kill_time: &HashMap<u32, u64>,
    ttl_us: u64,
    pauses: &mut Vec<Pause>,
    f: &mut Findings,
) -> Vec<Hold> {
    let mut holds: HashMap<(u32, u64), Hold> = HashMap::new();
    for event in events {
        match event {
            Event::AcquireError { .. } => f.acquire_errors += 1,
            Event::Acquired {
                w,
                n,
                key,
                sent,
                got,
                tok,
                renewing,
            } => {
                holds.insert(
                    (w, n),
                    Hold {
                        w,
                        key,
                        sent,
                        got,
                        tok,
                        cs_end: u64::MAX,
                        lease_end: (sent + ttl_us).saturating_sub(TOLERANCE_US),
                        op: None,
                        renewing,
                        steps: Vec::new(),
                        signals: Vec::new(),
                    },
                );
            }
            Event::Step(step) => {
                if let Some(hold) = holds.get_mut(&(step.w, step.n)) {
                    // The local clock vouched for the lease until then, so the
                    // store's lease (which began after `sent`, as the one it
                    // renewed) was certainly live that long.
                    hold.lease_end = hold
                        .lease_end
                        .max(step.vouched_until.saturating_sub(TOLERANCE_US));
                    hold.steps.push(step);
                }
            }
            Event::Signalled {
                w,
                n,
                at,
                reason,
                renewals,
            } => {
                if let Some(hold) = holds.get_mut(&(w, n)) {
                    hold.signals.push(Signal {
                        at,
                        reason,
                        renewals,
                    });
                }
            }
            Event::Paused { w, from, to, .. } => pauses.push(Pause { w, from, to }),
            Event::Op(op) => {
                if let Some(hold) = holds.get_mut(&(op.w, op.n)) {
                    hold.op = Some(op);
                }
            }
            Event::Released { w, n, rel, rel_end } => {
                if let Some(op) = holds.get_mut(&(w, n)).and_then(|h| h.op.as_mut()) {
                    op.rel = rel;
                    op.rel_end = rel_end;
                }
            }
        }
    }
    let mut finished = Vec::with_capacity(holds.len());
    for (_, mut hold) in holds {
        match &hold.op {
            Some(op) => {
                f.ops += 1;
                match op.rel {
                    Release::Error => f.release_errors += 1,
                    Release::NotOwned => f.releases_not_owned += 1,
                    Release::Abandoned => f.killed_holds += 1,
                    // Killed while releasing: the release may have been applied.
                    Release::Pending => f.killed_holds += 1,
                    Release::Ok => {}
                }
                hold.cs_end = op.rel_start;
                if op.rel != Release::Abandoned {
                    hold.lease_end = hold.lease_end.min(op.rel_start);
                }
            }
            None => {
                f.killed_holds += 1;
                match kill_time.get(&hold.w) {
                    Some(&at) => hold.cs_end = at,
                    None => {
                        f.unexplained_unfinished += 1;
                        hold.cs_end = hold.sent + ttl_us;
                    }
                }
            }
        }
        finished.push(hold);
    }
    finished
}

/// Sweeps holds sorted by `got`: a hold whose certain lease is still running
/// when the next one is granted is a double grant; overlapping critical
/// sections are counted either way.
fn check_grants(key: &str, holds: &[&Hold], f: &mut Findings) {
    let mut active: Vec<&Hold> = Vec::new();
    for b in holds {
        active.retain(|a| a.cs_end > b.got || a.lease_end > b.got);
        for a in &active {
            // Both certain holds cover the instant `b.got` and after: an empty
            // one (a holder stopped mid-acquire until its lease ran out) is
            // no grant at all.
            let double_grant = a.lease_end > b.got && b.lease_end > b.got;
            let cs_overlap = a.cs_end > b.got;
            if cs_overlap {
                f.overlaps += 1;
                if !double_grant {
                    f.overlaps_explained += 1;
                }
            }
            if double_grant {
                f.violate(
                    "lease granted while another was live",
                    format!(
                        "key {key}: worker {} got it at {} (token {:?}) while worker {} held it since {} (token {:?}), lease certainly live until {}",
                        b.w, b.got, b.tok, a.w, a.got, a.tok, a.lease_end
                    ),
                );
            }
        }
        active.push(b);
    }
}

/// A hold granted after another was granted (its request was sent after the
/// other's acquire returned) must carry a larger token.
fn check_tokens(key: &str, holds: &[&Hold], f: &mut Findings) {
    let mut by_sent: Vec<&Hold> = holds.to_vec();
    by_sent.sort_by_key(|h| h.sent);
    let mut i = 0;
    let mut max_before: Option<(u64, u32)> = None;
    for b in by_sent {
        while i < holds.len() && holds[i].got < b.sent {
            if let Some(t) = holds[i].tok
                && max_before.is_none_or(|(m, _)| t > m)
            {
                max_before = Some((t, holds[i].w));
            }
            i += 1;
        }
        if let (Some(t), Some((m, w))) = (b.tok, max_before)
            && t <= m
        {
            f.violate(
                "fencing token did not increase",
                format!(
                    "key {key}: worker {} got token {t} at {} after worker {w} had been granted token {m}",
                    b.w, b.got
                ),
            );
        }
    }
}

/// In the resource's own order, the tokens of accepted accesses never go
/// down: no holder touched it after a newer holder had.
fn check_resource_order(key: &str, holds: &[&Hold], f: &mut Findings) {
    let mut accesses: Vec<(u64, u64, u32)> =
        holds.iter().flat_map(|h| h.accepted_accesses()).collect();
    accesses.sort_unstable();
    let mut highest = 0;
    for pair in accesses.windows(2) {
        if pair[0].0 == pair[1].0 {
            f.violate(
                "resource applied two accesses at once",
                format!("key {key}: sequence {}", pair[0].0),
            );
        }
    }
    for (seq, tok, w) in accesses {
        if tok < highest {
            f.violate(
                "stale access accepted",
                format!(
                    "key {key}: worker {w} with token {tok} at sequence {seq} after token {highest}"
                ),
            );
        }
        highest = highest.max(tok);
    }
}

fn takeovers(holds: &[&Hold], f: &mut Findings) {
    for (i, killed) in holds.iter().enumerate() {
        if killed
            .op
            .as_ref()
            .is_some_and(|op| op.rel != Release::Abandoned)
        {
            continue;
        }
        if let Some(next) = holds[i + 1..].iter().find(|h| h.got > killed.got) {
            let gap = (next.got - killed.sent) / 1000;
            f.min_takeover_after_kill_ms =
                Some(f.min_takeover_after_kill_ms.map_or(gap, |m| m.min(gap)));
        }
    }
}

fn check_ops(holds: &[Hold], ttl_us: u64, f: &mut Findings) {
    for hold in holds {
        let Some(op) = &hold.op else { continue };
        if op.read == Access::Rejected {
            f.reads_rejected += 1;
        }
        if op.write == Access::Rejected {
            f.writes_rejected += 1;
        }
        let late = op.write_end > hold.sent + ttl_us;
        if late && op.write == Access::Accepted {
            f.late_writes_accepted_harmless += 1;
        }
        if hold.fenced_off() && op.rel == Release::Ok {
            f.violate(
                "holder with a live lease was fenced off",
                format!(
                    "key {}: worker {} token {:?} was refused by the resource yet its release succeeded",
                    hold.key, op.w, op.tok
                ),
            );
        }
        // A renewing hold's lease outlives the TTL: `renewal` checks its
        // releases against what certainly ended it instead.
        if !hold.renewing
            && op.rel == Release::Ok
            && op.rel_start > hold.got + ttl_us + TOLERANCE_US
        {
            f.violate(
                "expired lease released as if live",
                format!(
                    "key {}: worker {} released {} ms after its acquire returned (TTL {} ms)",
                    hold.key,
                    op.w,
                    (op.rel_start - hold.got) / 1000,
                    ttl_us / 1000
                ),
            );
        }
        if op.rel == Release::NotOwned && op.rel_end + TOLERANCE_US < hold.sent + ttl_us {
            f.violate(
                "lease lost before its TTL",
                format!(
                    "key {}: worker {} was told NotOwned {} ms after sending its acquire (TTL {} ms)",
                    hold.key,
                    op.w,
                    (op.rel_end - hold.sent) / 1000,
                    ttl_us / 1000
                ),
            );
        }
    }
}

fn check_bank(holds: &[Hold], records: &HashMap<String, Record>, f: &mut Findings) {
    let expected = START_BALANCE * ACCOUNTS as i64 * records.len() as i64;
    let total: i64 = records.values().flat_map(|r| r.accounts).sum();
    f.money_lost = expected - total;
    if f.money_lost != 0 {
        f.violate(
            "money not conserved",
            format!("total {total}, expected {expected}"),
        );
    }
    let logged = holds.iter().map(Hold::accepted_writes).sum::<u64>() as i64;
    let applied: i64 = records.values().map(|r| r.writes as i64).sum();
    f.unlogged_writes = applied - logged;
    if f.unlogged_writes < 0 || f.unlogged_writes > f.killed_holds as i64 {
        f.violate(
            "resource writes do not match the histories",
            format!(
                "resource applied {applied} writes, histories accepted {logged}, killed holds {}",
                f.killed_holds
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    const TTL: u64 = 400_000;

    fn acquired(w: u32, sent: u64, got: u64, tok: u64) -> Event {
        Event::Acquired {
            w,
            n: 0,
            key: "k".into(),
            sent,
            got,
            tok: Some(tok),
            renewing: false,
        }
    }

    fn finished(w: u32, sent: u64, got: u64, tok: u64, rel_start: u64, rel: Release) -> Vec<Event> {
        let op = Op {
            w,
            n: 0,
            key: "k".into(),
            sent,
            got,
            tok: Some(tok),
            read: Access::Accepted,
            read_seq: u64::from(w) * 2 + 1,
            write: Access::Accepted,
            write_seq: u64::from(w) * 2 + 2,
            write_end: rel_start,
            rel_start,
            rel_end: rel_start + 1_000,
            rel: Release::Pending,
            stalled: false,
            renewals: 0,
        };
        vec![
            acquired(w, sent, got, tok),
            Event::Op(op),
            Event::Released {
                w,
                n: 0,
                rel,
                rel_end: rel_start + 1_000,
            },
        ]
    }

    fn kill(w: u32, at: u64) -> InjectedFault {
        InjectedFault {
            kind: Fault::Kill9,
            w: Some(w),
            at,
            until: None,
            key: None,
        }
    }

    fn rules(f: &Findings) -> Vec<&'static str> {
        f.violation_counts.keys().copied().collect()
    }

    /// The resource after `writes` accepted writes.
    fn resource(writes: u64) -> HashMap<String, Record> {
        let record = Record {
            last_token: 0,
            seq: 0,
            writes,
            accounts: [START_BALANCE; ACCOUNTS],
        };
        HashMap::from([("k".to_owned(), record)])
    }

    #[test]
    fn taking_a_dead_holders_lock_before_its_ttl_is_a_violation() {
        let mut events = vec![acquired(1, 1_000_000, 1_001_000, 1)];
        events.extend(finished(2, 1_100_000, 1_101_000, 2, 1_105_000, Release::Ok));
        let f = check(events, &[kill(1, 1_050_000)], &resource(1), TTL);
        assert!(
            rules(&f).contains(&"lease granted while another was live"),
            "{f:#?}"
        );
    }

    #[test]
    fn taking_it_after_the_ttl_is_not() {
        let mut events = vec![acquired(1, 1_000_000, 1_001_000, 1)];
        events.extend(finished(2, 1_300_000, 1_401_000, 2, 1_405_000, Release::Ok));
        let f = check(events, &[kill(1, 1_050_000)], &resource(1), TTL);
        assert!(rules(&f).is_empty(), "{f:#?}");
        assert!(
            !rules(&f).contains(&"lease granted while another was live"),
            "{f:#?}"
        );
        assert_eq!(f.killed_holds, 1);
    }

    #[test]
    fn a_holder_stopped_mid_acquire_past_its_ttl_held_nothing_certain() {
        // Worker 1 was granted token 1 early, stopped, and its acquire only
        // returned after its lease had run out; worker 2 meanwhile took the
        // key properly with token 2 and still held it.
        let mut events = finished(1, 1_000_000, 1_500_000, 1, 1_502_000, Release::NotOwned);
        if let Some(Event::Op(op)) = events.get_mut(1) {
            // The resource had seen token 2 by then.
            op.write = Access::Rejected;
        }
        events.extend(finished(2, 1_420_000, 1_421_000, 2, 1_600_000, Release::Ok));
        let f = check(events, &[], &resource(1), TTL);
        assert!(rules(&f).is_empty(), "{f:#?}");
        assert_eq!(f.overlaps, 1);
        assert_eq!(f.overlaps_explained, 1);
    }

    #[test]
    fn a_token_that_goes_down_is_a_violation() {
        let mut events = finished(1, 1_000_000, 1_001_000, 5, 1_002_000, Release::Ok);
        events.extend(finished(2, 1_003_000, 1_004_000, 3, 1_005_000, Release::Ok));
        let f = check(events, &[], &resource(2), TTL);
        assert!(
            rules(&f).contains(&"fencing token did not increase"),
            "{f:#?}"
        );
    }
}
