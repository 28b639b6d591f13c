//! The markdown report of a torture run.

use std::fmt::Write;

use super::runner::StoreRun;

/// Renders the report of every store run.
pub fn render(runs: &[StoreRun], short: bool, machine: &str) -> String {
    let mut out = String::new();
    let kind = if short { "short (CI)" } else { "full" };
    let _ = writeln!(out, "# verrou torture report — {kind} run\n");
    let _ = writeln!(out, "{machine}\n");
    let _ = writeln!(
        out,
        "| store | workers | lock ops | faults injected | overlapping sections (all explained by an expired lease?) | stale accesses rejected (reads / writes) | violations | money lost | time | ops/s |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---|---|---:|---:|---:|---:|");
    for run in runs {
        let f = &run.findings;
        let faults = if f.faults.is_empty() {
            "none".to_owned()
        } else {
            f.faults
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let workers = format!(
            "{} {}",
            run.workers,
            if run.processes {
                "processes"
            } else {
                "threads"
            }
        );
        let secs = run.elapsed.as_secs_f64();
        let explained = if f.overlaps == f.overlaps_explained {
            "yes"
        } else {
            "**NO**"
        };
        let _ = writeln!(
            out,
            "| {} | {workers} | {} | {faults} | {} ({explained}) | {} / {} | {} | {} | {secs:.0} s | {:.0} |",
            run.store,
            f.ops,
            f.overlaps,
            f.reads_rejected,
            f.writes_rejected,
            if run.failure.is_some() {
                "run failed".to_owned()
            } else {
                f.violation_total().to_string()
            },
            f.money_lost,
            f.ops as f64 / secs.max(0.001),
        );
    }
    let _ = writeln!(out);
    for run in runs {
        let f = &run.findings;
        let verdict = match (run.clean(), run.expect_violations) {
            (true, _) => "PASS",
            (false, true) => "FAIL, as expected (a demonstration of a misconfiguration)",
            (false, false) => "FAIL",
        };
        let _ = writeln!(out, "## {} — {verdict}\n", run.store);
        if let Some(failure) = &run.failure {
            let _ = writeln!(out, "- **run failed:** {failure}");
        }
        let _ = writeln!(
            out,
            "- {} keys, TTL {} ms; {} holds cut short by a kill/crash ({} without a recorded kill); store errors: {} acquires, {} releases; {} releases found the lease already expired",
            run.keys,
            run.ttl.as_millis(),
            f.killed_holds,
            f.unexplained_unfinished,
            f.acquire_errors,
            f.release_errors,
            f.releases_not_owned,
        );
        if let Some(ms) = f.min_takeover_after_kill_ms {
            let _ = writeln!(
                out,
                "- after a holder was killed, the next holder got the key at the earliest {ms} ms after the dead holder's acquire (TTL {} ms)",
                run.ttl.as_millis()
            );
        }
        let _ = writeln!(
            out,
            "- late writes accepted because no newer holder had touched the resource yet (harmless): {}; resource writes not in a history (killed between write and log): {}",
            f.late_writes_accepted_harmless, f.unlogged_writes
        );
        if f.violation_counts.is_empty() {
            let _ = writeln!(out, "- violations: none");
        } else {
            for (rule, n) in &f.violation_counts {
                let _ = writeln!(out, "- **violation — {rule}: {n}**");
            }
            for line in &f.violations {
                let _ = writeln!(out, "  - {line}");
            }
        }
        for note in &run.notes {
            let _ = writeln!(out, "- note: {note}");
        }
        let _ = writeln!(out);
    }
    out
}
