//! Waiting for a condition with a bound, instead of sleeping and hoping.

use std::time::{Duration, Instant};

/// Polls `condition` every 20 ms until it holds.
///
/// The bound is generous on purpose: it only limits how long a failing test
/// hangs, it never measures speed.
///
/// # Panics
/// When `condition` still does not hold after `bound`, naming `what`.
pub async fn eventually<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < bound,
            "timed out after {bound:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
