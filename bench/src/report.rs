//! The markdown report: per-store tables, then the targets and whether each
//! was met. Every figure is a median over rounds; every ratio is the median of
//! the per-round ratios (ours and the peer's ran back to back in each round,
//! so a ratio is taken between two runs that saw the same machine).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sample::{Sample, Workload};
use crate::stats::{median, range};
use crate::workloads::{CONCURRENT_TASKS, CONTENDED_TASKS, HERD_TASKS, HOLD};
use crate::{Settings, Skipped, StoreRun};
use verrou_testkit::StoreKind;

/// The run's circumstances, printed at the top of the report.
#[derive(Debug)]
pub struct Meta {
    date: String,
    machine: String,
    profile: &'static str,
    settings: Settings,
    /// Node's version and `@verrou/core`'s, when the peer ran.
    peer: Option<(String, String)>,
}

impl Meta {
    /// Reads the date and the machine's description.
    pub fn collect(settings: &Settings, peer: Option<(String, String)>) -> Meta {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!(", Linux {}", k.trim()))
            .unwrap_or_default();
        Meta {
            date: utc_now(),
            machine: format!("{cores} cores ({cpu}){kernel}, services on loopback"),
            profile: if cfg!(debug_assertions) {
                "debug (numbers not meaningful)"
            } else {
                "release"
            },
            settings: settings.clone(),
            peer,
        }
    }

    fn peer_name(&self) -> String {
        match &self.peer {
            Some((_, verrou)) => format!("Node Verrou {verrou}"),
            None => "Node Verrou".into(),
        }
    }
}

/// The whole report.
pub fn render(meta: &Meta, runs: &[StoreRun], skipped: &[Skipped]) -> String {
    let mut out = String::new();
    let s = &meta.settings;
    let _ = writeln!(out, "# verrou benchmarks\n");
    let _ = writeln!(out, "- Date: {}", meta.date);
    let _ = writeln!(out, "- Machine: {}", meta.machine);
    let _ = writeln!(
        out,
        "- Build: {}; tokio multi-thread runtime, one worker per core",
        meta.profile
    );
    let _ = writeln!(
        out,
        "- Rounds: {} per workload ({} s each, contended {} s){}; figures are medians over rounds, ratios medians of per-round ratios",
        s.rounds,
        s.secs_for(Workload::Sequential),
        s.secs_for(Workload::Contended),
        if s.smoke {
            ", smoke run, no warm-up"
        } else {
            ", after one discarded warm-up round"
        }
    );
    match &meta.peer {
        Some((node, verrou)) => {
            let _ = writeln!(
                out,
                "- Peer: `@verrou/core` {verrou} on Node {node} (`bench/node/peer.mjs`), same workloads, same servers, rounds alternating with ours"
            );
        }
        None => {
            let _ = writeln!(out, "- Peer: not run");
        }
    }
    let _ = writeln!(
        out,
        "- Command: `cargo xtask bench{}`\n",
        store_args(runs, skipped)
    );

    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| store | target | goal | measured | status |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for target in targets(runs) {
        let _ = writeln!(out, "{}", target.row());
    }
    let _ = writeln!(out);

    let peer = meta.peer_name();
    for run in runs {
        render_store(&mut out, &peer, run);
    }
    for skip in skipped {
        let _ = writeln!(out, "## {}\n\nNot run: {}\n", skip.kind, skip.reason);
    }
    let _ = writeln!(out, "## How it is measured\n");
    let _ = writeln!(
        out,
        "- **floor**: the store's cheapest request on the store's own client (see each table), back to back on one task. An acquire + release is two round trips at least, so `vs floor` = ops/s ÷ (floor ops/s ÷ 2); 1.0× would be a perfect client.\n\
         - **sequential**: one task; each iteration creates a lock handle on a fresh key (not timed) and times `acquire()` + `release()`. ops/s = operations ÷ summed operation time.\n\
         - **concurrent**: {CONCURRENT_TASKS} tasks on distinct keys sharing one store (one client/pool), lock creation included; ops/s over wall time.\n\
         - **contended**: {CONTENDED_TASKS} tasks take turns on one key, each holding it {} ms; a task re-queues only after another has taken the lock, so each acquisition is a hand-off to a different task. Hand-off = from the holder calling `release()` to the next holder's `acquire()` returning. verrou uses `RetryPolicy` delay 1 ms, exponential to 10 ms (memory, Redis and PostgreSQL wake waiters on release; MariaDB, SQLite and DynamoDB poll); Node Verrou uses its default retry (poll every 250 ms).\n\
         - **herd**: {HERD_TASKS} tasks wait on one key with the default `RetryPolicy` (poll every 250 ms, no timeout), each holding it {} ms as above; a holder queues again only after another task has taken the lock, so about {} tasks wait all the time. Hand-offs per second over the window after the herd has gathered (250 ms), hand-off latency as above. A store that wakes every waiter on each release pays about {HERD_TASKS} acquire attempts per hand-off. verrou only: Node Verrou would measure its poll interval.\n\
         - Keys are fresh per run and round; TTL 30 s, never reached.",
        HOLD.as_millis(),
        HOLD.as_millis(),
        HERD_TASKS - 1
    );
    out
}

