//! `cargo xtask ci`: what `.ci/run` runs after starting the services.

use crate::process::run;

/// Format check, lints, then the README's test command.
pub fn all() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    run("cargo", &["nextest", "run", "--workspace", "--no-fail-fast"])?;
    run("cargo", &["test", "--workspace", "--doc"])
}
