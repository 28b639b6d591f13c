//! `torture_runner [store...] [--ops N] [--short] [--renewal]`: runs the
//! torture against each store, writes `target/torture/report.md`, exits
//! non-zero on any violation. Usually started by `cargo xtask torture`.
//!
//! Without stores, every store gets its plain run then its renewal run
//! (`<store>-renewal`); `--renewal` keeps only the renewal runs (of the
//! stores named, or of all). The full run prints a progress line every
//! five seconds; the short run (CI) a line per store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use verrou_torture::case::{Case, Target};
use verrou_torture::mode;
use verrou_torture::report::render;
use verrou_torture::runner::{RunOptions, run_store, write_file};

/// How often the full run says how far a store has got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("torture_runner: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut cases = Vec::new();
    let mut short = false;
    let mut renewal_only = false;
    let mut ops = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--short" => short = true,
            "--renewal" => renewal_only = true,
            "--ops" => {
                let n = args.next().ok_or("--ops needs a number")?;
                ops = Some(n.parse::<u64>().map_err(|e| format!("--ops {n}: {e}"))?);
            }
            name if !name.starts_with('-') => cases.push(name.parse::<Case>()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if cases.is_empty() {
        cases = Target::ALL
            .iter()
            .flat_map(|&target| [Case::plain(target), Case::renewal(target)])
            .collect();
    }
    if renewal_only {
        // `redis` and `redis-renewal` alike name `redis-renewal`.
        cases = cases
            .iter()
            .map(|case| Case::renewal(case.target))
            .collect();
        cases.dedup();
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin_dir = exe.parent().ok_or("no executable directory")?;
    // target/<profile>/torture_runner → target/torture
    let out = bin_dir
        .parent()
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("torture");
    let opts = RunOptions {
        ops: ops.unwrap_or(if short { 2_000 } else { 100_000 }),
        short,
        out: out.clone(),
        worker_exe: bin_dir.join("torture_worker"),
        // The short run (CI) stays at a line per store.
        progress: (!short).then_some(PROGRESS_EVERY),
    };
    let mut runs = Vec::new();
    for &case in &cases {
        if !short {
            let size = if case.renewing() {
                format!("{} renewing holds", mode::holds(opts.ops, short))
            } else {
                format!("{} lock operations", opts.ops)
            };
            eprintln!("torture: {case}: {size}");
        }
        let run = run_store(case, &opts);
        eprintln!(
            "torture: {case}: {} ops in {:.1} s, {} violations{}",
            run.findings.ops,
            run.elapsed.as_secs_f64(),
            run.findings.violation_total(),
            run.failure
                .as_deref()
                .map(|f| format!(", FAILED: {f}"))
                .unwrap_or_default()
        );
        runs.push(run);
        // Written after every store, so that an interrupted long run still
        // leaves a report behind.
        let report = render(&runs, short, &machine());
        let name = if short {
            "report-short.md"
        } else {
            "report-full.md"
        };
        write_file(&out.join(name), &report).map_err(|e| e.to_string())?;
        write_file(&out.join("report.md"), &report).map_err(|e| e.to_string())?;
    }
    let passed = runs.iter().all(|r| r.passed());
    // The short run (CI) shows the report only when it has something to say.
    if !short || !passed {
        println!("{}", render(&runs, short, &machine()));
    }
    eprintln!(
        "torture: report written to {}",
        out.join("report.md").display()
    );
    Ok(passed)
}

/// Date, CPU count and kernel, for the report.
fn machine() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Run {date} on {cpus} CPU cores, Linux {}.", kernel.trim())
}