fn store_args(runs: &[StoreRun], skipped: &[Skipped]) -> String {
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r.kind.name())
        .chain(skipped.iter().map(|s| s.kind.name()))
        .collect();
    if names.len() == crate::stores::BENCHED.len() {
        String::new()
    } else {
        format!(" {}", names.join(" "))
    }
}

/// One row of a store's table: what it shows and how to read it from the
/// results. Every row has the same columns: our median over rounds, our
/// spread over rounds, the peer's median, and ours compared with the peer's.
#[derive(Debug, Clone)]
struct Metric {
    label: String,
    /// The workload whose samples the row reads.
    workload: Workload,
    /// How one round's figure is read from one side's sample, and shown.
    figure: Figure,
    /// Which way is better when ours is compared with the peer's (the last
    /// column); `None` where the row has no comparison: no peer runs the
    /// workload, or the figure is already a ratio.
    better: Option<Better>,
    /// Which stores have the row.
    stores: Stores,
}

/// What a row reads from a sample, and in what unit it is shown.
#[derive(Debug, Clone, Copy)]
enum Figure {
    /// Operations per second, as `12,345/s`.
    Rate,
    /// Median latency, shown with the 99th percentile as `p50 / p99`.
    Latency,
    /// A ratio, as `0.85×`, of the side's sample to our floor sample of the
    /// same round: `f(floor, sample)`.
    VsFloor(fn(&Sample, &Sample) -> Option<f64>),
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy)]
enum Better {
    /// More is better: the comparison is ours ÷ theirs, as a ratio.
    More,
    /// Less is better: the comparison is in words (`p50 2.0× faster`).
    Less,
}

/// The stores a row applies to.
#[derive(Debug, Clone, Copy)]
enum Stores {
    /// Every store.
    All,
    /// Memory, whose floor is a mutex lock + unlock: compared as time.
    Memory,
    /// Stores with a server, whose floor is one round trip.
    Servers,
}

impl Stores {
    fn include(self, kind: StoreKind) -> bool {
        match self {
            Stores::All => true,
            Stores::Memory => kind == StoreKind::Memory,
            Stores::Servers => kind != StoreKind::Memory,
        }
    }
}

/// Every row a store's table may have, in order.
fn metrics(floor_label: &str) -> Vec<Metric> {
    use Better::{Less, More};
    use Figure::{Latency, Rate, VsFloor};
    use Workload::{Concurrent, Contended, Floor, Herd, Sequential};
    let row = |label: &str, workload, figure, better, stores| Metric {
        label: label.to_owned(),
        workload,
        figure,
        better,
        stores,
    };
    vec![
        // The floor and the herd are ours only (see `Workload::has_peer`).
        row(
            &format!("floor: {floor_label}"),
            Floor,
            Rate,
            None,
            Stores::All,
        ),
        row("└ latency p50 / p99", Floor, Latency, None, Stores::All),
        row(
            "sequential acquire+release",
            Sequential,
            Rate,
            Some(More),
            Stores::All,
        ),
        row(
            "└ latency p50 / p99",
            Sequential,
            Latency,
            Some(Less),
            Stores::All,
        ),
        // No server: the floor is one mutex lock+unlock, compared as time.
        row(
            "└ time vs floor (acquire+release ÷ lock+unlock)",
            Sequential,
            VsFloor(time_vs_floor),
            None,
            Stores::Memory,
        ),
        row(
            "└ vs floor (ops/s ÷ floor/2)",
            Sequential,
            VsFloor(vs_floor),
            None,
            Stores::Servers,
        ),
        // The same ratio from medians, which one stall of the machine cannot
        // move: 2 × floor p50 ÷ acquire+release p50.
        row(
            "└ vs floor by p50 (2 × floor p50 ÷ p50)",
            Sequential,
            VsFloor(|floor, seq| Some(2.0 * floor.p50_us? / seq.p50_us?)),
            None,
            Stores::Servers,
        ),
        row(
            &format!("{CONCURRENT_TASKS} concurrent acquire+release"),
            Concurrent,
            Rate,
            Some(More),
            Stores::All,
        ),
        row(
            &format!("{CONTENDED_TASKS}-way contended: acquisitions"),
            Contended,
            Rate,
            Some(More),
            Stores::All,
        ),
        row(
            "└ hand-off p50 / p99",
            Contended,
            Latency,
            Some(Less),
            Stores::All,
        ),
        row(
            &format!("{HERD_TASKS} waiting on one key: hand-offs"),
            Herd,
            Rate,
            None,
            Stores::All,
        ),
        row("└ hand-off p50 / p99", Herd, Latency, None, Stores::All),
    ]
}

