//! The markdown report: the targets and whether each was met, then per-store
//! tables (with their charts), bytes per held lock, and how it is measured.
//! Every figure is a median over rounds; every ratio is the median of the
//! per-round ratios (our floors, ours and the peer's ran back to back in each
//! round, so a ratio is taken between runs that saw the same machine).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::charts::Chart;
use crate::sample::{Sample, Workload};
use crate::stats::{median, range};
use crate::stores::{POOL, SQL_DEFAULT_POOL_TASKS};
use crate::workloads::{CONCURRENT_TASKS, CONTENDED_TASKS, HANDOFF_GATHER, HANDOFF_TASKS, HOLD};
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

/// The whole report; `charts` are the SVG files written beside it.
pub fn render(meta: &Meta, runs: &[StoreRun], skipped: &[Skipped], charts: &[Chart]) -> String {
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
    let _ = writeln!(
        out,
        "Every ratio is against the store's own work done bare (the same-work floor) where the store has one; see \"How it is measured\".\n"
    );
    let _ = writeln!(out, "| store | target | goal | measured | status |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for target in targets(runs) {
        let _ = writeln!(out, "{}", target.row());
    }
    let _ = writeln!(out);

    let peer = meta.peer_name();
    for run in runs {
        render_store(&mut out, &peer, run, charts);
    }
    for skip in skipped {
        let _ = writeln!(out, "## {}\n\nNot run: {}\n", skip.kind, skip.reason);
    }
    render_footprints(&mut out, runs);
    if let Some(chart) = charts.iter().find(|c| c.store.is_none()) {
        let _ = writeln!(out, "## Hand-off latency\n");
        let _ = writeln!(out, "![{}]({})\n", chart.title, chart.file);
    }
    let _ = writeln!(out, "## How it is measured\n");
    let _ = writeln!(
        out,
        "- **same-work floor**: the store's own acquire and release sent bare on the store's driver, with the store's settings, on fresh keys: what an acquire + release costs with no verrou code around it. Redis, Valkey, Redis Cluster: the store's scripts (`verrou_redis::scripts::ACQUIRE`, `RELEASE`) by `EVALSHA` on fred, with the store's client, per-command options (one send, 5 s timeout), key names and arguments. PostgreSQL and MariaDB: the store's `statements()` `acquire` then `release`, each on a connection checked out of the store's own pool (its TLS and session settings) as the store does, prepared once per connection (tokio-postgres `prepare_cached`; mysql_async's statement cache), with the store's parameters; without the store's timeouts and background prune. Run **1 task** back to back on the store's connection or pool (compared with `sequential`), **{CONCURRENT_TASKS} tasks** on it (as `concurrent`), and at a third concurrency: Redis **server-bound**, on connections of its own with many in flight each (fred pipelines them), the most the server gives; SQL **{SQL_DEFAULT_POOL_TASKS} tasks** on the store's pool (verrou's default pool size; the bench's pool has {POOL} connections, as many as the peer's knex pool, so they never wait for one), not pipelined. `sequential ÷ floor` and `concurrent ÷ best floor` are the share of the physical floor verrou reaches; 1.0× would be a client that costs nothing. DynamoDB: the store's own conditional `UpdateItem`s (`acquire_request`, `release_request`: its expressions, return values and retries off) sent bare on its SDK client, on the common path (a free key, no takeover), without the store's timeout; 1 task and {CONCURRENT_TASKS} tasks only (no third floor).\n\
         - **fred vs redis-rs** (single Redis and Valkey servers, not Redis Cluster): the Redis floor's very `EVALSHA`s (scripts, keys, arguments, reply checks) also sent on one multiplexed connection of the `redis` crate (redis-rs, 5 s response timeout, no resend), 1 task and {CONCURRENT_TASKS} tasks, each right after fred's in the same round. Whether the driver costs anything; reported, not a target, and not a floor any target divides by.\n\
         - **round-trip reference**: the store's cheapest request on the store's own client (`PING`; `SELECT 1`, prepared, on a connection kept from the store's pool; a strongly consistent `GetItem`), back to back on one task. A reference line, not a target; for stores without a same-work floor the report also shows acquire+release ops/s against half the round trips/s (an acquire + release is two round trips at least). Memory has no server: its floor is an uncontended `tokio::sync::Mutex` lock + unlock, compared as time.\n\
         - **sequential**: one task; each iteration creates a lock handle on a fresh key (not timed) and times `acquire()` + `release()`. ops/s = operations ÷ summed operation time.\n\
         - **concurrent**: {CONCURRENT_TASKS} tasks on distinct keys sharing one store (one client/pool), lock creation included; ops/s over wall time.\n\
         - **contended**: {CONTENDED_TASKS} tasks take turns on one key, each holding it {} ms; a task re-queues only after another has taken the lock, so each acquisition is a hand-off to a different task. Hand-off = from the holder calling `release()` to the next holder's `acquire()` returning. verrou uses `RetryPolicy` delay 1 ms, exponential to 10 ms (memory, Redis and PostgreSQL wake waiters on release; MariaDB, SQLite and DynamoDB poll); Node Verrou uses its default retry (poll every 250 ms).\n\
         - **hand-off**: {HANDOFF_TASKS} tasks wait on one key with the default retry (verrou: `RetryPolicy::default()` without timeout, woken on release where the store announces releases; Node Verrou: its default poll every 250 ms). Each holder takes the lock, holds it for no time (a yield) and releases it, then queues again once another task has taken it, so about {} tasks wait all the time. Hand-offs per second over the window after the waiters have gathered ({} ms, a gate holding the key), and the hand-off latency as above, whose distribution the chart shows.\n\
         - **Node Verrou on Redis** does less server work than verrou: its acquire is a plain `SET NX PX` (no fencing token, no counter, no `TIME`) and its release an `EVAL` of `GET` + `DEL` without `PUBLISH`; its waiters poll every 250 ms.\n\
         - **bytes per held lock**: {} live locks taken with `LockStore::acquire` (one-hour TTL). Memory: resident-set growth of a fresh process; Redis: server `used_memory` growth, keys deleted afterwards. Reported, not a target; full runs only (`--no-footprint` skips it).\n\
         - Keys are fresh per run and round; TTL 30 s, never reached. On a single Redis server the run's keys (and fencing counters) are deleted at the end; on PostgreSQL and MariaDB the store's prune statement then deletes the free rows in batches (those released in the last second stay until a later prune).",
        HOLD.as_millis(),
        HANDOFF_TASKS - 1,
        HANDOFF_GATHER.as_millis(),
        fmt_count(s.footprint_locks.unwrap_or(crate::footprint::LOCKS)),
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
    /// A ratio, as `0.85×`, of the side's sample to our `Base` sample of
    /// the same round: `f(base, sample)`.
    Vs(Base, fn(&Sample, &Sample) -> Option<f64>),
}

/// What a ratio row divides by: one of our samples of the same round.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// Our sample of this workload.
    Of(Workload),
    /// The fastest of our same-work floors (any concurrency).
    BestFloor,
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
    /// Stores with a same-work floor.
    SameWork,
    /// Stores with a server but no same-work floor yet.
    RoundTripOnly,
}

