//! `cargo xtask torture [store...] [--ops N] [--short] [--renewal]`: builds
//! the torture runner and its worker, then runs them (the `verrou-torture`
//! crate, `tools/torture`). Every store gets a plain run and a
//! renewal run (`<store>-renewal`, renewing leases and their lost signal);
//! `--renewal` runs only the latter.
//!
//! The short run (CI) uses the dev profile, which `cargo nextest` has already
//! built; the full run uses release so that 100,000 operations per store go
//! quickly.

use crate::process::run;

pub const USAGE: &str = "usage: cargo xtask torture [STORE...] [--ops N] [--short] [--renewal]
  Lock workers under kill -9, SIGSTOP and lost connections; fails if any
  store shows a violation. Writes target/torture/report.md. The full run
  prints a progress line every 5 s; the short run a line per store.
  STORE           a store (default: all), or STORE-renewal for its renewal run
  --ops N         operations per store
  --short         the CI run: fewer operations, debug build
  --renewal       only the renewal runs: renewing leases held across several
                  TTLs, holders paused past them
  Without --short the runner is a release build (minutes on two cores).";

/// Builds and runs the torture; fails if any store shows a violation.
pub fn torture(args: &[&str]) -> Result<(), String> {
    crate::check_options(args, &["--short", "--renewal"], &["--ops"])?;
    let short = args.contains(&"--short");
    let mut build = vec!["build", "-p", "verrou-torture", "--bins"];
    let mut exec = vec!["run", "-p", "verrou-torture", "--bin", "torture_runner"];
    if !short {
        build.push("--release");
        exec.push("--release");
    }
    run("cargo", &build)?;
    exec.push("--");
    exec.extend_from_slice(args);
    run("cargo", &exec)
}