/// Acquire+release ops/s against two floor round trips: 1.0× would be a
/// perfect client (stores with a server).
fn vs_floor(floor: &Sample, seq: &Sample) -> Option<f64> {
    Some(seq.per_sec() / (floor.per_sec() / 2.0))
}

/// How many times longer an acquire+release takes than the floor's mutex
/// lock+unlock (memory).
fn time_vs_floor(floor: &Sample, seq: &Sample) -> Option<f64> {
    Some(floor.per_sec() / seq.per_sec())
}

impl Figure {
    /// One round's figure from `sample`, `floor` being our floor sample of
    /// the same round.
    fn read(self, sample: &Sample, floor: Option<&Sample>) -> Option<f64> {
        let value = match self {
            Figure::Rate => Some(sample.per_sec()),
            Figure::Latency => sample.p50_us,
            Figure::VsFloor(f) => f(floor?, sample),
        };
        value.filter(|v| v.is_finite())
    }

    fn show(self, value: f64) -> String {
        match self {
            Figure::Rate => fmt_rate(value),
            Figure::Latency => fmt_latency(value),
            Figure::VsFloor(_) => fmt_ratio(value),
        }
    }
}

/// One row's cells for one store.
fn render_row(run: &StoreRun, metric: &Metric) -> String {
    let figure = metric.figure;
    let floors = run.ours(Workload::Floor);
    // Each round's figure, on one side; the peer's ratios to the floor take
    // our floor of the same round (the peer has none).
    let figures = |samples: &[Option<Sample>]| -> Vec<Option<f64>> {
        samples
            .iter()
            .enumerate()
            .map(|(round, sample)| {
                let floor = floors.get(round).and_then(Option::as_ref);
                figure.read(sample.as_ref()?, floor)
            })
            .collect()
    };
    let ours = figures(run.ours(metric.workload));
    let theirs = figures(run.theirs(metric.workload));
    let shown = |values: &[Option<f64>], samples: &[Option<Sample>]| match figure {
        // p50 / p99: the p99 is shown beside the p50, never compared.
        Figure::Latency => {
            let p99 = median(samples.iter().flatten().filter_map(|s| s.p99_us));
            match median(values.iter().flatten().copied()) {
                None => "—".to_owned(),
                Some(p50) => format!("{} / {}", fmt_latency(p50), fmt_opt(p99, fmt_latency)),
            }
        }
        _ => fmt_opt(median(values.iter().flatten().copied()), |v| figure.show(v)),
    };
    let spread = match range(ours.iter().flatten().copied()) {
        Some((lo, hi)) if ours.len() > 1 => format!("{}–{}", figure.show(lo), figure.show(hi)),
        _ => String::new(),
    };
    let compared = metric.better.map(|better| {
        let ratio = median(
            ours.iter()
                .zip(&theirs)
                .filter_map(|(o, t)| Some((*o)? / (*t)?)),
        );
        match better {
            Better::More => fmt_opt(ratio, fmt_ratio),
            Better::Less => fmt_opt(ratio, faster_or_slower),
        }
    });
    let theirs = if metric.workload.has_peer() {
        shown(&theirs, run.theirs(metric.workload))
    } else {
        "—".to_owned()
    };
    let cells = [
        metric.label.clone(),
        shown(&ours, run.ours(metric.workload)),
        spread,
        theirs,
        compared.unwrap_or_default(),
    ];
    let mut line = String::from("|");
    for cell in cells {
        if cell.is_empty() {
            line.push_str(" |");
        } else {
            let _ = write!(line, " {cell} |");
        }
    }
    line
}