impl Stores {
    fn include(self, run: &StoreRun) -> bool {
        let memory = run.kind == StoreKind::Memory;
        match self {
            Stores::All => true,
            Stores::Memory => memory,
            Stores::SameWork => run.same_work.is_some(),
            Stores::RoundTripOnly => !memory && run.same_work.is_none(),
        }
    }
}

/// Every row a store's table may have, in order.
fn metrics(run: &StoreRun) -> Vec<Metric> {
    use Better::{Less, More};
    use Figure::{Latency, Rate, Vs};
    use Workload::{
        Concurrent, Contended, FloorConcurrent, FloorSequential, FloorServerBound, Handoff,
        RoundTrip, Sequential,
    };
    let row = |label: &str, workload, figure, better, stores| Metric {
        label: label.to_owned(),
        workload,
        figure,
        better,
        stores,
    };
    let (same_work, shared, third) = run.same_work.as_ref().map_or(("", "", None), |f| {
        (f.what.as_str(), f.shared.as_str(), f.third.as_deref())
    });
    let round_trip = if run.kind == StoreKind::Memory {
        format!("floor: {}", run.round_trip_label)
    } else {
        format!("round-trip reference: {}", run.round_trip_label)
    };
    let mut rows = vec![
        // The floors and the round trip are ours only (see `Workload::has_peer`).
        row(&round_trip, RoundTrip, Rate, None, Stores::All),
        row("└ latency p50 / p99", RoundTrip, Latency, None, Stores::All),
        row(
            &format!("same-work floor, 1 task: {same_work}"),
            FloorSequential,
            Rate,
            None,
            Stores::SameWork,
        ),
        row(
            "└ latency p50 / p99",
            FloorSequential,
            Latency,
            None,
            Stores::SameWork,
        ),
        row(
            &format!("same-work floor, {CONCURRENT_TASKS} tasks on {shared}"),
            FloorConcurrent,
            Rate,
            None,
            Stores::SameWork,
        ),
        row(
            &format!("same-work floor, {}", third.unwrap_or_default()),
            FloorServerBound,
            Rate,
            None,
            Stores::SameWork,
        ),
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
            Vs(Base::Of(RoundTrip), time_vs_floor),
            None,
            Stores::Memory,
        ),
        row(
            "└ vs same-work floor (ops/s ÷ floor ops/s, 1 task)",
            Sequential,
            Vs(Base::Of(FloorSequential), rate_ratio),
            None,
            Stores::SameWork,
        ),
        // The same ratio from medians, which one stall of the machine cannot
        // move: floor p50 ÷ acquire+release p50.
        row(
            "└ vs same-work floor by p50 (floor p50 ÷ p50)",
            Sequential,
            Vs(Base::Of(FloorSequential), |floor, seq| {
                Some(floor.p50_us? / seq.p50_us?)
            }),
            None,
            Stores::SameWork,
        ),
        row(
            "└ vs round trips (ops/s ÷ round trips/s ÷ 2), reference",
            Sequential,
            Vs(Base::Of(RoundTrip), vs_round_trips),
            None,
            Stores::RoundTripOnly,
        ),
        row(
            &format!("{CONCURRENT_TASKS} concurrent acquire+release"),
            Concurrent,
            Rate,
            Some(More),
            Stores::All,
        ),
        row(
            "└ vs best same-work floor (any concurrency)",
            Concurrent,
            Vs(Base::BestFloor, rate_ratio),
            None,
            Stores::SameWork,
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
            &format!("hand-off, {HANDOFF_TASKS} waiting on one key: hand-offs"),
            Handoff,
            Rate,
            Some(More),
            Stores::All,
        ),
        row(
            "└ hand-off p50 / p99",
            Handoff,
            Latency,
            Some(Less),
            Stores::All,
        ),
    ];
    // A store with floors but no third one (DynamoDB) has no such row.
    if third.is_none() {
        rows.retain(|m| m.workload != FloorServerBound);
    }
    rows
}

