//! `verrou-bench`: verrou's stores against the same work done bare on the
//! store's own driver (the same-work floor), against Node's Verrou, and with
//! the store's round trip as a reference, written as a markdown report with
//! SVG charts. Run it with `cargo xtask bench [store...]` (release build,
//! installs the Node peer) or `cargo xtask bench --smoke` (one short round,
//! no peer: proves it runs). See `bench/README.md`.

mod charts;
mod footprint;
mod peer;
mod progress;
mod report;
mod sample;
mod stats;
mod stores;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use verrou_core::LockFactory;
use verrou_redis::fred::interfaces::ClientLike;
use verrou_testkit::StoreKind;

use crate::footprint::Footprint;
use crate::peer::{Answer, Peer};
use crate::progress::Progress;
use crate::sample::{Sample, Workload};
use crate::workloads::Keys;

const USAGE: &str = "usage: verrou-bench [--smoke] [--rounds N] [--secs S] [--no-peer]
                    [--no-footprint] [--footprint-locks N] [--out FILE] [STORE...]
  STORE      one of the known stores (default: all); an unreachable store fails
             when named, or when VERROU_REQUIRE_SERVICES=1, and is skipped otherwise
  --smoke    one short round per workload, no peer, no warm-up, no footprint
  --rounds   rounds per workload (default 5); figures are medians over rounds
  --secs     seconds per workload per round (default 1; contended runs twice as long)
  --no-peer  skip Node's Verrou
  --no-footprint       skip the bytes-per-held-lock measure (memory, redis)
  --footprint-locks N  live locks of that measure (default 1000000)
  --out      also write the markdown report to FILE, and SVG charts beside it";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    /// One short round, no peer.
    pub smoke: bool,
    /// Rounds per workload.
    pub rounds: usize,
    /// Seconds per workload per round.
    pub secs: f64,
    /// Run Node's Verrou alongside.
    pub peer: bool,
    /// Live locks of the footprint measure; `None`: not measured.
    pub footprint_locks: Option<u64>,
    out: Option<PathBuf>,
    stores: Vec<StoreKind>,
}

impl Settings {
    fn parse(args: &[String]) -> Result<Settings, String> {
        let mut settings = Settings {
            smoke: false,
            rounds: 5,
            secs: 1.0,
            peer: true,
            footprint_locks: Some(footprint::LOCKS),
            out: None,
            stores: Vec::new(),
        };
        let mut footprint = true;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--smoke" => settings.smoke = true,
                "--no-peer" => settings.peer = false,
                "--no-footprint" => footprint = false,
                "--footprint-locks" => {
                    let locks: u64 = value("--footprint-locks")?
                        .parse()
                        .map_err(|e| format!("--footprint-locks: {e}"))?;
                    if locks == 0 {
                        return Err("--footprint-locks must be positive".into());
                    }
                    settings.footprint_locks = Some(locks);
                }
                "--rounds" => {
                    settings.rounds = value("--rounds")?
                        .parse()
                        .map_err(|e| format!("--rounds: {e}"))?;
                }
                "--secs" => {
                    settings.secs = value("--secs")?
                        .parse()
                        .map_err(|e| format!("--secs: {e}"))?;
                }
                "--out" => settings.out = Some(value("--out")?.into()),
                "-h" | "--help" => return Err(String::new()),
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                store => settings.stores.push(stores::parse(store)?),
            }
        }
        if settings.smoke {
            settings.rounds = 1;
            settings.secs = 0.1;
            settings.peer = false;
        }
        if settings.smoke || !footprint {
            settings.footprint_locks = None;
        }
        if settings.rounds == 0 || settings.secs.is_nan() || settings.secs <= 0.0 {
            return Err("--rounds and --secs must be positive".into());
        }
        Ok(settings)
    }

    /// How long one round of `workload` runs.
    pub fn secs_for(&self, workload: Workload) -> f64 {
        match workload {
            // Node's Verrou polls every 250 ms: it needs a longer round to
            // hand the lock over a few times.
            Workload::Contended => self.secs * 2.0,
            _ => self.secs,
        }
    }

    /// How long one round of `workload` runs: [`Settings::secs_for`], or at
    /// most 0.3 s in the warm-up round (`counted` false), which only has to
    /// open connections and fill caches.
    pub fn round_secs(&self, workload: Workload, counted: bool) -> f64 {
        if counted {
            self.secs_for(workload)
        } else {
            self.secs_for(workload).min(0.3)
        }
    }

    /// Rounds per store, the warm-up included.
    pub fn all_rounds(&self) -> usize {
        self.warm_up() + self.rounds
    }

    /// Discarded warm-up rounds before the counted ones (none in a smoke run).
    pub fn warm_up(&self) -> usize {
        usize::from(!self.smoke)
    }
}