/// A store's section: its table, then its notes.
fn render_store(out: &mut String, peer: &str, run: &StoreRun) {
    let _ = writeln!(out, "## {}\n", run.kind);
    if let Some(error) = &run.error {
        let _ = writeln!(
            out,
            "**FAILED** (figures below stop at the failure): {error}\n"
        );
    }
    let _ = writeln!(
        out,
        "| measure | verrou | spread over rounds | {peer} | verrou ÷ {peer} |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for metric in metrics(run.floor_label) {
        if metric.stores.include(run.kind) {
            let _ = writeln!(out, "{}", render_row(run, &metric));
        }
    }
    let _ = writeln!(out);
    for note in &run.notes {
        let _ = writeln!(out, "- {note}");
    }
    if !run.notes.is_empty() {
        let _ = writeln!(out);
    }
}

impl StoreRun {
    fn ours(&self, workload: Workload) -> &[Option<Sample>] {
        self.ours.get(&workload).map_or(&[], Vec::as_slice)
    }

    fn theirs(&self, workload: Workload) -> &[Option<Sample>] {
        self.peer.get(&workload).map_or(&[], Vec::as_slice)
    }

    /// Median over rounds of ours ÷ theirs.
    fn ratio_to_peer(&self, workload: Workload, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        median(per_round(
            self.ours(workload),
            self.theirs(workload),
            |o, t| match (f(o), f(t)) {
                (Some(o), Some(t)) if t > 0.0 => o / t,
                _ => f64::NAN,
            },
        ))
    }
}

/// `f(a, b)` for each round where both sides have a sample.
fn per_round(
    a: &[Option<Sample>],
    b: &[Option<Sample>],
    f: impl Fn(&Sample, &Sample) -> f64,
) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| Some(f(a.as_ref()?, b.as_ref()?)))
        .collect()
}

fn med(samples: &[Option<Sample>], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    median(samples.iter().flatten().filter_map(f))
}

/// A goal from the project brief, checked against this run.
struct Target {
    store: StoreKind,
    what: &'static str,
    goal: Goal,
    measured: Option<f64>,
}

#[derive(Clone, Copy)]
#[allow(clippy::enum_variant_names)] // "at most"/"at least" is the point
enum Goal {
    /// A ratio that must reach the value.
    AtLeastRatio(f64),
    /// A ratio (of times) that must stay at or under the value.
    AtMostRatio(f64),
    /// A latency in microseconds that must stay at or under the value.
    AtMostMicros(f64),
}

impl Target {
    fn row(&self) -> String {
        let (goal, measured) = match self.goal {
            Goal::AtLeastRatio(g) => (format!("≥ {}", fmt_ratio(g)), self.measured.map(fmt_ratio)),
            Goal::AtMostRatio(g) => (format!("≤ {}", fmt_ratio(g)), self.measured.map(fmt_ratio)),
            Goal::AtMostMicros(g) => (
                format!("≤ {}", fmt_latency(g)),
                self.measured.map(fmt_latency),
            ),
        };
        let status = match (self.goal, self.measured) {
            (_, None) => "not measured (see the store's notes)".to_owned(),
            (Goal::AtLeastRatio(g), Some(m)) if m >= g => "**met**".to_owned(),
            (Goal::AtMostRatio(g) | Goal::AtMostMicros(g), Some(m)) if m <= g => {
                "**met**".to_owned()
            }
            (Goal::AtLeastRatio(g), Some(m)) => format!(
                "missed by {:.0}% (short by {})",
                (1.0 - m / g) * 100.0,
                fmt_ratio(g - m)
            ),
            (Goal::AtMostRatio(g), Some(m)) => format!(
                "missed by {:.0}% ({} over)",
                (m / g - 1.0) * 100.0,
                fmt_ratio(m - g)
            ),
            (Goal::AtMostMicros(g), Some(m)) => format!(
                "missed by {:.0}% ({} over)",
                (m / g - 1.0) * 100.0,
                fmt_latency(m - g)
            ),
        };
        format!(
            "| {} | {} | {goal} | {} | {status} |",
            self.store,
            self.what,
            measured.unwrap_or_else(|| "—".into())
        )
    }
}

