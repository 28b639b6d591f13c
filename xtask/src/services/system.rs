//! The servers Debian installs (PostgreSQL, MariaDB, Redis): started with the
//! machine's own commands when they are down. And the tools the tests need
//! besides servers (cargo-nextest, faketime), installed when missing, so that
//! a fresh machine needs only `cargo xtask services up`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Service;
use crate::process::{run, sh, wait_for_port};

const WAIT: Duration = Duration::from_secs(60);

pub fn postgres() -> Service {
    Service {
        name: "postgres",
        port: 5432,
        start: || {
            sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")?;
            wait_for_port("postgres", 5432, WAIT)?;
            // The tests use database `test`; create it if this machine lacks it.
            sh(
                "psql -h 127.0.0.1 -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 \
                || psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' \
                || su postgres -c \"createdb test\"",
            )
        },
        stop: || sh("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop"),
        healthy: None,
    }
}

pub fn mariadb() -> Service {
    Service {
        name: "mariadb",
        port: 3306,
        start: || {
            sh(
                "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null; \
                start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd",
            )?;
            wait_for_port("mariadb", 3306, WAIT)?;
            sh("mariadb -uroot -h127.0.0.1 -e 'CREATE DATABASE IF NOT EXISTS test'")
        },
        stop: || sh("mariadb-admin -uroot -h127.0.0.1 shutdown"),
        healthy: None,
    }
}

pub fn redis() -> Service {
    Service {
        name: "redis",
        port: 6379,
        start: || {
            sh(
                "mkdir -p /var/lib/redis /var/log/redis; redis-server --daemonize yes --bind 127.0.0.1 -::1 \
                --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
            )?;
            wait_for_port("redis", 6379, WAIT)
        },
        stop: || sh("redis-cli -p 6379 shutdown nosave"),
        healthy: None,
    }
}

/// A program the tests need that is not a server.
struct Tool {
    name: &'static str,
    /// What needs it, for the messages.
    needed_by: &'static str,
    installed: fn() -> bool,
    install: fn() -> Result<(), String>,
}

fn tools() -> [Tool; 2] {
    [
        Tool {
            name: "cargo-nextest",
            needed_by: "`cargo xtask test` and `cargo xtask ci`",
            installed: || {
                Command::new("cargo")
                    .args(["nextest", "--version"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
            install: || run("cargo", &["install", "--locked", "cargo-nextest"]),
        },
        Tool {
            name: "faketime",
            needed_by: "the DynamoDB torture run's skewed clocks (`cargo xtask torture`)",
            // The library is what the torture tool preloads; the package
            // installs it with the `faketime` program.
            installed: || on_path("faketime"),
            install: install_faketime,
        },
    ]
}

/// Checks each test tool and installs the missing ones. A tool that cannot
/// be installed is reported with what needs it; the services still start (most
/// tests run without it) unless `VERROU_REQUIRE_SERVICES=1` (CI), where it is
/// an error, as a missing server is.
pub fn test_tools() -> Result<(), String> {
    let mut missing = Vec::new();
    for tool in tools() {
        if (tool.installed)() {
            eprintln!("{}: installed", tool.name);
            continue;
        }
        eprintln!(
            "{}: missing (needed by {}); installing",
            tool.name, tool.needed_by
        );
        let outcome = (tool.install)().and_then(|()| {
            if (tool.installed)() {
                Ok(())
            } else {
                Err("installed, but still not found on PATH".to_owned())
            }
        });
        match outcome {
            Ok(()) => eprintln!("{}: installed", tool.name),
            Err(e) => {
                eprintln!(
                    "{}: NOT INSTALLED: {e}; {} will fail until it is",
                    tool.name, tool.needed_by
                );
                missing.push(tool.name);
            }
        }
    }
    let required = std::env::var("VERROU_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    if required && !missing.is_empty() {
        return Err(format!(
            "test tools missing with VERROU_REQUIRE_SERVICES=1: {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// `apt-get install faketime`, as root or through sudo; a machine without
/// apt-get is told what to install.
fn install_faketime() -> Result<(), String> {
    if !on_path("apt-get") {
        return Err(
            "no apt-get here: install libfaketime with the system's package manager".into(),
        );
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let sudo = if root {
        ""
    } else if on_path("sudo") {
        "sudo "
    } else {
        return Err("not root and no sudo: run `apt-get install faketime` as root".into());
    };
    sh(&format!(
        "{sudo}apt-get update -qq && {sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null"
    ))
}

/// Whether an executable `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_only_when_executable_there() {
        assert!(on_path("sh"));
        assert!(!on_path("verrou-no-such-program"));
        // A directory named like a program is not one.
        assert!(!is_executable(Path::new("/")));
    }
}