/// Everything measured on one store.
#[derive(Debug)]
pub struct StoreRun {
    /// The store.
    pub kind: StoreKind,
    /// What its round-trip reference measures (memory: its mutex floor).
    pub round_trip_label: &'static str,
    /// What its same-work floors send and how they ran, when it has them.
    pub same_work: Option<FloorLabels>,
    /// Our samples, one per round (always `Some`: a failure of ours aborts
    /// the run; the `Option` lets both sides share the report's helpers).
    pub ours: BTreeMap<Workload, Vec<Option<Sample>>>,
    /// The peer's samples, one per round, `None` where it had none.
    pub peer: BTreeMap<Workload, Vec<Option<Sample>>>,
    /// Why the peer is missing or failed, and which of our runs were retried.
    pub notes: Vec<String>,
    /// Workloads Node's Verrou cannot run on this store, and why.
    pub peer_na: BTreeMap<Workload, String>,
    /// Our workload that failed, ending this store's run.
    pub error: Option<String>,
    /// Bytes per held lock, where measured (or why it failed).
    pub footprint: Option<Result<Footprint, String>>,
}

impl StoreRun {
    /// A run of `kind` with nothing measured yet, `round_trip_label` naming
    /// its round-trip reference.
    pub fn new(kind: StoreKind, round_trip_label: &'static str) -> StoreRun {
        StoreRun {
            kind,
            round_trip_label,
            same_work: None,
            ours: BTreeMap::new(),
            peer: BTreeMap::new(),
            notes: Vec::new(),
            peer_na: BTreeMap::new(),
            error: None,
            footprint: None,
        }
    }
}

/// What the report says of a store's same-work floors.
#[derive(Debug, Clone)]
pub struct FloorLabels {
    /// What they send: `Redis acquire + release scripts (EVALSHA on fred)`.
    pub what: String,
    /// Where the 1-task and 64-task floors run: `the store's connection`,
    /// `the store's pool`.
    pub shared: String,
    /// The third floor: `server-bound (4 connections × 32 in flight)`,
    /// `8 tasks on the store's pool (verrou's default pool size)`; `None`
    /// where there is none (DynamoDB).
    pub third: Option<String>,
    /// Whether the same work also ran on another driver (redis-rs, single
    /// Redis and Valkey servers), for the table of fred against it.
    pub driver_comparison: bool,
}