fn targets(runs: &[StoreRun]) -> Vec<Target> {
    let mut targets = Vec::new();
    let per_sec = |s: &Sample| Some(s.per_sec());
    for run in runs {
        let floor = run.ours(Workload::Floor);
        let seq = run.ours(Workload::Sequential);
        let mut add = |what, goal, measured| {
            targets.push(Target {
                store: run.kind,
                what,
                goal,
                measured,
            });
        };
        let kind = run.kind;
        if matches!(
            kind,
            StoreKind::Redis | StoreKind::Postgres | StoreKind::Mysql
        ) {
            add(
                "sequential acquire+release vs two round trips",
                Goal::AtLeastRatio(0.85),
                median(per_round(floor, seq, |f, s| {
                    vs_floor(f, s).unwrap_or(f64::NAN)
                })),
            );
        }
        if kind == StoreKind::Memory {
            add(
                "uncontended acquire+release time vs tokio Mutex lock+unlock",
                Goal::AtMostRatio(3.0),
                median(per_round(floor, seq, |f, s| {
                    time_vs_floor(f, s).unwrap_or(f64::NAN)
                })),
            );
        }
        match kind {
            StoreKind::Redis => add(
                "64 concurrent vs Node Verrou",
                Goal::AtLeastRatio(2.0),
                run.ratio_to_peer(Workload::Concurrent, per_sec),
            ),
            StoreKind::Postgres => add(
                "64 concurrent vs Node Verrou",
                Goal::AtLeastRatio(5.0),
                run.ratio_to_peer(Workload::Concurrent, per_sec),
            ),
            _ => {}
        }
        if matches!(kind, StoreKind::Memory | StoreKind::Redis) {
            add(
                "16-way hand-off p50",
                Goal::AtMostMicros(2000.0),
                med(run.ours(Workload::Contended), |s| s.p50_us),
            );
            add(
                "16-way acquisitions/s vs Node Verrou",
                Goal::AtLeastRatio(10.0),
                run.ratio_to_peer(Workload::Contended, per_sec),
            );
        }
    }
    targets
}

fn fmt_opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "—".into(), show)
}

/// `12,345/s`.
fn fmt_rate(per_sec: f64) -> String {
    // Rates are positive and far below 2^53.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = per_sec.round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}/s")
}

/// A ratio of p50 latencies (ours ÷ theirs) in words.
fn faster_or_slower(time_ratio: f64) -> String {
    if time_ratio <= 1.0 {
        format!("p50 {} faster", fmt_ratio(1.0 / time_ratio))
    } else {
        format!("p50 {} slower", fmt_ratio(time_ratio))
    }
}

/// `0.85×`, `12×`.
fn fmt_ratio(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{ratio:.0}×")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}×")
    } else {
        format!("{ratio:.2}×")
    }
}

/// Microseconds as `0.12 µs`, `55 µs` or `2.1 ms`.
fn fmt_latency(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 10.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.2} µs")
    }
}

