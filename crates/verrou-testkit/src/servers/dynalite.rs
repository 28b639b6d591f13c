//! Finding the DynamoDB emulator (dynalite) without knowing where the source
//! tree is.

use std::path::PathBuf;
use std::process::Command;

/// A command that runs dynalite; add its arguments (`--port`, `--path`...).
///
/// Found, in order, through `VERROU_DYNALITE` (the path of dynalite's
/// `cli.js`, or of an executable; the workspace's `.cargo/config.toml` points
/// it at the copy `cargo xtask services up dynamodb` installs), then a
/// `dynalite` executable on `PATH`.
///
/// # Errors
/// Neither is there: the message says how to install it.
pub fn dynalite_command() -> Result<Command, String> {
    if let Some(path) = std::env::var_os("VERROU_DYNALITE").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.exists() {
            return Err(format!(
                "VERROU_DYNALITE={} does not exist: run `cargo xtask services up dynamodb`, \
                 which installs dynalite there",
                path.display()
            ));
        }
        return Ok(if path.extension().is_some_and(|e| e == "js") {
            let mut node = Command::new("node");
            node.arg(path);
            node
        } else {
            Command::new(path)
        });
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("dynalite"))
        .find(|candidate| candidate.is_file());
    on_path.map(Command::new).ok_or_else(|| {
        "dynalite not found: set VERROU_DYNALITE or put dynalite on PATH \
         (`cargo xtask services up dynamodb` installs it for this checkout)"
            .to_owned()
    })
}
