//! Workers whose wall clock runs ahead, for the one store that judges expiry
//! by its clients' clocks (DynamoDB).
//!
//! The clock is moved with libfaketime (`LD_PRELOAD`), so the store under
//! test reads the skewed time through the ordinary `SystemTime::now()` and
//! needs no test hook. Only the wall clock moves: tokio's timers and the
//! lock's own expiry view run on the monotonic clock, as they would on a
//! machine whose NTP is off.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use verrou_testkit::StoreKind;

use crate::case::Target;

/// How far ahead a skewed worker's wall clock runs: more than the torture
/// TTL, so that without a margin it sees every running lease as over.
pub const AHEAD: Duration = Duration::from_millis(500);

/// Tells a worker how far ahead its clock was set, so that its history is
/// written on the true timeline the checker compares.
const AHEAD_ENV: &str = "VERROU_TORTURE_CLOCK_AHEAD_US";

const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
];

/// Whether worker `id` of a run against `target` runs with its clock ahead:
/// every other worker, on the DynamoDB runs (renewing or not).
pub fn applies(target: Target, id: u32) -> bool {
    target == Target::Store(StoreKind::DynamoDb) && id.is_multiple_of(2)
}

/// Sets `command`'s wall clock [`AHEAD`].
///
/// # Errors
/// When libfaketime is not installed (Debian package `faketime`).
pub fn apply(command: &mut Command) -> Result<(), String> {
    let library = LIBFAKETIME
        .iter()
        .find(|path| Path::new(path).exists())
        .ok_or("workers with a skewed clock need libfaketime: `apt-get install faketime`")?;
    command
        .env("LD_PRELOAD", library)
        .env("FAKETIME", format!("+{:.3}", AHEAD.as_secs_f64()))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env(AHEAD_ENV, AHEAD.as_micros().to_string());
    Ok(())
}

/// Microseconds this process's wall clock was set ahead (0 for a worker
/// with a true clock, and for the runner).
pub fn ahead_us() -> u64 {
    static AHEAD_US: OnceLock<u64> = OnceLock::new();
    *AHEAD_US.get_or_init(|| {
        std::env::var(AHEAD_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}
