//! A DynamoDB emulator of the run's own, so that crashing it disturbs nobody.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, log_tail, wait_ready};

/// dynalite on a free port with its tables in LevelDB on disk (`--path`),
/// started from the copy `cargo xtask services up dynamodb` installs into
/// this checkout.
#[derive(Debug)]
pub(in crate::torture) struct PrivateDynalite {
    pub(in crate::torture) port: u16,
    cli: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateDynalite {
    pub(in crate::torture) fn start() -> Result<Self, String> {
        let cli = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/services/dynalite/node_modules/dynalite/cli.js");
        if !cli.exists() {
            return Err(format!(
                "{} missing: run `cargo xtask services up dynamodb` (it installs dynalite into this checkout)",
                cli.display()
            ));
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("verrou-torture-dynalite-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut emulator = PrivateDynalite {
            port,
            cli,
            dir,
            child: None,
        };
        emulator.spawn()?;
        Ok(emulator)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("dynalite.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        // Table state changes are instant, as in `cargo xtask services`.
        let mut child = Command::new("node")
            .arg(&self.cli)
            .args(["--host", "127.0.0.1", "--port", &port, "--path"])
            .arg(self.dir.join("db"))
            .args(["--createTableMs", "0", "--deleteTableMs", "0"])
            .args(["--updateTableMs", "0"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot start dynalite: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = wait_ready(
            &format!("dynalite on port {port}"),
            &mut child,
            Duration::from_secs(30),
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        );
        self.child = Some(child);
        ready.map_err(|e| format!("{e}; log: {}", log_tail(&log_path)))
    }

    /// A crash (SIGKILL) and a start from the LevelDB files it left behind.
    pub(in crate::torture) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn kill(&mut self) {
        super::crash(self.child.take());
    }
}

impl Drop for PrivateDynalite {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
