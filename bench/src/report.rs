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

    for run in runs {
        render_store(&mut out, meta, run);
    }
    for skip in skipped {
        let _ = writeln!(out, "## {}\n\nNot run: {}\n", skip.name, skip.reason);
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
        .map(|r| r.name.as_str())
        .chain(skipped.iter().map(|s| s.name.as_str()))
        .collect();
    if names.len() == crate::stores::ALL.len() {
        String::new()
    } else {
        format!(" {}", names.join(" "))
    }
}

fn render_store(out: &mut String, meta: &Meta, run: &StoreRun) {
    let peer = meta.peer_name();
    let _ = writeln!(out, "## {}\n", run.name);
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
    let per_sec = |s: &Sample| Some(s.per_sec());
    let p50 = |s: &Sample| s.p50_us;
    let p99 = |s: &Sample| s.p99_us;

    let mut row = |label: String, workload: Workload, with_peer: bool| {
        let ours = med(run.ours(workload), per_sec);
        let theirs = if with_peer {
            med(run.theirs(workload), per_sec)
        } else {
            None
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} |",
            fmt_opt(ours, fmt_rate),
            spread(run.ours(workload), per_sec, fmt_rate),
            fmt_opt(theirs, fmt_rate),
            fmt_opt(run.ratio_to_peer(workload, per_sec), fmt_ratio)
        );
        let latency = |samples: &[Option<Sample>]| -> Option<String> {
            Some(format!(
                "{} / {}",
                fmt_latency(med(samples, p50)?),
                fmt_latency(med(samples, p99)?)
            ))
        };
        if let Some(ours_latency) = latency(run.ours(workload)) {
            let what = if workload == Workload::Contended {
                "hand-off"
            } else {
                "latency"
            };
            let _ = writeln!(
                out,
                "| └ {what} p50 / p99 | {ours_latency} | | {} | {} |",
                latency(run.theirs(workload)).unwrap_or_else(|| "—".into()),
                fmt_opt(run.ratio_to_peer(workload, p50), faster_or_slower)
            );
        }
    };
    row(
        format!("floor: {}", run.floor_label),
        Workload::Floor,
        false,
    );
    row(
        "sequential acquire+release".into(),
        Workload::Sequential,
        true,
    );
    if run.name == "memory" {
        // No server: the floor is one mutex lock+unlock, compared as time.
        let slowdown = |samples: &[Option<Sample>]| {
            per_round(run.ours(Workload::Floor), samples, |floor, seq| {
                floor.per_sec() / seq.per_sec()
            })
        };
        let _ = writeln!(
            out,
            "| └ time vs floor (acquire+release ÷ lock+unlock) | {} | {} | {} | |",
            fmt_opt(median(slowdown(run.ours(Workload::Sequential))), fmt_ratio),
            fmt_opt(range(slowdown(run.ours(Workload::Sequential))), fmt_range),
            fmt_opt(
                median(slowdown(run.theirs(Workload::Sequential))),
                fmt_ratio
            ),
        );
    } else {
        let vs_floor = |samples: &[Option<Sample>]| {
            per_round(run.ours(Workload::Floor), samples, |floor, seq| {
                seq.per_sec() / (floor.per_sec() / 2.0)
            })
        };
        let _ = writeln!(
            out,
            "| └ vs floor (ops/s ÷ floor/2) | {} | {} | {} | |",
            fmt_opt(median(vs_floor(run.ours(Workload::Sequential))), fmt_ratio),
            fmt_opt(range(vs_floor(run.ours(Workload::Sequential))), fmt_range),
            fmt_opt(
                median(vs_floor(run.theirs(Workload::Sequential))),
                fmt_ratio
            ),
        );
        // The same ratio from medians, which one stall of the machine cannot
        // move: 2 × floor p50 ÷ acquire+release p50.
        let vs_floor_p50 = |samples: &[Option<Sample>]| {
            per_round(run.ours(Workload::Floor), samples, |floor, seq| {
                match (floor.p50_us, seq.p50_us) {
                    (Some(f), Some(s)) if s > 0.0 => 2.0 * f / s,
                    _ => f64::NAN,
                }
            })
        };
        let _ = writeln!(
            out,
            "| └ vs floor by p50 (2 × floor p50 ÷ p50) | {} | {} | {} | |",
            fmt_opt(
                median(vs_floor_p50(run.ours(Workload::Sequential))),
                fmt_ratio
            ),
            fmt_opt(
                range(vs_floor_p50(run.ours(Workload::Sequential))),
                fmt_range
            ),
            fmt_opt(
                median(vs_floor_p50(run.theirs(Workload::Sequential))),
                fmt_ratio
            ),
        );
    }
    let mut row = |label: String, workload: Workload| {
        let ours = med(run.ours(workload), per_sec);
        let theirs = med(run.theirs(workload), per_sec);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} |",
            fmt_opt(ours, fmt_rate),
            spread(run.ours(workload), per_sec, fmt_rate),
            fmt_opt(theirs, fmt_rate),
            fmt_opt(run.ratio_to_peer(workload, per_sec), fmt_ratio)
        );
    };
    row(
        format!("{CONCURRENT_TASKS} concurrent acquire+release"),
        Workload::Concurrent,
    );
    row(
        format!("{CONTENDED_TASKS}-way contended: acquisitions"),
        Workload::Contended,
    );
    let ours = med(run.ours(Workload::Contended), p50);
    let theirs = med(run.theirs(Workload::Contended), p50);
    let _ = writeln!(
        out,
        "| └ hand-off p50 / p99 | {} / {} | {} | {} / {} | {} |",
        fmt_opt(ours, fmt_latency),
        fmt_opt(med(run.ours(Workload::Contended), p99), fmt_latency),
        spread(run.ours(Workload::Contended), p50, fmt_latency),
        fmt_opt(theirs, fmt_latency),
        fmt_opt(med(run.theirs(Workload::Contended), p99), fmt_latency),
        fmt_opt(
            run.ratio_to_peer(Workload::Contended, p50),
            faster_or_slower
        )
    );
    // Ours only (see `Workload::has_peer`).
    let _ = writeln!(
        out,
        "| {HERD_TASKS} waiting on one key: hand-offs | {} | {} | — | |",
        fmt_opt(med(run.ours(Workload::Herd), per_sec), fmt_rate),
        spread(run.ours(Workload::Herd), per_sec, fmt_rate),
    );
    let _ = writeln!(
        out,
        "| └ hand-off p50 / p99 | {} / {} | {} | — | |",
        fmt_opt(med(run.ours(Workload::Herd), p50), fmt_latency),
        fmt_opt(med(run.ours(Workload::Herd), p99), fmt_latency),
        spread(run.ours(Workload::Herd), p50, fmt_latency),
    );
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

