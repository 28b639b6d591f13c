//! `cargo xtask torture [store...] [--ops N] [--short] [--renewal]`: builds
//! the torture runner and its worker, then runs them (see
//! `integration-tests/src/torture`). Every store gets a plain run and a
//! renewal run (`<store>-renewal`, renewing leases and their lost signal);
//! `--renewal` runs only the latter.
//!
//! The short run (CI) uses the dev profile, which `cargo nextest` has already
//! built; the full run uses release so that 100,000 operations per store go
//! quickly.

use crate::process::run;

/// Builds and runs the torture; fails if any store shows a violation.
pub fn torture(args: &[&str]) -> Result<(), String> {
    let short = args.contains(&"--short");
    let mut build = vec!["build", "-p", "verrou-integration-tests", "--bins"];
    let mut exec = vec![
        "run",
        "-p",
        "verrou-integration-tests",
        "--bin",
        "torture_runner",
    ];
    if !short {
        build.push("--release");
        exec.push("--release");
    }
    run("cargo", &build)?;
    exec.push("--");
    exec.extend_from_slice(args);
    run("cargo", &exec)
}
