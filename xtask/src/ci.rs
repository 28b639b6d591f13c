//! `cargo xtask ci`: what `.ci/run` runs after starting the services.

use crate::process::run;

/// Tests whose name contains this restart a shared server, so they run alone,
/// after everything else (a restart mid-suite would fail unrelated tests).
const SERIAL_MARK: &str = "server_restart";

/// Format check, lints, the README's test command, the short torture run,
/// then the bench smoke run.
pub fn all() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    tests()?;
    crate::torture::torture(&["--short"])?;
    crate::bench::bench(&["--smoke"])
}

/// Every test: the parallel phase, the serial restart phase, then doctests.
pub fn tests() -> Result<(), String> {
    let parallel = format!("not test(/{SERIAL_MARK}/)");
    let serial = format!("test(/{SERIAL_MARK}/)");
    run(
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "-E",
            &parallel,
        ],
    )?;
    run(
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--no-tests=pass",
            "--test-threads",
            "1",
            "-E",
            &serial,
        ],
    )?;
    run("cargo", &["test", "--workspace", "--doc"])
}
