//! `verrou-bench`: verrou's stores against their bare round trip and against
//! Node's Verrou, written as a markdown report. Run it with
//! `cargo xtask bench [store...]` (release build, installs the Node peer) or
//! `cargo xtask bench --smoke` (one short round, no peer: proves it runs).

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
use verrou_testkit::StoreKind;

use crate::peer::Peer;
use crate::progress::Progress;
use crate::sample::{Sample, Workload};
use crate::workloads::Keys;

const USAGE: &str =
    "usage: verrou-bench [--smoke] [--rounds N] [--secs S] [--no-peer] [--out FILE] [STORE...]
  STORE      one of the known stores (default: all); an unreachable store fails
             when named, or when VERROU_REQUIRE_SERVICES=1, and is skipped otherwise
  --smoke    one short round per workload, no peer, no warm-up
  --rounds   rounds per workload (default 5); figures are medians over rounds
  --secs     seconds per workload per round (default 1; contended runs twice as long)
  --no-peer  skip Node's Verrou
  --out      also write the markdown report to FILE";

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
            out: None,
            stores: Vec::new(),
        };
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
    /// What its floor measures.
    pub floor_label: &'static str,
    /// Our samples, one per round (always `Some`: a failure of ours aborts
    /// the run; the `Option` lets both sides share the report's helpers).
    pub ours: BTreeMap<Workload, Vec<Option<Sample>>>,
    /// The peer's samples, one per round, `None` where it had none.
    pub peer: BTreeMap<Workload, Vec<Option<Sample>>>,
    /// Why the peer is missing or failed, and which of our runs were retried.
    pub notes: Vec<String>,
    /// Our workload that failed, ending this store's run.
    pub error: Option<String>,
}

impl StoreRun {
    /// A run of `kind` with nothing measured yet.
    pub fn new(kind: StoreKind, floor_label: &'static str) -> StoreRun {
        StoreRun {
            kind,
            floor_label,
            ours: BTreeMap::new(),
            peer: BTreeMap::new(),
            notes: Vec::new(),
            error: None,
        }
    }
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
        let mut store_run = StoreRun::new(kind, subject.floor.label());
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
            Ok(_) => match Peer::start(&peer_dir, kind.name()).await {
                Ok(peer) => Some(peer),
                Err(why) => {
                    eprintln!("{kind}: peer skipped: {why}");
                    store_run.notes.push(format!("peer not run: {why}"));
                    None
                }
            },
        };
        progress.start_store();
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
        if let Err(e) = outcome {
            eprintln!("{kind}: FAILED: {e}");
            store_run.error = Some(e);
        }
        runs.push(store_run);
    }
    let meta = report::Meta::collect(settings, peer_versions.ok());
    let text = report::render(&meta, &runs, &skipped);
    println!("{text}");
    if let Some(out) = &settings.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("report written to {}", out.display());
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
    for round in 0..settings.all_rounds() {
        let counted = round >= warm_up;
        let keys = Keys::new(run_id, round);
        for workload in Workload::ALL {
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
                Some(p) if workload.has_peer() && !peer_failed(out, workload) => {
                    match p.run(workload, secs, round).await {
                        Ok(sample) => Some(sample),
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
    match workload {
        Workload::Floor => workloads::floor(subject.floor.clone(), secs).await,
        Workload::Sequential => workloads::sequential(factory.clone(), keys.clone(), secs).await,
        Workload::Concurrent => workloads::concurrent(factory.clone(), keys.clone(), secs).await,
        Workload::Contended => workloads::contended(factory.clone(), keys.clone(), secs).await,
        Workload::Herd => workloads::herd(factory.clone(), keys.clone(), secs).await,
    }
}

/// A workload the peer failed once is not asked again (it would fail again
/// and its numbers would be meaningless).
fn peer_failed(run: &StoreRun, workload: Workload) -> bool {
    let prefix = format!("peer failed `{workload}`");
    run.notes.iter().any(|n| n.starts_with(&prefix))
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