/// Why a store was not run at all.
#[derive(Debug)]
pub struct Skipped {
    /// The store.
    pub kind: StoreKind,
    /// Why.
    pub reason: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, locks] = args.as_slice()
        && flag == footprint::CHILD_FLAG
    {
        return match footprint::child(locks).await {
            Ok(answer) => {
                println!("{answer}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("verrou-bench {}: {e}", footprint::CHILD_FLAG);
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::parse(&args) {
        Ok(settings) => settings,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("verrou-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verrou-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: &Settings) -> Result<(), String> {
    let named = !settings.stores.is_empty();
    let kinds: Vec<StoreKind> = if named {
        settings.stores.clone()
    } else {
        stores::BENCHED.to_vec()
    };
    let must_run = named || std::env::var("VERROU_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let peer_dir = peer::default_dir();
    let peer_versions = if settings.peer {
        peer::versions(&peer_dir).map_err(|why| {
            eprintln!("peer: skipped: {why}");
            why
        })
    } else {
        Err("not requested (--no-peer or --smoke)".to_owned())
    };
    let run_id = verrou_core::random_owner().map_err(|e| workloads::describe(&e))?[..8].to_owned();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut progress = Progress::new(settings, kinds.len());
    for &kind in &kinds {
        let subject = match stores::open(kind).await {
            Ok(subject) => subject,
            Err(reason) if must_run => return Err(format!("{kind}: {reason}")),
            Err(reason) => {
                eprintln!("{kind}: skipped: {reason}");
                progress.skip_store();
                skipped.push(Skipped { kind, reason });
                continue;
            }
        };
        let mut store_run = StoreRun::new(kind, subject.round_trip.label());
        store_run.notes.extend(subject.notes.iter().cloned());
        if let Some(floor) = &subject.same_work {
            store_run.same_work = Some(floor.labels());
        } else if kind != StoreKind::Memory {
            store_run.notes.push(
                "same-work floor not measured yet (the store's requests are not wired into the bench); the round trip is a reference only".into(),
            );
        }
        let mut peer = match &peer_versions {
            Err(why) => {
                store_run.notes.push(format!("peer not run: {why}"));
                None
            }
            Ok(_) if !stores::has_peer(kind) => {
                store_run.notes.push(
                    "Node's Verrou is not wired up for this store in bench/node/peer.mjs".into(),
                );
                None
            }
            Ok(_) => match Peer::start(&peer_dir, kind).await {
                Ok(peer) => Some(peer),
                Err(why) => {
                    eprintln!("{kind}: peer skipped: {why}");
                    store_run.notes.push(format!("peer not run: {why}"));
                    None
                }
            },
        };
        progress.start_store(&subject.workloads());
        let outcome = run_store(
            settings,
            &run_id,
            &subject,
            &mut peer,
            &mut store_run,
            &mut progress,
        )
        .await;
        progress.end_store();
        drop(peer);
        if let Err(e) = outcome {
            eprintln!("{kind}: FAILED: {e}");
            store_run.error = Some(e);
        }
        if let Some(locks) = settings.footprint_locks
            && footprint::measured(kind)
        {
            eprintln!("bench: {kind}, bytes per held lock with {locks} live locks");
            let measured = footprint::measure(kind, locks, &run_id).await;
            match &measured {
                Ok(f) => eprintln!("{kind}: {:.0} bytes per held lock", f.per_lock()),
                Err(e) => eprintln!("{kind}: footprint failed: {e}"),
            }
            store_run.footprint = Some(measured);
        }
        if let Some(note) = clean_up(&subject, &run_id).await {
            store_run.notes.push(note);
        }
        runs.push(store_run);
    }
    let meta = report::Meta::collect(settings, peer_versions.ok());
    let charts = match &settings.out {
        Some(out) => charts::write(&charts::dir_of(out), &runs).unwrap_or_else(|e| {
            eprintln!("charts: {e}");
            Vec::new()
        }),
        None => Vec::new(),
    };
    let text = report::render(&meta, &runs, &skipped, &charts);
    println!("{text}");
    if let Some(out) = &settings.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("report written to {}", out.display());
        if !charts.is_empty() {
            eprintln!("{} SVG charts written beside it", charts.len());
        }
    }
    let failed: Vec<&str> = runs
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.kind.name())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("a workload failed on: {}", failed.join(", ")))
    }
}

/// A warm-up round (discarded), then the rounds, each workload alternating
/// ours then the peer's so that drift of the machine hits both sides.
async fn run_store(
    settings: &Settings,
    run_id: &str,
    subject: &stores::Subject,
    peer: &mut Option<Peer>,
    out: &mut StoreRun,
    progress: &mut Progress,
) -> Result<(), String> {
    let factory = LockFactory::from_arc(subject.store.clone());
    let warm_up = settings.warm_up();
    let workloads = subject.workloads();
    for round in 0..settings.all_rounds() {
        let counted = round >= warm_up;
        let keys = Keys::new(run_id, round);
        for &workload in &workloads {
            let secs = settings.round_secs(workload, counted);
            progress.starting(out.kind, round, workload);
            let mut ours = run_ours(subject, &factory, &keys, workload, secs).await;
            if let Err(first) = &ours {
                // Other suites on a shared machine kill connections and restart
                // servers; one retry tells that from a real failure. The smoke
                // run never retries: there every error must fail the build.
                if !settings.smoke {
                    eprintln!("{} {workload}: {first}; retrying once", out.kind);
                    out.notes
                        .push(format!("our `{workload}` was retried once after: {first}"));
                    let fresh = Keys::new(&format!("{run_id}-retry"), round);
                    ours = run_ours(subject, &factory, &fresh, workload, secs).await;
                }
            }
            let ours = ours.map_err(|e| format!("{} {workload}: {e}", out.kind))?;
            let theirs = match peer.as_mut() {
                Some(p) if workload.has_peer() && !peer_done(out, workload) => {
                    match p.run(workload, secs, round).await {
                        Ok(Answer::Ran(sample)) => Some(sample),
                        Ok(Answer::NotApplicable(why)) => {
                            out.notes
                                .push(format!("Node Verrou n/a for `{workload}`: {why}"));
                            out.peer_na.insert(workload, why);
                            None
                        }
                        Err(why) => {
                            eprintln!("{} peer {workload}: {why}", out.kind);
                            out.notes.push(format!("peer failed `{workload}`: {why}"));
                            None
                        }
                    }
                }
                _ => None,
            };
            progress.finished(workload, counted);
            if !counted {
                continue;
            }
            show_result(
                out.kind,
                round + 1 - warm_up,
                settings.rounds,
                workload,
                &ours,
                theirs.as_ref(),
            );
            out.ours.entry(workload).or_default().push(Some(ours));
            out.peer.entry(workload).or_default().push(theirs);
        }
    }
    Ok(())
}

async fn run_ours(
    subject: &stores::Subject,
    factory: &LockFactory,
    keys: &Keys,
    workload: Workload,
    secs: f64,
) -> Result<Sample, String> {
    let floor = || {
        subject
            .same_work
            .clone()
            .ok_or_else(|| format!("{} has no same-work floor", subject.kind))
    };
    // The same work on redis-rs, where the floor has it.
    let driver = || {
        floor()?
            .driver_comparison
            .clone()
            .ok_or_else(|| format!("{} has no driver comparison", subject.kind))
    };
    let keys = keys.clone();
    match workload {
        Workload::RoundTrip => workloads::round_trip(subject.round_trip.clone(), secs).await,
        Workload::FloorSequential => {
            workloads::floor_sequential(floor()?.shared.clone(), keys, "floor-seq", secs).await
        }
        Workload::FloorSequentialRedisRs => {
            workloads::floor_sequential(driver()?, keys, "floor-seq-rs", secs).await
        }
        Workload::FloorConcurrent => {
            workloads::floor_parallel(floor()?.concurrent_lanes(), keys, "floor-conc", secs).await
        }
        Workload::FloorConcurrentRedisRs => {
            // As many tasks as the concurrent floor runs on fred.
            let lanes = vec![(driver()?, workloads::CONCURRENT_TASKS)];
            workloads::floor_parallel(lanes, keys, "floor-conc-rs", secs).await
        }
        Workload::FloorServerBound => {
            workloads::floor_parallel(floor()?.third_lanes(), keys, "floor-bound", secs).await
        }
        Workload::Sequential => workloads::sequential(factory.clone(), keys, secs).await,
        Workload::Concurrent => workloads::concurrent(factory.clone(), keys, secs).await,
        Workload::Contended => workloads::contended(factory.clone(), keys, secs).await,
        Workload::Handoff => workloads::handoff(factory.clone(), keys, secs).await,
    }
}

/// Deletes what this run left on the server, where the bench can. A single
/// Redis server: the run's keys (the lock keys are gone, but every
/// acquisition left a fencing counter that would stay an hour). PostgreSQL
/// and MariaDB: the free rows, by the store's own prune statement in
/// batches (rows released in the run's last second stay until a later
/// prune). Returns a note for the report when that failed or was skipped.
async fn clean_up(subject: &stores::Subject, run_id: &str) -> Option<String> {
    if let Some(pruned) = stores::sql_prune(&subject.round_trip).await {
        return match pruned {
            Ok(rows) => {
                eprintln!("{}: pruned {rows} free rows", subject.kind);
                None
            }
            Err(e) => Some(format!(
                "pruning this run's rows failed (they stay until the store prunes them): {}",
                workloads::describe(e.as_ref())
            )),
        };
    }
    let stores::RoundTrip::Redis(store, _) = subject.round_trip.as_ref() else {
        return None;
    };
    if store.client().is_clustered() {
        return Some(
            "this run's fencing counters were left to expire (one hour): the bench deletes them on single servers only".into(),
        );
    }
    // `{` is the hash tag the store puts around every key; the prefix is
    // empty (the testkit's default).
    let pattern = format!("{}{{bench:{run_id}*", store.prefix());
    match stores::redis_delete_matching(store.client(), &pattern).await {
        Ok(_) => None,
        Err(e) => Some(format!(
            "deleting this run's keys ({pattern}) failed: {}",
            workloads::describe(e.as_ref())
        )),
    }
}

/// A workload the peer failed once, or cannot run on this store, is not
/// asked again (it would fail again and its numbers would be meaningless).
fn peer_done(run: &StoreRun, workload: Workload) -> bool {
    let prefix = format!("peer failed `{workload}`");
    run.peer_na.contains_key(&workload) || run.notes.iter().any(|n| n.starts_with(&prefix))
}

/// One workload's figures, as soon as it ran.
fn show_result(
    store: StoreKind,
    round: usize,
    rounds: usize,
    workload: Workload,
    ours: &Sample,
    theirs: Option<&Sample>,
) {
    let show = |s: &Sample| {
        let mut text = format!("{:.0}/s", s.per_sec());
        if let Some(p50) = s.p50_us {
            text.push_str(&format!(" p50 {p50:.1}µs"));
        }
        text
    };
    let peer = theirs
        .map(|s| format!("  | node: {}", show(s)))
        .unwrap_or_default();
    eprintln!(
        "{store} round {round}/{rounds} {workload:<10}  verrou: {}{peer}",
        show(ours)
    );
}
