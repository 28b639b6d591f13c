//! A MariaDB server of its own, so that crashing it disturbs nobody.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{crash, free_port, fresh_temp_dir, log_tail, quietly, sh, wait_ready};

/// `mariadbd` on a free port with its data in a temporary directory, root
/// without a password from 127.0.0.1. No option file is read, so the
/// machine's own configuration does not leak in; InnoDB keeps its default
/// `innodb_flush_log_at_trx_commit=1` (a commit is on disk when it returns).
/// Dropping the handle kills it and removes its data.
#[derive(Debug)]
pub struct Mariadb {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Mariadb {
    /// Creates a data directory (`mariadb-install-db`) and starts `mariadbd`
    /// on it.
    ///
    /// # Errors
    /// The MariaDB programs are missing, or the server did not answer within
    /// 60 s (the message ends with its error log).
    pub fn start() -> Result<Self, String> {
        let port = free_port()?;
        let dir = fresh_temp_dir(&format!("verrou-mariadb-{port}"))?;
        let mut server = Mariadb {
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

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// `CREATE DATABASE IF NOT EXISTS <name>`.
    ///
    /// # Errors
    /// The `mariadb` client failed.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        sh(&format!(
            "mariadb -uroot -h127.0.0.1 -P{} -e 'CREATE DATABASE IF NOT EXISTS {name}'",
            self.port
        ))
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
    ///
    /// # Errors
    /// The server did not come back within 60 s.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn kill(&mut self) {
        crash(self.child.take());
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::port_open;

    #[test]
    fn a_private_server_recovers_a_committed_table_after_a_crash() {
        let Some(mut server) = crate::require_service("MariaDB programs", Mariadb::start()) else {
            return;
        };
        server.create_database("recovery").unwrap();
        let client = format!("mariadb -uroot -h127.0.0.1 -P{} recovery", server.port());
        sh(&format!(
            "{client} -e 'CREATE TABLE t (v INT) ENGINE=InnoDB; INSERT INTO t VALUES (7)'"
        ))
        .unwrap();
        server.restart().unwrap();
        assert!(quietly(&format!(
            "{client} -N -e 'SELECT v FROM t' | grep -qx 7"
        )));
        let port = server.port();
        drop(server);
        assert!(!port_open(port));
    }
}
