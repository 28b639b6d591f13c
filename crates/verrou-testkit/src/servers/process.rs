//! What every server bootstrap needs: a free port, waiting with a bound, a
//! crash, the end of a log, a shell line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that nothing listens on right now, for a server
/// about to start there.
///
/// Taken at random from [`PRIVATE_PORTS`], below the kernel's ephemeral
/// range (32768-60999 on Linux): a port the kernel hands out (`bind` to
/// port 0) is from that range, and between this check and the server's own
/// `bind` any outgoing connection on the machine could take it as its local
/// port ("Address already in use": a private Redis Cluster failed so in
/// CI). Falls back to the kernel's choice when no port there is free.
///
/// # Errors
/// The system has no port to give.
pub fn free_port() -> Result<u16, String> {
    use std::hash::{BuildHasher, Hasher};

    let span = u64::from(PRIVATE_PORTS.end - PRIVATE_PORTS.start);
    // std's per-process random keys: no dependency for a random start.
    let start = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    for step in 0..256u64 {
        // A stride coprime with the span visits distinct ports.
        let offset = start.wrapping_add(step.wrapping_mul(7919)) % span;
        let port = PRIVATE_PORTS.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Where [`free_port`] looks: above every port the shared services use
/// (their highest, a Redis Cluster bus, is 17005) and below the kernel's
/// ephemeral range.
pub const PRIVATE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Whether a Redis-protocol server on `port` answers `PING` with `PONG`.
/// An inline command: no client program needed, and Valkey answers alike.
pub(super) fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && reply == *b"+PONG\r\n"
}

/// Polls `ready` every 50 ms until it holds, for at most `limit`; gives up at
/// once if `child` (the server being waited for) exits.
pub(super) fn wait_ready(
    what: &str,
    child: &mut Child,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited ({status})"));
        }
        if started.elapsed() > limit {
            return Err(format!("{what} not ready after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Polls `ready` every 50 ms until it holds, for at most `limit` (a server
/// that daemonized itself: there is no child to watch).
pub(super) fn poll_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > limit {
            return Err(format!("{what} not ready after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// SIGKILLs a server process (a crash: nothing flushed) and reaps it.
pub(super) fn crash(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The last lines of a server's log, for an error message.
pub(super) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Runs a shell line, its output inherited; fails on a non-zero exit.
pub(super) fn sh(line: &str) -> Result<(), String> {
    let status = Command::new("sh")
        .args(["-c", line])
        .status()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed: {status}"))
    }
}

/// Whether the shell line succeeds, its output discarded.
pub(super) fn quietly(line: &str) -> bool {
    Command::new("sh")
        .args(["-c", line])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `redis-cli -p port args...`: its output, if it ran and succeeded.
pub(super) fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh directory `<temp>/<name>`, emptied if an earlier run left it.
pub(super) fn fresh_temp_dir(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_free() {
        for _ in 0..20 {
            let port = free_port().unwrap();
            assert!(PRIVATE_PORTS.contains(&port), "{port}");
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }

    #[test]
    fn a_port_in_use_is_never_given() {
        let taken: Vec<TcpListener> = (0..50)
            .filter_map(|_| free_port().ok())
            .filter_map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        let in_use: Vec<u16> = taken
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        for _ in 0..200 {
            let port = free_port().unwrap();
            assert!(!in_use.contains(&port), "{port} is in use");
        }
    }
}
