//! PostgreSQL and MariaDB that accept only TLS connections over TCP, with
//! the [`TestCa`]'s server certificate: for the SQL stores' TLS tests.
//! Both negotiate TLS inside their own protocol (a client asks first), so a
//! server that also took plain text would let a client that silently falls
//! back pass; these refuse it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{crash, free_port, log_tail, poll_until, quietly, sh};
use super::tls::TestCa;

/// How long a starting server may take to accept a TLS client.
const WAIT: Duration = Duration::from_secs(60);

/// A PostgreSQL server with `ssl = on` whose `pg_hba.conf` takes TCP
/// connections only over TLS (`hostssl`, user `postgres` trusted, no
/// password), and local socket connections for administration. Run with the
/// machine's binaries (`/usr/lib/postgresql/<version>/bin`) as the
/// `postgres` user, so the process starting it must be root.
///
/// [`start`](Self::start) makes a private one (free port, temporary
/// directory, stopped and removed on drop); [`start_kept`](Self::start_kept)
/// one that outlives the handle, for `cargo xtask services`.
#[derive(Debug)]
pub struct TlsPostgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    kept: bool,
}

impl TlsPostgres {
    /// A private server on a free port in a fresh temporary directory.
    ///
    /// # Errors
    /// No PostgreSQL binaries, not root, the CA files missing, or `initdb`
    /// or `pg_ctl start` failed.
    pub fn start(ca: &TestCa) -> Result<Self, String> {
        let port = free_port()?;
        // Outside any checkout: the server runs as `postgres`, which must
        // own its data directory and reach it.
        let dir = std::env::temp_dir().join(format!("verrou-postgres-tls-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        Self::launch(ca, port, dir, false)
    }

    /// A server on `port` with its data in `dir` (created on first use,
    /// reused after), left running when the handle drops; stop it with
    /// [`TlsPostgres::stop_in`].
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_kept(ca: &TestCa, port: u16, dir: impl Into<PathBuf>) -> Result<Self, String> {
        Self::launch(ca, port, dir.into(), true)
    }

    fn launch(ca: &TestCa, port: u16, dir: PathBuf, kept: bool) -> Result<Self, String> {
        let bin = postgres_bin()?;
        let server = TlsPostgres {
            port,
            dir,
            bin,
            kept,
        };
        server.init(ca)?;
        server.ctl(&format!("-l {}/log start", server.dir.display()))?;
        let ready = poll_until(&format!("TLS PostgreSQL on port {port}"), WAIT, || {
            handshake(ca, "postgres", port)
        });
        ready.map_err(|e| format!("{e}; log: {}", log_tail(&server.dir.join("log"))))?;
        Ok(server)
    }

    /// `initdb` unless done, then the certificates and the TLS-only rules.
    fn init(&self, ca: &TestCa) -> Result<(), String> {
        let d = self.dir.display();
        if !self.dir.join("PG_VERSION").exists() {
            sh(&format!(
                "mkdir -p {d} && chown postgres {d} && chmod 700 {d} && \
                 su postgres -c '{}/initdb -D {d} -A trust -U postgres' >/dev/null",
                self.bin.display()
            ))?;
        }
        // PostgreSQL wants its key private to the user running it.
        for (from, to) in [
            (ca.server_cert(), "server.crt"),
            (ca.server_key(), "server.key"),
            (ca.ca_file(), "ca.crt"),
        ] {
            let target = self.dir.join(to);
            std::fs::copy(&from, &target).map_err(|e| format!("{}: {e}", from.display()))?;
            sh(&format!(
                "chown postgres {t} && chmod 600 {t}",
                t = target.display()
            ))?;
        }
        let hba = self.dir.join("pg_hba.conf");
        std::fs::write(
            &hba,
            "# Written by verrou-testkit: TCP over TLS only.\n\
             local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .map_err(|e| format!("{}: {e}", hba.display()))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgres://postgres@localhost:<port>/postgres` (add the driver's TLS
    /// options: `sslmode=verify-full` and the CA file, for libpq's names).
    pub fn url(&self) -> String {
        format!("postgres://postgres@localhost:{}/postgres", self.port)
    }

    /// Stops a server started by [`start_kept`](Self::start_kept) in `dir`
    /// (`pg_ctl stop -m fast`); nothing to do if it is not running.
    ///
    /// # Errors
    /// `pg_ctl stop` failed on a running server.
    pub fn stop_in(dir: &Path) -> Result<(), String> {
        if !dir.join("postmaster.pid").exists() {
            return Ok(());
        }
        let bin = postgres_bin()?;
        sh(&format!(
            "su postgres -c '{}/pg_ctl -D {} -w -m fast stop' >/dev/null",
            bin.display(),
            dir.display()
        ))
    }

    fn ctl(&self, action: &str) -> Result<(), String> {
        let d = self.dir.display();
        let options = format!(
            "-p {} -k {d} -c listen_addresses=127.0.0.1 -c ssl=on \
             -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key \
             -c ssl_ca_file={d}/ca.crt",
            self.port
        );
        sh(&format!(
            "su postgres -c \"{}/pg_ctl -D {d} -w -o '{options}' {action}\" >/dev/null",
            self.bin.display()
        ))
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        if !self.kept {
            let _ = Self::stop_in(&self.dir);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The machine's PostgreSQL programs.
fn postgres_bin() -> Result<PathBuf, String> {
    std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL binaries: {e}"))?
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("initdb").exists())
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".to_owned())
}

/// A MariaDB server with the test certificate (`--ssl-cert`, `--ssl-key`)
/// that refuses connections without TLS (`--require-secure-transport`),
/// root without a password from 127.0.0.1, database `test`. No option file
/// is read.
///
/// [`start`](Self::start) makes a private one (free port, temporary
/// directory, killed and removed on drop); [`start_kept`](Self::start_kept)
/// one in its own process group that outlives the handle, for `cargo xtask
/// services` (stop it by [`pid`](Self::pid)).
#[derive(Debug)]
pub struct TlsMariadb {
    port: u16,
    dir: PathBuf,
    pid: u32,
    /// A private server's process, killed on drop; `None` when kept.
    child: Option<Child>,
}

impl TlsMariadb {
    /// A private server on a free port in a fresh temporary directory.
    ///
    /// # Errors
    /// The MariaDB programs are missing, the CA files are missing, or the
    /// server did not accept a TLS client within 60 s.
    pub fn start(ca: &TestCa) -> Result<Self, String> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("verrou-mariadb-tls-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        Self::launch(ca, port, dir, false)
    }

    /// A server on `port` with its data in `dir` (created on first use,
    /// reused after), left running when the handle drops.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_kept(ca: &TestCa, port: u16, dir: impl Into<PathBuf>) -> Result<Self, String> {
        Self::launch(ca, port, dir.into(), true)
    }

    fn launch(ca: &TestCa, port: u16, dir: PathBuf, kept: bool) -> Result<Self, String> {
        let d = dir.display();
        if !dir.join("data/mysql").exists() {
            // We run as root: `--user=root` is how mariadbd agrees to that.
            sh(&format!(
                "mkdir -p {d} && mariadb-install-db --no-defaults --user=root --datadir={d}/data \
                 --auth-root-authentication-method=normal --skip-test-db >{d}/install.log 2>&1 \
                 || {{ tail -5 {d}/install.log >&2; false; }}"
            ))?;
        }
        let log = dir.join("error.log");
        let mut command = Command::new("mariadbd");
        command
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={d}/data"))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={d}/mysqld.sock"))
            .arg(format!("--pid-file={d}/mysqld.pid"))
            .arg(format!("--log-error={}", log.display()))
            .arg("--innodb-buffer-pool-size=64M")
            .arg(format!("--ssl-cert={}", ca.server_cert().display()))
            .arg(format!("--ssl-key={}", ca.server_key().display()))
            .arg(format!("--ssl-ca={}", ca.ca_file().display()))
            .arg("--require-secure-transport=ON")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if kept {
            // A Ctrl-C in the terminal that started it must not stop it.
            command.process_group(0);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start mariadbd: {e}"))?;
        let mut server = TlsMariadb {
            port,
            pid: child.id(),
            dir,
            // A kept server becomes nobody's child once xtask exits.
            child: (!kept).then_some(child),
        };
        let client = format!(
            "mariadb -uroot -h127.0.0.1 -P{port} --ssl --ssl-ca={} --ssl-verify-server-cert \
             -e 'CREATE DATABASE IF NOT EXISTS test'",
            ca.ca_file().display()
        );
        let ready = poll_until(&format!("TLS mariadbd on port {port}"), WAIT, || {
            quietly(&client)
        });
        if let Err(e) = ready {
            // Not left running, kept or not: nobody would know its pid.
            let _ = Command::new("kill")
                .args(["-9", &server.pid.to_string()])
                .status();
            server.child.take().map(|mut child| child.wait());
            return Err(format!("{e}; error log: {}", log_tail(&log)));
        }
        Ok(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `mysql://root@localhost:<port>/test` (add the driver's TLS options).
    pub fn url(&self) -> String {
        format!("mysql://root@localhost:{}/test", self.port)
    }
}

impl Drop for TlsMariadb {
    fn drop(&mut self) {
        if self.child.is_some() {
            crash(self.child.take());
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether a client trusting only `ca` and expecting the name `localhost`
/// completes a TLS handshake with the server on `port`, which speaks
/// `protocol` (`openssl s_client -starttls postgres|mysql`).
fn handshake(ca: &TestCa, protocol: &str, port: u16) -> bool {
    Command::new("openssl")
        .args(["s_client", "-brief", "-verify_return_error"])
        .args(["-starttls", protocol])
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(["-verify_hostname", "localhost", "-CAfile"])
        .arg(ca.ca_file())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether a TLS PostgreSQL with `ca`'s certificate answers on `port` and
/// can create a table (which writes to its data directory).
pub fn postgres_tls_up(ca: &TestCa, port: u16) -> bool {
    handshake(ca, "postgres", port)
        && serves(
            Command::new("psql")
                .arg(format!(
                    "host=localhost port={port} user=postgres dbname=postgres sslmode=verify-full \
             sslrootcert={}",
                    ca.ca_file().display()
                ))
                .args([
                    "-tAc",
                    "CREATE TABLE IF NOT EXISTS verrou_health (x int); DROP TABLE IF EXISTS verrou_health",
                ]),
        )
}

/// Whether a TLS MariaDB with `ca`'s certificate answers on `port` and can
/// create a table in its `test` database (which writes to its data
/// directory).
pub fn mariadb_tls_up(ca: &TestCa, port: u16) -> bool {
    handshake(ca, "mysql", port)
        && serves(
            Command::new("mariadb")
                .args(["--protocol=tcp", "-h", "localhost", "-P", &port.to_string()])
                .args(["-u", "root", "--ssl-verify-server-cert", "--ssl-ca"])
                .arg(ca.ca_file())
                .args([
                    "-e",
                    "CREATE TABLE IF NOT EXISTS test.verrou_health (x int); \
                     DROP TABLE IF EXISTS test.verrou_health",
                ]),
        )
}

/// Whether the client command succeeds. A server whose data directory was
/// deleted under it (its checkout removed) still completes a TLS handshake,
/// and even answers `USE test` from memory, but cannot create a table, so
/// `services up` starts a working one. Without the
/// client program there is nothing more to check.
fn serves(command: &mut Command) -> bool {
    match command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) => status.success(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> Option<TestCa> {
        let dir = std::env::temp_dir().join(crate::unique("verrou-sql-ca"));
        crate::require_service("openssl", TestCa::ensure(dir))
    }

    #[test]
    fn a_private_tls_postgres_takes_tls_and_refuses_plain_text() {
        let Some(ca) = ca() else { return };
        let started = TlsPostgres::start(&ca);
        let Some(server) = crate::require_service("PostgreSQL binaries, run as root", started)
        else {
            return;
        };
        assert!(postgres_tls_up(&ca, server.port()));
        let psql = |mode: &str| {
            format!(
                "psql 'host=localhost port={} user=postgres dbname=postgres sslmode={mode} \
                 sslrootcert={}' -tAc 'SELECT 1'",
                server.port(),
                ca.ca_file().display()
            )
        };
        assert!(quietly(&psql("verify-full")));
        assert!(!quietly(&psql("disable")), "plain text was accepted");
        drop(server);
        let _ = std::fs::remove_dir_all(ca.dir());
    }

    #[test]
    fn a_private_tls_mariadb_takes_tls_and_refuses_plain_text() {
        let Some(ca) = ca() else { return };
        let Some(server) = crate::require_service("MariaDB programs", TlsMariadb::start(&ca))
        else {
            return;
        };
        assert!(mariadb_tls_up(&ca, server.port()));
        let plain = format!(
            "mariadb -uroot -h127.0.0.1 -P{} --skip-ssl -e 'SELECT 1'",
            server.port()
        );
        assert!(!quietly(&plain), "plain text was accepted");
        drop(server);
        let _ = std::fs::remove_dir_all(ca.dir());
    }
}