/// ops/s ÷ the base's ops/s.
fn rate_ratio(base: &Sample, sample: &Sample) -> Option<f64> {
    Some(sample.per_sec() / base.per_sec())
}

/// Acquire+release ops/s against two round trips: 1.0× would be a perfect
/// client (stores with a server but no same-work floor; a reference).
fn vs_round_trips(round_trip: &Sample, seq: &Sample) -> Option<f64> {
    Some(seq.per_sec() / (round_trip.per_sec() / 2.0))
}

/// How many times longer an acquire+release takes than the floor's mutex
/// lock+unlock (memory).
fn time_vs_floor(floor: &Sample, seq: &Sample) -> Option<f64> {
    Some(floor.per_sec() / seq.per_sec())
}

impl Figure {
    /// One round's figure from `sample`, `base` being our base sample of
    /// the same round.
    fn read(self, sample: &Sample, base: Option<&Sample>) -> Option<f64> {
        let value = match self {
            Figure::Rate => Some(sample.per_sec()),
            Figure::Latency => sample.p50_us,
            Figure::Vs(_, f) => f(base?, sample),
        };
        value.filter(|v| v.is_finite())
    }

    fn show(self, value: f64) -> String {
        match self {
            Figure::Rate => fmt_rate(value),
            Figure::Latency => fmt_latency(value),
            Figure::Vs(..) => fmt_ratio(value),
        }
    }
}