/// `2026-11-23 17:30 UTC`, from the system clock (civil-from-days, proleptic
/// Gregorian), so the report needs no date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567/s");
        assert_eq!(fmt_rate(999.6), "1,000/s");
        assert_eq!(fmt_ratio(0.8512), "0.85×");
        assert_eq!(fmt_latency(2150.0), "2.15 ms");
        assert_eq!(fmt_latency(0.083), "0.08 µs");
    }

    fn sample(ops: u64, secs: f64, latency: Option<(f64, f64)>) -> Option<Sample> {
        Some(Sample {
            ops,
            secs,
            p50_us: latency.map(|(p50, _)| p50),
            p99_us: latency.map(|(_, p99)| p99),
        })
    }

    /// Two rounds of every workload, with the peer's samples where it runs
    /// them (its second contended round failed).
    fn two_rounds(kind: StoreKind, floor_label: &'static str) -> StoreRun {
        let mut run = StoreRun::new(kind, floor_label);
        let ours = [
            (
                Workload::Floor,
                vec![
                    sample(1000, 0.1, Some((80.0, 120.0))),
                    sample(1200, 0.1, Some((70.0, 100.0))),
                ],
            ),
            (
                Workload::Sequential,
                vec![
                    sample(400, 0.1, Some((240.0, 400.0))),
                    sample(500, 0.1, Some((200.0, 300.0))),
                ],
            ),
            (
                Workload::Concurrent,
                vec![sample(3000, 0.1, None), sample(3200, 0.1, None)],
            ),
            (
                Workload::Contended,
                vec![
                    sample(2000, 0.2, Some((90.0, 150.0))),
                    sample(2200, 0.2, Some((80.0, 140.0))),
                ],
            ),
            (
                Workload::Herd,
                vec![
                    sample(800, 0.1, Some((120.0, 400.0))),
                    sample(900, 0.1, Some((110.0, 380.0))),
                ],
            ),
        ];
        let theirs = [
            (
                Workload::Sequential,
                vec![
                    sample(200, 0.1, Some((480.0, 900.0))),
                    sample(250, 0.1, Some((400.0, 800.0))),
                ],
            ),
            (
                Workload::Concurrent,
                vec![sample(1000, 0.1, None), sample(800, 0.1, None)],
            ),
            (
                Workload::Contended,
                vec![sample(10, 0.2, Some((250_000.0, 260_000.0))), None],
            ),
        ];
        run.ours.extend(ours);
        run.peer.extend(theirs);
        run
    }

    fn table(run: &StoreRun) -> Vec<String> {
        let mut out = String::new();
        render_store(&mut out, "Node Verrou 0.5", run);
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_server_store_renders_every_row_from_its_rounds() {
        let run = two_rounds(StoreKind::Redis, "Redis PING");
        let expected = [
            "## redis",
            "",
            "| measure | verrou | spread over rounds | Node Verrou 0.5 | verrou ÷ Node Verrou 0.5 |",
            "|---|---|---|---|---|",
            "| floor: Redis PING | 11,000/s | 10,000/s–12,000/s | — | |",
            "| └ latency p50 / p99 | 75 µs / 110 µs | 70 µs–80 µs | — | |",
            "| sequential acquire+release | 4,500/s | 4,000/s–5,000/s | 2,250/s | 2.00× |",
            "| └ latency p50 / p99 | 220 µs / 350 µs | 200 µs–240 µs | 440 µs / 850 µs | p50 2.00× faster |",
            "| └ vs floor (ops/s ÷ floor/2) | 0.82× | 0.80×–0.83× | 0.41× | |",
            "| └ vs floor by p50 (2 × floor p50 ÷ p50) | 0.68× | 0.67×–0.70× | 0.34× | |",
            "| 64 concurrent acquire+release | 31,000/s | 30,000/s–32,000/s | 9,000/s | 3.50× |",
            "| 16-way contended: acquisitions | 10,500/s | 10,000/s–11,000/s | 50/s | 200× |",
            "| └ hand-off p50 / p99 | 85 µs / 145 µs | 80 µs–90 µs | 250.00 ms / 260.00 ms | p50 2778× faster |",
            "| 1000 waiting on one key: hand-offs | 8,500/s | 8,000/s–9,000/s | — | |",
            "| └ hand-off p50 / p99 | 115 µs / 390 µs | 110 µs–120 µs | — | |",
            "",
        ];
        assert_eq!(table(&run), expected);
    }

    #[test]
    fn memory_compares_its_time_with_the_mutex_floor() {
        let run = two_rounds(StoreKind::Memory, "tokio::sync::Mutex lock+unlock");
        let rows = table(&run);
        // floor ÷ sequential per round: 10,000 ÷ 4,000 and 12,000 ÷ 5,000;
        // the peer's sequential against our floor of the same round.
        assert!(
            rows.contains(
                &"| └ time vs floor (acquire+release ÷ lock+unlock) | 2.45× | 2.40×–2.50× | 4.90× | |"
                    .to_owned()
            ),
            "{rows:#?}"
        );
        assert!(!rows.iter().any(|r| r.contains("floor/2")), "{rows:#?}");
    }

    #[test]
    fn a_failed_store_says_so_and_shows_dashes_for_what_it_did_not_measure() {
        let mut run = StoreRun::new(StoreKind::Postgres, "Postgres SELECT 1");
        run.error = Some("sequential: connection refused".into());
        run.notes.push("peer not run: not requested".into());
        let rows = table(&run);
        assert_eq!(
            rows[2],
            "**FAILED** (figures below stop at the failure): sequential: connection refused"
        );
        assert!(rows.contains(&"| sequential acquire+release | — | | — | — |".to_owned()));
        assert!(rows.contains(&"| └ hand-off p50 / p99 | — | | — | — |".to_owned()));
        assert!(rows.contains(&"- peer not run: not requested".to_owned()));
    }

    #[test]
    fn a_missed_target_says_by_how_much() {
        let target = Target {
            store: StoreKind::Redis,
            what: "x",
            goal: Goal::AtLeastRatio(2.0),
            measured: Some(1.5),
        };
        assert!(target.row().contains("missed by 25%"), "{}", target.row());
        let met = Target {
            measured: Some(2.0),
            ..target
        };
        assert!(met.row().contains("**met**"));
    }
}
