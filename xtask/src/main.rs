//! `cargo xtask <task>`: the workspace's chores. No dependencies, so it
//! compiles in a second.

mod bench;
mod ci;
mod process;
mod services;
mod torture;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>
  ci                       format check, clippy, then `test` (what .ci/run runs)
  test                     every test (restart tests alone, last) and doctest
  services up [NAME...]    start local services (default: all) unless already running
  services down [NAME...]  stop the services xtask started itself
  services list            show the services and whether they answer
  bench [STORE...]         benchmarks vs the bare round trip and Node's Verrou
                           (release; writes target/bench/report.md); options:
                           --smoke, --rounds N, --secs S, --no-peer
  torture [STORE...] [--ops N] [--short] [--renewal]
                           lock workers under kill -9, SIGSTOP and lost
                           connections (writes target/torture/report.md);
                           `--renewal` or STORE-renewal: renewing leases
                           held across several TTLs, holders paused past them";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["ci"] => ci::all(),
        ["test"] => ci::tests(),
        ["services", "up", names @ ..] => services::up(names),
        ["services", "down", names @ ..] => services::down(names),
        ["services", "list"] => services::list(),
        ["torture", args @ ..] => torture::torture(args),
        ["bench", args @ ..] => bench::bench(args),
        _ => {
            eprintln!("{USAGE}");
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
