//! Local services the tests talk to, started without Docker.
//!
//! Each service knows how to tell whether it is up and how to start it; `up`
//! leaves a running service alone, so it is safe to call on a developer's
//! machine where the services already run.

pub mod compose;
mod dynamodb;
mod redis_cluster;
mod system;
mod tls;
mod valkey;

use std::path::{Path, PathBuf};

use crate::process::port_open;

pub const USAGE: &str = "usage: cargo xtask services <up|down|list|compose> [NAME...]
  up [NAME...]    start the named services (default: all) unless already running;
                  without NAME also installs the test tools that are missing
                  (cargo-nextest, faketime); one run at a time per machine
                  (a second waits: the ports are the machine's)
  down [NAME...]  stop the services xtask started itself
  list            show the services, their ports and whether they answer
  compose         write docker-compose.yml: the same services, for Docker
  NAME            postgres, mariadb, redis, redis-cluster, valkey, dynamodb,
                  redis-tls, dynamodb-tls, postgres-tls, mariadb-tls";

/// One service: a name, the port that proves it is up, and how to start and stop it.
pub struct Service {
    pub name: &'static str,
    pub port: u16,
    pub start: fn() -> Result<(), String>,
    pub stop: fn() -> Result<(), String>,
    /// A deeper check than an open port (a cluster whose nodes answer but
    /// which is not formed); `up` restarts a service that fails it.
    pub healthy: Option<fn() -> bool>,
}

impl Service {
    fn is_up(&self) -> bool {
        port_open(self.port) && self.healthy.is_none_or(|healthy| healthy())
    }
}

fn all() -> Vec<Service> {
    vec![
        system::postgres(),
        system::mariadb(),
        system::redis(),
        redis_cluster::service(),
        valkey::service(),
        dynamodb::dynamodb(),
        tls::redis(),
        tls::dynamodb(),
        tls::postgres(),
        tls::mariadb(),
    ]
}

/// Where services installed from a registry live: `target/services`, inside
/// this checkout (ignored by git) and shared by nothing else.
fn services_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/services")
}

fn selected(names: &[&str]) -> Result<Vec<Service>, String> {
    let services = all();
    if names.is_empty() {
        return Ok(services);
    }
    for name in names {
        if !services.iter().any(|s| s.name == *name) {
            let known: Vec<_> = services.iter().map(|s| s.name).collect();
            return Err(format!(
                "unknown service `{name}` (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(services
        .into_iter()
        .filter(|s| names.contains(&s.name))
        .collect())
}

/// Starts the named services (all by default) that are not already up; with
/// no names, also the test tools a fresh machine lacks.
pub fn up(names: &[&str]) -> Result<(), String> {
    let selected = selected(names)?;
    let _one_at_a_time = machine_lock(&verrou_testkit::servers::machine_dir())?;
    for service in selected {
        if service.is_up() {
            eprintln!("{}: already up on port {}", service.name, service.port);
            continue;
        }
        eprintln!("{}: starting", service.name);
        (service.start)().map_err(|e| format!("{}: {e}", service.name))?;
        eprintln!("{}: up on port {}", service.name, service.port);
    }
    if names.is_empty() {
        system::test_tools()?;
    }
    Ok(())
}

/// Holds this machine's `services up` lock until dropped: the services
/// listen on fixed ports shared by every checkout, so two runs at once (two
/// checkouts, or CI beside a developer) would race to start the same
/// servers and to install the same packages. A second run waits, then finds
/// them up. The lock is the operating system's, so it goes with the process
/// that held it, however it ended.
fn machine_lock(dir: &Path) -> Result<std::fs::File, String> {
    let path = dir.join("services-up.lock");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "waiting for another `cargo xtask services up` on this machine ({})",
                path.display()
            );
            file.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    Ok(file)
}

/// Stops the named services (all by default).
pub fn down(names: &[&str]) -> Result<(), String> {
    for service in selected(names)? {
        (service.stop)().map_err(|e| format!("{}: {e}", service.name))?;
    }
    Ok(())
}

/// Prints each service and whether it answers.
pub fn list() -> Result<(), String> {
    for service in all() {
        let state = if service.is_up() { "up" } else { "down" };
        println!("{:<14} port {:<5} {state}", service.name, service.port);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_waits_until_the_first_ones_lock_is_gone() {
        let dir = std::env::temp_dir().join(format!("verrou-xtask-lock-{}", std::process::id()));
        let held = machine_lock(&dir).unwrap();
        // Another open of the same file, as another process would have.
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("services-up.lock"))
            .unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other
            .try_lock()
            .expect("free once the first run's lock is dropped");
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