fn spread(
    samples: &[Option<Sample>],
    f: impl Fn(&Sample) -> Option<f64>,
    show: fn(f64) -> String,
) -> String {
    match range(samples.iter().flatten().filter_map(f)) {
        Some((lo, hi)) if samples.len() > 1 => format!("{}–{}", show(lo), show(hi)),
        _ => String::new(),
    }
}

/// A goal from the project brief, checked against this run.
struct Target {
    store: String,
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
                store: run.name.clone(),
                what,
                goal,
                measured,
            });
        };
        let name = run.name.as_str();
        if matches!(name, "redis" | "postgres" | "mysql") {
            add(
                "sequential acquire+release vs two round trips",
                Goal::AtLeastRatio(0.85),
                median(per_round(floor, seq, |f, s| {
                    s.per_sec() / (f.per_sec() / 2.0)
                })),
            );
        }
        if name == "memory" {
            add(
                "uncontended acquire+release time vs tokio Mutex lock+unlock",
                Goal::AtMostRatio(3.0),
                median(per_round(floor, seq, |f, s| f.per_sec() / s.per_sec())),
            );
        }
        match name {
            "redis" => add(
                "64 concurrent vs Node Verrou",
                Goal::AtLeastRatio(2.0),
                run.ratio_to_peer(Workload::Concurrent, per_sec),
            ),
            "postgres" => add(
                "64 concurrent vs Node Verrou",
                Goal::AtLeastRatio(5.0),
                run.ratio_to_peer(Workload::Concurrent, per_sec),
            ),
            _ => {}
        }
        if matches!(name, "memory" | "redis") {
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
        if i > 0 && (digits.len() - i) % 3 == 0 {
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

fn fmt_range((lo, hi): (f64, f64)) -> String {
    format!("{}–{}", fmt_ratio(lo), fmt_ratio(hi))
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

    #[test]
    fn a_missed_target_says_by_how_much() {
        let target = Target {
            store: "redis".into(),
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