/// One row's cells for one store.
fn render_row(run: &StoreRun, metric: &Metric) -> String {
    let figure = metric.figure;
    // Each round's figure, on one side; the peer's ratios take our base of
    // the same round (the peer has no floor).
    let figures = |samples: &[Option<Sample>]| -> Vec<Option<f64>> {
        samples
            .iter()
            .enumerate()
            .map(|(round, sample)| {
                let base = match figure {
                    Figure::Vs(base, _) => run.base(base, round),
                    _ => None,
                };
                figure.read(sample.as_ref()?, base)
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
    let theirs = if run.peer_na.contains_key(&metric.workload) {
        "n/a".to_owned()
    } else if metric.workload.has_peer() {
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

/// A store's section: its chart, its table, then its notes.
fn render_store(out: &mut String, peer: &str, run: &StoreRun, charts: &[Chart]) {
    let _ = writeln!(out, "## {}\n", run.kind);
    if let Some(error) = &run.error {
        let _ = writeln!(
            out,
            "**FAILED** (figures below stop at the failure): {error}\n"
        );
    }
    if let Some(chart) = charts.iter().find(|c| c.store == Some(run.kind)) {
        let _ = writeln!(out, "![{}]({})\n", chart.title, chart.file);
    }
    let _ = writeln!(
        out,
        "| measure | verrou | spread over rounds | {peer} | verrou ÷ {peer} |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for metric in metrics(run) {
        if metric.stores.include(run) {
            let _ = writeln!(out, "{}", render_row(run, &metric));
        }
    }
    let _ = writeln!(out);
    if run.same_work.as_ref().is_some_and(|f| f.driver_comparison) {
        render_driver_comparison(out, run);
    }
    for note in &run.notes {
        let _ = writeln!(out, "- {note}");
    }
    if !run.notes.is_empty() {
        let _ = writeln!(out);
    }
}

/// One row of the table of fred against redis-rs: the same figure read from
/// each driver's workload of the same round.
struct DriverRow {
    label: String,
    fred: Workload,
    redis_rs: Workload,
    /// [`Figure::Rate`], or [`Figure::Latency`] (its p50 only).
    figure: Figure,
}

/// The rows of the table of fred against redis-rs, in order.
fn driver_rows() -> [DriverRow; 2] {
    [
        DriverRow {
            label: "1 task: p50 per acquire + release".into(),
            fred: Workload::FloorSequential,
            redis_rs: Workload::FloorSequentialRedisRs,
            figure: Figure::Latency,
        },
        DriverRow {
            label: format!("{CONCURRENT_TASKS} tasks: acquire + release pairs/s"),
            fred: Workload::FloorConcurrent,
            redis_rs: Workload::FloorConcurrentRedisRs,
            figure: Figure::Rate,
        },
    ]
}

/// The same scripts on fred (the store's client) and on one redis-rs
/// multiplexed connection: each driver's median over rounds, and the median
/// of the per-round ratios redis-rs ÷ fred. Reported, not a target.
fn render_driver_comparison(out: &mut String, run: &StoreRun) {
    let _ = writeln!(
        out,
        "Same scripts, fred vs redis-rs (reported, not a target):\n"
    );
    let _ = writeln!(out, "| same EVALSHAs | fred | redis-rs | redis-rs ÷ fred |");
    let _ = writeln!(out, "|---|---|---|---|");
    for row in driver_rows() {
        let figure = row.figure;
        let values = |w: Workload| -> Vec<Option<f64>> {
            run.ours(w)
                .iter()
                .map(|s| figure.read(s.as_ref()?, None))
                .collect()
        };
        let (fred, redis_rs) = (values(row.fred), values(row.redis_rs));
        let show = |values: &[Option<f64>]| {
            fmt_opt(median(values.iter().flatten().copied()), |v| figure.show(v))
        };
        let ratio = median(
            fred.iter()
                .zip(&redis_rs)
                .filter_map(|(f, r)| Some((*r)? / (*f)?)),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.label,
            show(&fred),
            show(&redis_rs),
            fmt_opt(ratio, fmt_ratio)
        );
    }
    let _ = writeln!(
        out,
        "\nA p50 ratio above 1.00× means redis-rs took longer; a pairs/s ratio above 1.00× means it did more.\n"
    );
}

/// The bytes-per-held-lock table, when any store measured it.
fn render_footprints(out: &mut String, runs: &[StoreRun]) {
    let measured: Vec<_> = runs
        .iter()
        .filter_map(|run| Some((run.kind, run.footprint.as_ref()?)))
        .collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Bytes per held lock\n");
    let _ = writeln!(
        out,
        "| store | live locks | bytes per held lock | measured as | taking them took |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (kind, footprint) in measured {
        let _ = match footprint {
            Ok(f) => writeln!(
                out,
                "| {kind} | {} | {:.0} B | {} | {:.1} s |",
                fmt_count(f.locks),
                f.per_lock(),
                f.how,
                f.secs
            ),
            Err(e) => writeln!(out, "| {kind} | — | — | failed: {e} | |"),
        };
    }
    let _ = writeln!(out);
}

impl StoreRun {
    fn ours(&self, workload: Workload) -> &[Option<Sample>] {
        self.ours.get(&workload).map_or(&[], Vec::as_slice)
    }

    fn theirs(&self, workload: Workload) -> &[Option<Sample>] {
        self.peer.get(&workload).map_or(&[], Vec::as_slice)
    }

    /// Our `base` sample of round `round`.
    fn base(&self, base: Base, round: usize) -> Option<&Sample> {
        match base {
            Base::Of(workload) => self.ours(workload).get(round)?.as_ref(),
            Base::BestFloor => Workload::FLOORS
                .iter()
                .filter_map(|&w| self.ours(w).get(round)?.as_ref())
                .max_by(|a, b| a.per_sec().total_cmp(&b.per_sec())),
        }
    }

    /// Median over rounds of `f(sample, base)` for our samples of `workload`.
    fn ratio_to_base(
        &self,
        workload: Workload,
        base: Base,
        f: fn(&Sample, &Sample) -> Option<f64>,
    ) -> Option<f64> {
        median(
            self.ours(workload)
                .iter()
                .enumerate()
                .filter_map(|(round, sample)| f(self.base(base, round)?, sample.as_ref()?)),
        )
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

    fn peer_ran(&self, workload: Workload) -> bool {
        self.theirs(workload).iter().any(Option::is_some)
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

/// A goal, checked against this run.
struct Target {
    store: StoreKind,
    what: String,
    goal: Goal,
    measured: Measured,
    /// The known cause when it is missed, said after how much.
    cause: Option<&'static str>,
}

/// The known causes of missed targets, one short text per kind of target;
/// bench/README.md "Profiles" has what was measured.
mod cause {
    /// Ours ÷ a same-work floor: the same server work, so what is missing
    /// is client time.
    pub const SAME_WORK: &str =
        "client CPU per call, on cores shared with the server; see bench/README.md#profiles";
    /// Memory ÷ a tokio mutex.
    pub const MEMORY: &str = "clock reads and boxed trait futures; see bench/README.md#profiles";
    /// Redis, 64 tasks ÷ Node's Verrou.
    pub const REDIS_VS_NODE: &str = "Node's scripts do less server work (no fencing counter, no PUBLISH), and fred costs ~10% over redis-rs; see bench/README.md#profiles";
    /// PostgreSQL, 64 tasks ÷ Node's Verrou (an earlier target).
    pub const POSTGRES_VS_NODE: &str = "both wait on the same two durable commits per acquire+release, so neither can be 5× the other; see bench/README.md#profiles";
    /// Hand-offs ÷ memory's.
    pub const HANDOFF: &str =
        "a hand-off is release + wake-up + acquire in series; see bench/README.md#profiles";
}

/// What a target's row shows in its last two columns.
enum Measured {
    /// The figure, judged against the goal.
    Value(f64),
    /// Not measured, and why.
    Not(String),
}

impl Measured {
    fn or(value: Option<f64>, why: &str) -> Measured {
        value.map_or_else(|| Measured::Not(why.to_owned()), Measured::Value)
    }
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
    /// Bytes, reported only.
    Reported,
}

impl Target {
    fn row(&self) -> String {
        let show = |v: f64| match self.goal {
            Goal::AtLeastRatio(_) | Goal::AtMostRatio(_) => fmt_ratio(v),
            Goal::AtMostMicros(_) => fmt_latency(v),
            Goal::Reported => format!("{v:.0} B"),
        };
        let goal = match self.goal {
            Goal::AtLeastRatio(g) => format!("≥ {}", fmt_ratio(g)),
            Goal::AtMostRatio(g) => format!("≤ {}", fmt_ratio(g)),
            Goal::AtMostMicros(g) => format!("≤ {}", fmt_latency(g)),
            Goal::Reported => "— (reported, not a target)".to_owned(),
        };
        let (measured, status) = match &self.measured {
            Measured::Not(why) => ("—".to_owned(), format!("not measured: {why}")),
            Measured::Value(m) => {
                let status = status(self.goal, *m);
                match self.cause {
                    Some(cause) if status.starts_with("missed") => {
                        (show(*m), format!("{status}: {cause}"))
                    }
                    _ => (show(*m), status),
                }
            }
        };
        format!(
            "| {} | {} | {goal} | {measured} | {status} |",
            self.store, self.what
        )
    }
}

/// "met", or by how much the goal was missed.
fn status(goal: Goal, m: f64) -> String {
    match goal {
        Goal::Reported => "reported".to_owned(),
        Goal::AtLeastRatio(g) if m >= g => "**met**".to_owned(),
        Goal::AtMostRatio(g) | Goal::AtMostMicros(g) if m <= g => "**met**".to_owned(),
        Goal::AtLeastRatio(g) => format!(
            "missed by {:.0}% (short by {})",
            (1.0 - m / g) * 100.0,
            fmt_ratio(g - m)
        ),
        Goal::AtMostRatio(g) => format!(
            "missed by {:.0}% ({} over)",
            (m / g - 1.0) * 100.0,
            fmt_ratio(m - g)
        ),
        Goal::AtMostMicros(g) => format!(
            "missed by {:.0}% ({} over)",
            (m / g - 1.0) * 100.0,
            fmt_latency(m - g)
        ),
    }
}

fn targets(runs: &[StoreRun]) -> Vec<Target> {
    let mut targets = Vec::new();
    let per_sec = |s: &Sample| Some(s.per_sec());
    let memory_handoffs = runs
        .iter()
        .find(|r| r.kind == StoreKind::Memory)
        .and_then(|r| med(r.ours(Workload::Handoff), per_sec));
    for run in runs {
        let kind = run.kind;
        let mut add = |what: &str, goal, measured, cause| {
            targets.push(Target {
                store: kind,
                what: what.to_owned(),
                goal,
                measured,
                cause,
            });
        };
        let failed = if run.error.is_some() {
            "the store's run failed"
        } else {
            "no samples"
        };
        let peer_why = if run.error.is_some() {
            "the store's run failed"
        } else {
            "Node's Verrou did not run"
        };
        if run.same_work.is_some() {
            add(
                "sequential acquire+release ÷ same-work floor (1 task)",
                Goal::AtLeastRatio(0.90),
                Measured::or(
                    run.ratio_to_base(
                        Workload::Sequential,
                        Base::Of(Workload::FloorSequential),
                        rate_ratio,
                    ),
                    failed,
                ),
                Some(cause::SAME_WORK),
            );
            add(
                "64 tasks ÷ best same-work floor at any concurrency",
                Goal::AtLeastRatio(0.90),
                Measured::or(
                    run.ratio_to_base(Workload::Concurrent, Base::BestFloor, rate_ratio),
                    failed,
                ),
                Some(cause::SAME_WORK),
            );
        } else if kind != StoreKind::Memory {
            let why = "no same-work floor for this store yet (round trip is a reference only)";
            add(
                "sequential acquire+release ÷ same-work floor (1 task)",
                Goal::AtLeastRatio(0.90),
                Measured::Not(why.to_owned()),
                None,
            );
            add(
                "64 tasks ÷ best same-work floor at any concurrency",
                Goal::AtLeastRatio(0.90),
                Measured::Not(why.to_owned()),
                None,
            );
        }
        if kind == StoreKind::Memory {
            add(
                "acquire+release time ÷ tokio Mutex lock+unlock",
                Goal::AtMostRatio(3.0),
                Measured::or(
                    run.ratio_to_base(
                        Workload::Sequential,
                        Base::Of(Workload::RoundTrip),
                        time_vs_floor,
                    ),
                    failed,
                ),
                Some(cause::MEMORY),
            );
        }
        if kind == StoreKind::Redis {
            add(
                "64 tasks ÷ Node Verrou 64 tasks",
                Goal::AtLeastRatio(1.5),
                Measured::or(run.ratio_to_peer(Workload::Concurrent, per_sec), peer_why),
                Some(cause::REDIS_VS_NODE),
            );
        }
        if matches!(kind, StoreKind::Redis | StoreKind::Postgres) {
            let ours = med(run.ours(Workload::Handoff), per_sec);
            let measured = match (ours, memory_handoffs) {
                (Some(ours), Some(memory)) if memory > 0.0 => Measured::Value(ours / memory),
                (None, _) => Measured::Not(failed.to_owned()),
                _ => Measured::Not("memory was not run".to_owned()),
            };
            add(
                "hand-offs/s with 1000 waiters ÷ memory's (≥ memory ÷ 10)",
                Goal::AtLeastRatio(0.10),
                measured,
                Some(cause::HANDOFF),
            );
        }
        // Earlier targets, kept while they still say something.
        if kind == StoreKind::Postgres && run.peer_ran(Workload::Concurrent) {
            add(
                "64 tasks ÷ Node Verrou 64 tasks",
                Goal::AtLeastRatio(5.0),
                Measured::or(run.ratio_to_peer(Workload::Concurrent, per_sec), peer_why),
                Some(cause::POSTGRES_VS_NODE),
            );
        }
        if matches!(kind, StoreKind::Memory | StoreKind::Redis) {
            add(
                "16-way hand-off p50",
                Goal::AtMostMicros(2000.0),
                Measured::or(med(run.ours(Workload::Contended), |s| s.p50_us), failed),
                None,
            );
            if run.peer_ran(Workload::Contended) {
                add(
                    "16-way acquisitions/s ÷ Node Verrou",
                    Goal::AtLeastRatio(10.0),
                    Measured::or(run.ratio_to_peer(Workload::Contended, per_sec), peer_why),
                    None,
                );
            }
        }
        if let Some(footprint) = &run.footprint {
            let what = footprint.as_ref().map_or_else(
                |_| "bytes per held lock".to_owned(),
                |f| format!("bytes per held lock, {} live locks", fmt_count(f.locks)),
            );
            add(
                &what,
                Goal::Reported,
                match footprint {
                    Ok(f) => Measured::Value(f.per_lock()),
                    Err(e) => Measured::Not(format!("failed: {e}")),
                },
                None,
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
    format!("{}/s", fmt_count(whole))
}

/// `1,000,000`.
fn fmt_count(whole: u64) -> String {
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
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
        assert_eq!(fmt_count(1_000_000), "1,000,000");
        assert_eq!(fmt_ratio(0.8512), "0.85×");
        assert_eq!(fmt_latency(2150.0), "2.15 ms");
        assert_eq!(fmt_latency(0.083), "0.08 µs");
    }

    fn sample(ops: u64, secs: f64, latency: Option<(f64, f64)>) -> Option<Sample> {
        Some(Sample {
            p50_us: latency.map(|(p50, _)| p50),
            p99_us: latency.map(|(_, p99)| p99),
            ..Sample::rate(ops, secs)
        })
    }

    /// Two rounds of every workload, with the peer's samples where it runs
    /// them (its second contended round failed); the same-work floors when
    /// `floors`.
    fn two_rounds(kind: StoreKind, round_trip_label: &'static str, floors: bool) -> StoreRun {
        let mut run = StoreRun::new(kind, round_trip_label);
        let mut ours = vec![
            (
                Workload::RoundTrip,
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
                Workload::Handoff,
                vec![
                    sample(800, 0.1, Some((120.0, 400.0))),
                    sample(900, 0.1, Some((110.0, 380.0))),
                ],
            ),
        ];
        if floors {
            run.same_work = Some(crate::FloorLabels {
                what: "Redis acquire + release scripts".into(),
                shared: "the store's connection".into(),
                third: Some("server-bound (4 connections × 32 in flight)".into()),
                driver_comparison: false,
            });
            ours.extend([
                (
                    Workload::FloorSequential,
                    vec![
                        sample(500, 0.1, Some((190.0, 300.0))),
                        sample(500, 0.1, Some((180.0, 260.0))),
                    ],
                ),
                (
                    Workload::FloorConcurrent,
                    vec![sample(3000, 0.1, None), sample(4000, 0.1, None)],
                ),
                (
                    Workload::FloorServerBound,
                    vec![sample(5000, 0.1, None), sample(3500, 0.1, None)],
                ),
            ]);
        }
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
            (
                Workload::Handoff,
                vec![sample(1, 0.1, Some((200_000.0, 250_000.0))), None],
            ),
        ];
        run.ours.extend(ours);
        run.peer.extend(theirs);
        run
    }

    fn table(run: &StoreRun) -> Vec<String> {
        let mut out = String::new();
        render_store(&mut out, "Node Verrou 0.5", run, &[]);
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_store_with_a_same_work_floor_renders_every_row_from_its_rounds() {
        let run = two_rounds(StoreKind::Redis, "Redis PING", true);
        let expected = [
            "## redis",
            "",
            "| measure | verrou | spread over rounds | Node Verrou 0.5 | verrou ÷ Node Verrou 0.5 |",
            "|---|---|---|---|---|",
            "| round-trip reference: Redis PING | 11,000/s | 10,000/s–12,000/s | — | |",
            "| └ latency p50 / p99 | 75 µs / 110 µs | 70 µs–80 µs | — | |",
            "| same-work floor, 1 task: Redis acquire + release scripts | 5,000/s | 5,000/s–5,000/s | — | |",
            "| └ latency p50 / p99 | 185 µs / 280 µs | 180 µs–190 µs | — | |",
            "| same-work floor, 64 tasks on the store's connection | 35,000/s | 30,000/s–40,000/s | — | |",
            "| same-work floor, server-bound (4 connections × 32 in flight) | 42,500/s | 35,000/s–50,000/s | — | |",
            "| sequential acquire+release | 4,500/s | 4,000/s–5,000/s | 2,250/s | 2.00× |",
            "| └ latency p50 / p99 | 220 µs / 350 µs | 200 µs–240 µs | 440 µs / 850 µs | p50 2.00× faster |",
            "| └ vs same-work floor (ops/s ÷ floor ops/s, 1 task) | 0.90× | 0.80×–1.00× | 0.45× | |",
            "| └ vs same-work floor by p50 (floor p50 ÷ p50) | 0.85× | 0.79×–0.90× | 0.42× | |",
            "| 64 concurrent acquire+release | 31,000/s | 30,000/s–32,000/s | 9,000/s | 3.50× |",
            "| └ vs best same-work floor (any concurrency) | 0.70× | 0.60×–0.80× | 0.20× | |",
            "| 16-way contended: acquisitions | 10,500/s | 10,000/s–11,000/s | 50/s | 200× |",
            "| └ hand-off p50 / p99 | 85 µs / 145 µs | 80 µs–90 µs | 250.00 ms / 260.00 ms | p50 2778× faster |",
            "| hand-off, 1000 waiting on one key: hand-offs | 8,500/s | 8,000/s–9,000/s | 10/s | 800× |",
            "| └ hand-off p50 / p99 | 115 µs / 390 µs | 110 µs–120 µs | 200.00 ms / 250.00 ms | p50 1667× faster |",
            "",
        ];
        assert_eq!(table(&run), expected);
    }

    #[test]
    fn fred_and_redis_rs_are_compared_round_by_round_where_both_ran() {
        let mut run = two_rounds(StoreKind::Valkey, "Valkey PING", true);
        if let Some(labels) = &mut run.same_work {
            labels.driver_comparison = true;
        }
        // Fred's floors (two_rounds): p50 190 and 180 µs; 30,000 and
        // 40,000/s at 64 tasks. redis-rs: 209 and 217 µs (1.10× and 1.21×
        // fred's); 60,000 and 48,000/s (2.00× and 1.20×), above every
        // floor of fred's.
        run.ours.insert(
            Workload::FloorSequentialRedisRs,
            vec![
                sample(450, 0.1, Some((209.0, 300.0))),
                sample(440, 0.1, Some((217.0, 320.0))),
            ],
        );
        run.ours.insert(
            Workload::FloorConcurrentRedisRs,
            vec![sample(6000, 0.1, None), sample(4800, 0.1, None)],
        );
        let rows = table(&run);
        let at = rows
            .iter()
            .position(|r| r == "| same EVALSHAs | fred | redis-rs | redis-rs ÷ fred |")
            .unwrap_or_else(|| panic!("no comparison table in {rows:#?}"));
        assert_eq!(
            rows[at - 2..at + 6],
            [
                "Same scripts, fred vs redis-rs (reported, not a target):",
                "",
                "| same EVALSHAs | fred | redis-rs | redis-rs ÷ fred |",
                "|---|---|---|---|",
                "| 1 task: p50 per acquire + release | 185 µs | 213 µs | 1.15× |",
                "| 64 tasks: acquire + release pairs/s | 35,000/s | 54,000/s | 1.60× |",
                "",
                "A p50 ratio above 1.00× means redis-rs took longer; a pairs/s ratio above 1.00× means it did more.",
            ]
        );
        // The comparison is no floor: the targets divide by fred's alone
        // (3,000 ÷ 5,000 and 3,200 ÷ 4,000, not ÷ 6,000 and ÷ 4,800).
        let targets: Vec<String> = targets(std::slice::from_ref(&run))
            .iter()
            .map(Target::row)
            .collect();
        assert!(targets[1].contains("| 0.70× |"), "{targets:#?}");
        // A round redis-rs did not run (the store failed) shows dashes.
        run.ours.remove(&Workload::FloorConcurrentRedisRs);
        let rows = table(&run);
        assert!(
            rows.contains(&"| 64 tasks: acquire + release pairs/s | 35,000/s | — | — |".to_owned()),
            "{rows:#?}"
        );
        // A store without the comparison has no such table.
        let without = two_rounds(StoreKind::Redis, "Redis PING", true);
        assert!(!table(&without).iter().any(|r| r.contains("redis-rs")));
    }

    #[test]
    fn a_sql_store_is_judged_against_its_floors_on_the_pool_and_keeps_select_1() {
        let mut run = two_rounds(StoreKind::Postgres, "Postgres SELECT 1", true);
        run.same_work = Some(crate::FloorLabels {
            what: "PostgreSQL acquire + release statements".into(),
            shared: "the store's pool".into(),
            third: Some("8 tasks on the store's pool (verrou's default pool size)".into()),
            driver_comparison: false,
        });
        let rows = table(&run);
        for expected in [
            "| round-trip reference: Postgres SELECT 1 | 11,000/s | 10,000/s–12,000/s | — | |",
            "| same-work floor, 1 task: PostgreSQL acquire + release statements | 5,000/s | 5,000/s–5,000/s | — | |",
            "| same-work floor, 64 tasks on the store's pool | 35,000/s | 30,000/s–40,000/s | — | |",
            "| same-work floor, 8 tasks on the store's pool (verrou's default pool size) | 42,500/s | 35,000/s–50,000/s | — | |",
        ] {
            assert!(rows.contains(&expected.to_owned()), "{expected}\n{rows:#?}");
        }
        assert!(!rows.iter().any(|r| r.contains("round trips")), "{rows:#?}");
        let targets: Vec<String> = targets(&[run]).iter().map(Target::row).collect();
        assert_eq!(
            targets[0],
            "| postgres | sequential acquire+release ÷ same-work floor (1 task) | ≥ 0.90× | 0.90× | **met** |"
        );
        // 3,000 ÷ 5,000 (the 8-task floor, best in round 1) and 3,200 ÷
        // 4,000 (the 64-task floor, best in round 2).
        assert_eq!(
            targets[1],
            format!(
                "| postgres | 64 tasks ÷ best same-work floor at any concurrency | ≥ 0.90× | 0.70× | missed by 22% (short by 0.20×): {} |",
                cause::SAME_WORK
            )
        );
    }

    #[test]
    fn dynamodb_is_judged_against_its_two_floors_without_a_third() {
        let mut run = two_rounds(StoreKind::DynamoDb, "DynamoDB GetItem", true);
        run.ours.remove(&Workload::FloorServerBound);
        run.same_work = Some(crate::FloorLabels {
            what: "DynamoDB acquire + release UpdateItem".into(),
            shared: "the store's client".into(),
            third: None,
            driver_comparison: false,
        });
        let rows = table(&run);
        assert!(
            rows.contains(
                &"| same-work floor, 64 tasks on the store's client | 35,000/s | 30,000/s–40,000/s | — | |"
                    .to_owned()
            ),
            "{rows:#?}"
        );
        let floor_rows = rows.iter().filter(|r| r.starts_with("| same-work floor"));
        assert_eq!(floor_rows.count(), 2, "{rows:#?}");
        assert!(!rows.iter().any(|r| r.contains("round trips")), "{rows:#?}");
        let targets: Vec<String> = targets(&[run]).iter().map(Target::row).collect();
        assert_eq!(
            targets[0],
            "| dynamodb | sequential acquire+release ÷ same-work floor (1 task) | ≥ 0.90× | 0.90× | **met** |"
        );
        // 3,000 ÷ 3,000 and 3,200 ÷ 4,000: the 64-task floor is the best.
        assert!(targets[1].contains("| 0.90× | **met** |"), "{targets:#?}");
    }

    #[test]
    fn a_store_without_a_same_work_floor_compares_with_round_trips_as_a_reference() {
        let run = two_rounds(StoreKind::DynamoDb, "DynamoDB GetItem", false);
        let rows = table(&run);
        assert!(
            rows.contains(
                &"| └ vs round trips (ops/s ÷ round trips/s ÷ 2), reference | 0.82× | 0.80×–0.83× | 0.41× | |"
                    .to_owned()
            ),
            "{rows:#?}"
        );
        assert!(!rows.iter().any(|r| r.contains("same-work")), "{rows:#?}");
        let targets: Vec<String> = targets(&[run]).iter().map(Target::row).collect();
        assert!(
            targets[0].contains("not measured: no same-work floor for this store yet"),
            "{targets:#?}"
        );
    }

    #[test]
    fn memory_compares_its_time_with_the_mutex_floor() {
        let run = two_rounds(StoreKind::Memory, "tokio::sync::Mutex lock+unlock", false);
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
        assert!(
            rows.contains(
                &"| floor: tokio::sync::Mutex lock+unlock | 11,000/s | 10,000/s–12,000/s | — | |"
                    .to_owned()
            ),
            "{rows:#?}"
        );
        assert!(!rows.iter().any(|r| r.contains("round trips")), "{rows:#?}");
    }

    #[test]
    fn targets_are_judged_against_the_same_work_floor_the_peer_and_memory() {
        let redis = two_rounds(StoreKind::Redis, "Redis PING", true);
        let mut memory = two_rounds(StoreKind::Memory, "tokio::sync::Mutex lock+unlock", false);
        // Memory hands off 10× faster than Redis in both rounds.
        memory.ours.insert(
            Workload::Handoff,
            vec![sample(8000, 0.1, None), sample(9000, 0.1, None)],
        );
        let rows: Vec<String> = targets(&[memory, redis]).iter().map(Target::row).collect();
        let find = |store: &str, what: &str| {
            rows.iter()
                .find(|r| r.starts_with(&format!("| {store} | {what}")))
                .unwrap_or_else(|| panic!("no {store} {what} in {rows:#?}"))
                .clone()
        };
        assert_eq!(
            find("redis", "sequential acquire+release ÷ same-work floor"),
            "| redis | sequential acquire+release ÷ same-work floor (1 task) | ≥ 0.90× | 0.90× | **met** |"
        );
        // 64 tasks: 3,000 ÷ 5,000 and 3,200 ÷ 4,000, the best floor of each round.
        assert_eq!(
            find("redis", "64 tasks ÷ best"),
            format!(
                "| redis | 64 tasks ÷ best same-work floor at any concurrency | ≥ 0.90× | 0.70× | missed by 22% (short by 0.20×): {} |",
                cause::SAME_WORK
            )
        );
        assert!(find("redis", "64 tasks ÷ Node").contains("| ≥ 1.50× | 3.50× | **met** |"));
        assert!(find("redis", "hand-offs/s").contains("| ≥ 0.10× | 0.10× | **met** |"));
        assert!(find("memory", "acquire+release time").contains("| ≤ 3.00× | 2.45× | **met** |"));
    }

    #[test]
    fn a_workload_the_peer_cannot_run_reads_n_a() {
        let mut run = two_rounds(StoreKind::Memory, "tokio::sync::Mutex lock+unlock", false);
        run.peer.remove(&Workload::Handoff);
        run.peer_na
            .insert(Workload::Handoff, "its driver cannot".into());
        let rows = table(&run);
        assert!(
            rows.contains(
                &"| hand-off, 1000 waiting on one key: hand-offs | 8,500/s | 8,000/s–9,000/s | n/a | — |"
                    .to_owned()
            ),
            "{rows:#?}"
        );
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
            what: "x".into(),
            goal: Goal::AtLeastRatio(2.0),
            measured: Measured::Value(1.5),
            cause: Some(cause::HANDOFF),
        };
        assert!(
            target.row().ends_with(&format!(
                "| missed by 25% (short by 0.50×): {} |",
                cause::HANDOFF
            )),
            "{}",
            target.row()
        );
        let met = Target {
            measured: Measured::Value(2.0),
            ..target
        };
        assert!(met.row().ends_with("| **met** |"), "{}", met.row());
    }
}
