//! `cargo xtask bench [--smoke] [store...]`: builds and runs `verrou-bench`.
//!
//! The full run is a release build, installs Node's Verrou (the peer) with
//! `npm install` into `bench/node`, and writes `target/bench/report.md` with
//! its SVG charts beside it. `--smoke` (what `cargo xtask ci` runs) is one
//! short round per workload on every store, without the peer or the
//! footprint measure, in the debug build: it only has to prove that every
//! workload, the report and the charts still work (it writes them to
//! `target/bench/smoke/`, apart from a real run's), and the debug build
//! reuses the artefacts the tests just built, where a release build would
//! compile every driver again (minutes on two cores). See `bench/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::run;

pub const USAGE: &str = "usage: cargo xtask bench [STORE...] [--smoke] [--rounds N] [--secs S]
                         [--no-peer] [--no-footprint] [--footprint-locks N]
  Benchmarks the stores against the same work done bare on their driver (the
  same-work floor), Node's Verrou, and their round trip as a reference.
  Writes target/bench/report.md and SVG charts beside it (bench/README.md).
  STORE           a store (default: all); an unreachable store fails when
                  named or with VERROU_REQUIRE_SERVICES=1, else is skipped
  --smoke         one short round per workload, debug build, no peer, no
                  footprint (CI); writes target/bench/smoke/report.md
  --rounds N      rounds per workload (default 5)
  --secs S        seconds per workload per round (default 1)
  --no-peer       skip Node's Verrou (and its npm install)
  --no-footprint  skip bytes per held lock (10^6 live locks, memory and redis)
  --footprint-locks N  live locks of that measure (default 1000000)
  Without --smoke the bench is a release build (minutes on two cores).";

/// Runs the benchmarks; `args` are passed on to `verrou-bench` (stores,
/// `--smoke`, `--rounds N`, `--secs S`, `--no-peer`, `--no-footprint`,
/// `--footprint-locks N`).
pub fn bench(args: &[&str]) -> Result<(), String> {
    crate::check_options(
        args,
        &["--smoke", "--no-peer", "--no-footprint"],
        &["--rounds", "--secs", "--footprint-locks"],
    )?;
    let root = workspace_root();
    let mut cargo = vec!["run", "--quiet", "-p", "verrou-bench"];
    if !args.contains(&"--smoke") {
        cargo.push("--release");
        if !args.contains(&"--no-peer") {
            install_peer(&root.join("bench/node"));
        }
    }
    // The smoke run writes its report and charts apart, so that it never
    // overwrites a real run's.
    let report = if args.contains(&"--smoke") {
        root.join("target/bench/smoke/report.md")
    } else {
        root.join("target/bench/report.md")
    };
    let report = report.to_str().ok_or("the workspace path is not UTF-8")?;
    cargo.push("--");
    cargo.extend_from_slice(args);
    cargo.extend_from_slice(&["--out", report]);
    run("cargo", &cargo)
}

/// `npm install` in `bench/node`. A missing or failing Node only costs the
/// peer columns, so it is reported and the bench goes on (it prints why the
/// peer did not run).
fn install_peer(dir: &Path) {
    let Some(dir) = dir.to_str() else { return };
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("bench: `node` not found; the Node Verrou peer will be skipped");
        return;
    }
    if let Err(e) = run(
        "npm",
        &["install", "--no-audit", "--no-fund", "--prefix", dir],
    ) {
        eprintln!("bench: {e}; the Node Verrou peer will be skipped");
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
