//! The markdown report of a torture run.

use std::fmt::Write;

use crate::checker::RenewalFindings;
use crate::runner::StoreRun;

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
            run.case,
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
    renewal_table(&mut out, runs);
    for run in runs {
        let f = &run.findings;
        let verdict = match (run.clean(), run.expect_violations) {
            (true, _) => "PASS",
            (false, true) => "FAIL, as expected (a demonstration of a misconfiguration)",
            (false, false) => "FAIL",
        };
        let _ = writeln!(out, "## {} — {verdict}\n", run.case);
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
        if let Some(r) = &f.renewal {
            let _ = writeln!(
                out,
                "- renewal: {} holds, {} renewals confirmed (at most {} in one hold); {} losses signalled ({}); {} pauses past the TTL hit a hold, after {} of them the holder saw the signal; {} writes, {} after the lease had certainly ended: {} after the signal had fired (checked just before the pause; {} accepted, nobody newer had touched the resource), **{} without the signal having fired**",
                r.holds,
                r.renewals,
                r.max_renewals,
                r.losses_signalled,
                reasons(r),
                r.pauses_in_holds,
                r.pauses_then_signalled,
                r.writes,
                r.late_writes,
                r.late_writes_signalled,
                r.late_writes_accepted,
                r.late_writes_unsignalled,
            );
        }
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

/// The renewal runs' figures, one row each.
fn renewal_table(out: &mut String, runs: &[StoreRun]) {
    let rows: Vec<_> = runs
        .iter()
        .filter_map(|run| Some((run, run.findings.renewal.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Renewal runs: leases renewed every TTL/3 while each hold works two to three TTLs; holders paused past their TTL mid-hold must see the lost signal before they write again.\n"
    );
    let _ = writeln!(
        out,
        "| store | holds | renewals | losses signalled | pauses past the TTL in a hold (then signalled) | writes | wrote after the lease ended, signal fired first | wrote after the lease ended without the signal having fired | violations |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (run, r) in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} ({}) | {} | {} | {} | {} |",
            run.case,
            r.holds,
            r.renewals,
            r.losses_signalled,
            reasons(r),
            r.pauses_in_holds,
            r.pauses_then_signalled,
            r.writes,
            r.late_writes_signalled,
            r.late_writes_unsignalled,
            if run.failure.is_some() {
                "run failed".to_owned()
            } else {
                run.findings.violation_total().to_string()
            },
        );
    }
    let _ = writeln!(out);
}

/// `3 Unreachable, 1 NotOwned`, or `none`.
fn reasons(r: &RenewalFindings) -> String {
    if r.losses_by_reason.is_empty() {
        return "none".to_owned();
    }
    r.losses_by_reason
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join(", ")
}
