//! A PostgreSQL server of its own, so that crashing it disturbs nobody.

use std::path::PathBuf;

use super::process::{free_port, sh};

/// A PostgreSQL server (`initdb`, fsync on) on a free port with its data in
/// a temporary directory, user `postgres` trusted from 127.0.0.1. Started
/// with the machine's own binaries (`/usr/lib/postgresql/<version>/bin`) as
/// the `postgres` user, so the process running it must be root. Dropping
/// the handle stops it and removes its data.
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl Postgres {
    /// Creates a cluster and starts it.
    ///
    /// # Errors
    /// No PostgreSQL binaries, or `initdb` or `pg_ctl start` failed.
    pub fn start() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL binaries: {e}"))?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .ok_or("no initdb under /usr/lib/postgresql")?;
        let port = free_port()?;
        // Outside any checkout: the server runs as `postgres`, which must
        // own its data directory.
        let dir = std::env::temp_dir().join(format!("verrou-postgres-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let pg = Postgres { port, dir, bin };
        let d = pg.dir.display();
        sh(&format!(
            "mkdir -p {d} && chown postgres {d} && su postgres -c '{}/initdb -D {d} -A trust -U postgres' >/dev/null",
            pg.bin.display()
        ))?;
        pg.ctl("start")?;
        Ok(pg)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// An immediate shutdown (no checkpoint, like a crash) and a start with
    /// WAL recovery.
    ///
    /// # Errors
    /// `pg_ctl restart` failed.
    pub fn restart(&self) -> Result<(), String> {
        self.ctl("restart")
    }

    fn ctl(&self, action: &str) -> Result<(), String> {
        let d = self.dir.display();
        sh(&format!(
            "su postgres -c \"{}/pg_ctl -D {d} -l {d}/log -w -m immediate -o '-p {} -k {d} -c listen_addresses=127.0.0.1' {action}\" >/dev/null",
            self.bin.display(),
            self.port
        ))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::port_open;

    #[test]
    fn a_private_server_restarts_on_its_port_and_goes_away() {
        // initdb runs as `postgres` through `su`: root only.
        let Some(pg) =
            crate::require_service("PostgreSQL binaries, run as root", Postgres::start())
        else {
            return;
        };
        let port = pg.port();
        assert!(port_open(port));
        pg.restart().unwrap();
        assert!(port_open(port));
        assert_eq!(
            pg.url(),
            format!("postgres://postgres@127.0.0.1:{port}/postgres")
        );
        drop(pg);
        assert!(!port_open(port));
    }
}
