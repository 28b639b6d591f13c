//! The torture harness itself: a correct store passes, a broken one is caught.

use std::path::PathBuf;

use verrou_testkit::StoreKind;
use verrou_torture::case::{Case, Target};
use verrou_torture::runner::{RunOptions, run_store};

fn options(ops: u64) -> RunOptions {
    RunOptions {
        ops,
        short: true,
        out: std::env::temp_dir().join(format!("verrou-torture-test-{}", std::process::id())),
        worker_exe: PathBuf::from(env!("CARGO_BIN_EXE_torture_worker")),
        progress: None,
    }
}

#[test]
fn the_memory_store_survives_a_short_torture() {
    let run = run_store(Case::plain(Target::Store(StoreKind::Memory)), &options(600));
    assert!(run.failure.is_none(), "{:?}", run.failure);
    assert!(run.findings.ops >= 600);
    assert_eq!(
        run.findings.violation_total(),
        0,
        "{:#?}",
        run.findings.violations
    );
    assert_eq!(run.findings.money_lost, 0);
}

#[test]
fn a_store_that_grants_every_acquire_is_caught() {
    let run = run_store(Case::plain(Target::Broken), &options(300));
    assert!(run.failure.is_none(), "{:?}", run.failure);
    let f = &run.findings;
    assert!(
        f.violation_counts
            .get("lease granted while another was live")
            .copied()
            .unwrap_or(0)
            > 0,
        "{f:#?}"
    );
    // The fencing tokens still protect the resource: what the broken lock let
    // through, the resource refused.
    assert!(f.reads_rejected + f.writes_rejected > 0, "{f:#?}");
    assert_eq!(f.money_lost, 0);
}

#[test]
fn renewing_holders_on_the_memory_store_never_write_unsignalled() {
    let run = run_store(
        Case::renewal(Target::Store(StoreKind::Memory)),
        &options(24),
    );
    assert!(run.failure.is_none(), "{:?}", run.failure);
    let f = &run.findings;
    assert_eq!(f.violation_total(), 0, "{:#?}", f.violations);
    assert_eq!(f.money_lost, 0);
    let renewal = f.renewal.as_ref().expect("renewal findings");
    assert!(renewal.renewals > 0, "{renewal:#?}");
    assert_eq!(renewal.late_writes_unsignalled, 0, "{renewal:#?}");
}
