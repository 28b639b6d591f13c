//! `cargo xtask ci`: what `.ci/run` runs after starting the services.

use crate::process::{run, run_with_env};

pub const CI_USAGE: &str = "usage: cargo xtask ci
  What .ci/run runs once the services are up: cargo fmt --check, clippy
  (-D warnings, every feature), `cargo xtask package`, the networked stores
  without TLS (clippy and their tests/without_tls.rs), `cargo xtask test`,
  the short torture run and the bench smoke run.";

pub const TEST_USAGE: &str = "usage: cargo xtask test
  Every test with cargo nextest and every feature of every crate (sqlx pools,
  TLS, the AWS credential chain, metrics), in two phases, then the doctests:
  1. all tests in parallel except those named *server_restart*;
  2. the *server_restart* tests one at a time, with VERROU_RESTART_TESTS=1
     (they restart the shared PostgreSQL and MariaDB servers, and skip
     themselves without that variable).
  Set VERROU_REQUIRE_SERVICES=1 to fail instead of skip when a server is down.";

/// Tests whose name contains this restart a shared server, so they run alone,
/// after everything else (a restart mid-suite would fail unrelated tests).
const SERIAL_MARK: &str = "server_restart";

/// Those tests skip themselves unless this is `1`, so that a plain
/// `cargo test` never restarts a server under its other tests.
const RESTART_TESTS: (&str, &str) = ("VERROU_RESTART_TESTS", "1");

/// Format check, lints, packaging, the README's test command, the short
/// torture run, then the bench smoke run.
pub fn all() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Before the tests: a packaging or rust-version problem is found in
    // minutes, not after the whole suite.
    crate::package::package()?;
    without_tls()?;
    tests()?;
    crate::torture::torture(&["--short"])?;
    crate::bench::bench(&["--smoke"])
}

/// The networked stores that can be built without their default `rustls`
/// feature, each with a `tests/without_tls.rs` proving that a TLS URL is
/// then refused rather than served in plain text.
const TLS_STORES: [&str; 4] = [
    "verrou-redis",
    "verrou-postgres",
    "verrou-mysql",
    "verrou-dynamodb",
];

/// The stores built without TLS: lints clean, and their `without_tls`
/// tests pass. Every other run has every feature on, so this build is the
/// only one that sees the code behind `not(feature = "rustls")`.
pub fn without_tls() -> Result<(), String> {
    let mut args = vec!["clippy", "--all-targets", "--no-default-features"];
    for store in TLS_STORES {
        args.extend(["-p", store]);
    }
    args.extend(["--", "-D", "warnings"]);
    run("cargo", &args)?;
    let mut args = vec!["test", "--no-default-features", "--test", "without_tls"];
    for store in TLS_STORES {
        args.extend(["-p", store]);
    }
    run("cargo", &args)
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
            "--all-features",
            "--no-fail-fast",
            "-E",
            &parallel,
        ],
    )?;
    run_with_env(
        &[RESTART_TESTS],
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
            "--no-tests=pass",
            "--test-threads",
            "1",
            "-E",
            &serial,
        ],
    )?;
    run("cargo", &["test", "--workspace", "--all-features", "--doc"])
}
