//! Private servers: for tests and tools that kill, pause or restart a server,
//! so the shared ones are never disturbed, and for `cargo xtask services`,
//! which starts the shared ones with the same code.

mod dynalite;

pub use dynalite::dynalite_command;
