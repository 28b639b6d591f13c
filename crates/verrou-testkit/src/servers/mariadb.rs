//! A MariaDB server of the run's own, so that crashing it disturbs nobody.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, log_tail, quietly, sh, wait_ready};

/// `mariadbd` on a free port with its data in a temporary directory, root
/// without a password from 127.0.0.1. No option file is read, so the
/// machine's own configuration does not leak in; InnoDB keeps its default
/// `innodb_flush_log_at_trx_commit=1` (a commit is on disk when it returns).
#[derive(Debug)]
pub(in crate::torture) struct PrivateMariadb {
    pub(in crate::torture) port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMariadb {
    pub(in crate::torture) fn start() -> Result<Self, String> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("verrou-torture-mariadb-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut server = PrivateMariadb {
            port,
            dir,
            child: None,
        };
        let d = server.dir.display();
        // We run as root: `--user=root` is how mariadbd agrees to that.
        sh(&format!(
            "mariadb-install-db --no-defaults --user=root --datadir={d}/data --auth-root-authentication-method=normal --skip-test-db >{d}/install.log 2>&1 || {{ tail -5 {d}/install.log >&2; false; }}"
        ))?;
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let d = &self.dir;
        let mut child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg("--innodb-buffer-pool-size=64M")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start mariadbd: {e}"))?;
        let ping = format!("mariadb -uroot -h127.0.0.1 -P{} -e 'SELECT 1'", self.port);
        let ready = wait_ready(
            &format!("mariadbd on port {}", self.port),
            &mut child,
            Duration::from_secs(60),
            || quietly(&ping),
        );
        self.child = Some(child);
        ready.map_err(|e| format!("{e}; error log: {}", log_tail(&d.join("error.log"))))
    }

    /// A crash (SIGKILL) and a start on the same data directory: InnoDB
    /// recovers from its redo log.
    pub(in crate::torture) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn kill(&mut self) {
        super::crash(self.child.take());
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
