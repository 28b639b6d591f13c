//! `cargo xtask <task>`: the workspace's chores. No dependencies, so it
//! compiles in a second.

mod bench;
mod ci;
mod package;
mod process;
mod services;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task> [--help]
  ci                       format check, clippy, package, then `test` (what
                           .ci/run runs)
  test                     every test (restart tests alone, last) and doctests
  package                  every published crate packages and builds alone;
                           rust-version no older than any dependency's
  services up [NAME...]    start local services (default: all) unless already running
  services down [NAME...]  stop the services xtask started itself
  services list            show the services and whether they answer
  services compose         write docker-compose.yml (the same services)
  bench [STORE...]         benchmarks vs the store's own work done bare and
                           Node's Verrou (release; writes target/bench/report.md
                           and SVG charts); options: --smoke, --rounds N,
                           --secs S, --no-peer, --no-footprint
  torture [STORE...] [--ops N] [--short] [--renewal]
                           lock workers under kill -9, SIGSTOP and lost
                           connections (writes target/torture/report.md);
                           `--renewal` or STORE-renewal: renewing leases
                           held across several TTLs, holders paused past them
`cargo xtask <task> --help` (or -h) shows one task's usage.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    // Help is answered before anything is built or started: `torture` and
    // `bench` would otherwise compile the release tree first.
    if wants_help(&words) {
        println!("{}", usage_of(&words));
        return ExitCode::SUCCESS;
    }
    let result = match words.as_slice() {
        ["ci"] => ci::all(),
        ["test"] => ci::tests(),
        ["package"] => package::package(),
        ["services", "up", names @ ..] => services::up(names),
        ["services", "down", names @ ..] => services::down(names),
        ["services", "list"] => services::list(),
        ["services", "compose"] => services::compose::write(),
        ["torture", args @ ..] => torture::torture(args),
        ["bench", args @ ..] => bench::bench(args),
        _ => {
            eprintln!("{}", usage_of(&words));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `help`, `-h` or `--help` anywhere (`cargo xtask help`, `cargo xtask
/// torture redis --help`).
fn wants_help(words: &[&str]) -> bool {
    words.first() == Some(&"help") || words.iter().any(|w| matches!(*w, "-h" | "--help"))
}

/// The usage of the task `words` name, or of every task when they name none.
fn usage_of(words: &[&str]) -> &'static str {
    match words.first().copied() {
        Some("ci") => ci::CI_USAGE,
        Some("test") => ci::TEST_USAGE,
        Some("package") => package::USAGE,
        Some("services") if words.get(1) == Some(&"compose") => services::compose::USAGE,
        Some("services") => services::USAGE,
        Some("bench") => bench::USAGE,
        Some("torture") => torture::USAGE,
        _ => USAGE,
    }
}

/// Fails on an option that is not in `flags` or `valued` (options that take
/// the next word as their value), before any slow build starts.
fn check_options(args: &[&str], flags: &[&str], valued: &[&str]) -> Result<(), String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if valued.contains(arg) {
            if args.next().is_none() {
                return Err(format!("{arg} needs a value"));
            }
        } else if arg.starts_with('-') && !flags.contains(arg) {
            return Err(format!("unknown option {arg} (see --help)"));
        }
    }
    Ok(())
}
