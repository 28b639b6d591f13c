//! Servers that speak TLS with a certificate authority made for the tests:
//! [`TestCa`] (generated once with the `openssl` command), [`TlsRedis`] (one
//! `redis-server` with only a TLS port, or a small TLS Cluster of them) and
//! [`dynalite_tls`] (the DynamoDB emulator over HTTPS).
//!
//! The CA exists only to let tests check what a client trusts: a server
//! certificate for `localhost` and `127.0.0.1` signed by it, and a second,
//! unrelated CA that must be refused. Nothing here is a secret.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::dynalite::{Dynalite, DynaliteBuilder, dynalite_command};
use super::process::{crash, free_port, log_tail, poll_until, port_open, wait_ready};

/// How long a starting server may take to complete a TLS handshake.
const WAIT: Duration = Duration::from_secs(20);

/// The names the server certificate is valid for: what the tests connect
/// to. `127.0.0.2` is deliberately absent (the hostname-mismatch tests).
const SERVER_NAMES: &str = "DNS:localhost,IP:127.0.0.1";

/// Ten years: generated once per checkout, never renewed.
const DAYS: &str = "3650";

/// A certificate authority for tests, and what it signed: PEM files in one
/// directory.
///
/// | file | what |
/// |---|---|
/// | `ca.pem` | the CA certificate clients are told to trust |
/// | `server.pem`, `server-key.pem` | a server certificate for `localhost` and `127.0.0.1`, signed by the CA |
/// | `other-ca.pem` | an unrelated CA: trusting only it must fail |
///
/// P-256 keys: quick to generate, and every TLS stack in the workspace
/// (rustls, OpenSSL in redis-server, node in dynalite) takes them.
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    /// The machine's test CA: the directory of `VERROU_TEST_CA` when set,
    /// else [`TestCa::default_dir`]. Nothing is generated:
    /// `cargo xtask services up redis-tls` (or `dynamodb-tls`) does that.
    pub fn from_env() -> TestCa {
        let dir = std::env::var_os("VERROU_TEST_CA")
            .filter(|ca| !ca.is_empty())
            .and_then(|ca| PathBuf::from(ca).parent().map(Path::to_owned))
            .unwrap_or_else(TestCa::default_dir);
        TestCa { dir }
    }

    /// Where the test CA lives when `VERROU_TEST_CA` is not set: one
    /// directory per machine (`test-tls` in [`machine_dir`](super::machine_dir),
    /// `~/.cache/verrou/test-tls`), not per checkout. The TLS
    /// servers `cargo xtask services up` starts on fixed ports are shared by
    /// every checkout on the machine, so every checkout must trust the same
    /// CA: a second checkout (CI's clean clone, say) then uses the running
    /// servers instead of finding them signed by a CA it does not know.
    pub fn default_dir() -> PathBuf {
        super::machine_dir().join("test-tls")
    }

    /// The CA files in `dir`, as they are: nothing is generated.
    pub fn at(dir: impl Into<PathBuf>) -> TestCa {
        TestCa { dir: dir.into() }
    }

    /// The CA in `dir`, generated there first if `dir` does not hold one.
    ///
    /// Generation happens in a sibling directory renamed into place, so a
    /// reader never sees half a CA and two generators racing keep one
    /// consistent set (the loser's is discarded).
    ///
    /// # Errors
    /// `openssl` is missing or failed, or the directory cannot be written.
    pub fn ensure(dir: impl Into<PathBuf>) -> Result<TestCa, String> {
        let ca = TestCa { dir: dir.into() };
        if ca.is_complete() {
            return Ok(ca);
        }
        let parent = ca.dir.parent().ok_or("the CA directory has no parent")?;
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let staging = parent.join(format!(
            ".{}-{}",
            ca.dir.file_name().and_then(|n| n.to_str()).unwrap_or("tls"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
        let generated = generate(&staging);
        if generated.is_ok() {
            // An empty directory left by someone is replaced; a complete one
            // (another generator won) makes this rename fail, which is fine.
            let _ = std::fs::remove_dir(&ca.dir);
            let _ = std::fs::rename(&staging, &ca.dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        generated?;
        if ca.is_complete() {
            Ok(ca)
        } else {
            Err(format!(
                "{} exists but holds no complete test CA: remove it and retry",
                ca.dir.display()
            ))
        }
    }

    fn is_complete(&self) -> bool {
        [
            self.ca_file(),
            self.server_cert(),
            self.server_key(),
            self.other_ca_file(),
        ]
        .iter()
        .all(|file| file.is_file())
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`: the certificate authority to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `other-ca.pem`: a CA that signed nothing the servers use.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// `server.pem`: the servers' certificate (`localhost`, `127.0.0.1`).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// `server-key.pem`: the servers' private key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// Whether a TLS server on 127.0.0.1:`port` completes a handshake with
    /// a client that trusts only this CA and expects the name `localhost`
    /// (`openssl s_client`): the server is up *and* uses this CA's
    /// certificate.
    pub fn handshake_succeeds(&self, port: u16) -> bool {
        Command::new("openssl")
            .args(["s_client", "-brief", "-verify_return_error"])
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .args(["-verify_hostname", "localhost", "-CAfile"])
            .arg(self.ca_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

/// Writes the CA, the server certificate and the other CA into `dir`.
fn generate(dir: &Path) -> Result<(), String> {
    let in_dir = |name: &str| dir.join(name);
    for (name, subject) in [
        ("ca", "verrou test CA"),
        ("other-ca", "verrou unrelated CA"),
    ] {
        openssl(
            &["req", "-x509", "-new", "-nodes", "-days", DAYS],
            &[
                ("-newkey", "ec".as_ref()),
                ("-pkeyopt", "ec_paramgen_curve:prime256v1".as_ref()),
                ("-subj", format!("/CN={subject}").as_ref()),
                ("-keyout", in_dir(&format!("{name}-key.pem")).as_os_str()),
                ("-out", in_dir(&format!("{name}.pem")).as_os_str()),
            ],
        )?;
    }
    openssl(
        &["req", "-new", "-nodes"],
        &[
            ("-newkey", "ec".as_ref()),
            ("-pkeyopt", "ec_paramgen_curve:prime256v1".as_ref()),
            ("-subj", "/CN=localhost".as_ref()),
            ("-keyout", in_dir("server-key.pem").as_os_str()),
            ("-out", in_dir("server.csr").as_os_str()),
        ],
    )?;
    // What webpki (rustls) insists on for a server certificate: the names in
    // subjectAltName (the CN is ignored), not a CA, meant for servers. Also
    // for clients: Redis Cluster nodes present it to each other on the TLS
    // bus, which always asks for a client certificate.
    let extensions = in_dir("server.ext");
    std::fs::write(
        &extensions,
        format!(
            "subjectAltName = {SERVER_NAMES}\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth, clientAuth\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", extensions.display()))?;
    openssl(
        &["x509", "-req", "-days", DAYS, "-set_serial", "2"],
        &[
            ("-in", in_dir("server.csr").as_os_str()),
            ("-CA", in_dir("ca.pem").as_os_str()),
            ("-CAkey", in_dir("ca-key.pem").as_os_str()),
            ("-extfile", extensions.as_os_str()),
            ("-out", in_dir("server.pem").as_os_str()),
        ],
    )
}

fn openssl(args: &[&str], options: &[(&str, &std::ffi::OsStr)]) -> Result<(), String> {
    let mut command = Command::new("openssl");
    command.args(args);
    for (option, value) in options {
        command.arg(option).arg(value);
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl (install it): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A `redis-server` whose only port speaks TLS (`--port 0 --tls-port`),
/// with the [`TestCa`]'s server certificate, clients not asked for one, and
/// no persistence. Listens on 127.0.0.1 and, where the system has it, on
/// 127.0.0.2: an address that is not in the certificate.
///
/// By default a child of this process on a free port, in a fresh temporary
/// directory; dropping the handle kills it and removes the directory.
#[derive(Debug)]
pub struct TlsRedis {
    port: u16,
    ca: TestCa,
    dir: PathBuf,
    remove_dir: bool,
    child: Option<Child>,
}

/// Options of a [`TlsRedis`]; [`start`](Self::start) starts it.
#[derive(Debug, Clone)]
#[must_use]
pub struct TlsRedisBuilder {
    ca: TestCa,
    port: Option<u16>,
    dir: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    cluster_bus_port: Option<u16>,
}

impl TlsRedis {
    /// Options: the port, the directory, daemonizing.
    pub fn builder(ca: &TestCa) -> TlsRedisBuilder {
        TlsRedisBuilder {
            ca: ca.clone(),
            port: None,
            dir: None,
            pid_file: None,
            cluster_bus_port: None,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://localhost:<port>`: the name its certificate carries.
    pub fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }

    /// Runs `redis-cli` over TLS (trusting the test CA) and returns its
    /// output, empty when it failed.
    pub fn cli(&self, args: &[&str]) -> String {
        tls_cli(&self.ca, self.port, args).unwrap_or_default()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        // A daemonized server has no child here: it is meant to outlive us.
        if self.child.is_some() {
            crash(self.child.take());
            if self.remove_dir {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

impl TlsRedisBuilder {
    /// Listen on `port` (default: a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keep the server's files (its log) in `dir`, created if missing and
    /// left behind (default: a fresh temporary directory, removed on drop).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Daemonize, writing the pid to `pid_file`: the server outlives this
    /// process (`cargo xtask services`).
    pub fn daemonize(mut self, pid_file: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(pid_file.into());
        self
    }

    /// A Cluster node whose bus also speaks TLS (`--tls-cluster yes`) on
    /// `bus_port` (given: the default, the port + 10000, may not exist for
    /// a free port); see [`TlsRedisCluster`].
    fn cluster_node(mut self, bus_port: u16) -> Self {
        self.cluster_bus_port = Some(bus_port);
        self
    }

    /// Starts the server and waits until a TLS `PING` trusting the test CA
    /// is answered.
    ///
    /// # Errors
    /// `redis-server` is missing or built without TLS, the CA files are
    /// missing, or the server did not answer within 20 s (the message ends
    /// with its log).
    pub fn start(self) -> Result<TlsRedis, String> {
        for file in [self.ca.ca_file(), self.ca.server_cert()] {
            if !file.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo xtask services up redis-tls`, which generates \
                     the test CA",
                    file.display()
                ));
            }
        }
        let port = match self.port {
            Some(port) => port,
            None => free_port()?,
        };
        let (dir, remove_dir) = match self.dir {
            Some(dir) => (dir, false),
            None => (
                std::env::temp_dir()
                    .join(format!("verrou-redis-tls-{}-{port}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = dir.join("redis.log");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            // `-`: an address to skip when the system lacks it.
            .args(["--bind", "127.0.0.1", "-127.0.0.2"])
            .arg("--tls-cert-file")
            .arg(self.ca.server_cert())
            .arg("--tls-key-file")
            .arg(self.ca.server_key())
            .arg("--tls-ca-cert-file")
            .arg(self.ca.ca_file())
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(bus_port) = self.cluster_bus_port {
            command
                .args(["--cluster-enabled", "yes", "--tls-cluster", "yes"])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--cluster-node-timeout", "5000"])
                .arg("--cluster-config-file")
                .arg(dir.join("nodes.conf"));
        }
        let what = format!("TLS redis-server on port {port}");
        let ca = self.ca.clone();
        let answers = || tls_cli(&ca, port, &["PING"]).is_some_and(|out| out.trim() == "PONG");
        let failed = |e: String| format!("{e}; log: {}", log_tail(&log));
        let mut server = TlsRedis {
            port,
            ca: self.ca.clone(),
            dir: dir.clone(),
            remove_dir,
            child: None,
        };
        if let Some(pid_file) = &self.pid_file {
            let status = command
                .args(["--daemonize", "yes", "--pidfile"])
                .arg(pid_file)
                .status()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            if !status.success() {
                return Err(failed(format!("{what} exited ({status})")));
            }
            poll_until(&what, WAIT, answers).map_err(failed)?;
            return Ok(server);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let ready = wait_ready(&what, &mut child, WAIT, answers);
        server.child = Some(child);
        ready.map_err(failed)?;
        Ok(server)
    }
}

/// `redis-cli --tls` on 127.0.0.1:`port`, trusting the test CA: its output,
/// if it ran and succeeded.
fn tls_cli(ca: &TestCa, port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(ca.ca_file())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // redis-cli exits 0 on a server error reply; only a real answer counts.
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

/// A Redis Cluster whose client and bus ports speak only TLS: three
/// primaries, no replicas (what a TLS client needs to follow redirections
/// and discover nodes, at the lowest cost), children of this process on
/// free ports, killed on drop. Nodes announce `127.0.0.1`, which the test
/// certificate names.
#[derive(Debug)]
pub struct TlsRedisCluster {
    nodes: Vec<TlsRedis>,
}

impl TlsRedisCluster {
    /// Starts three TLS nodes, gives each a third of the slots and
    /// introduces them (`CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET` with the bus
    /// port: `redis-cli --cluster create` assumes the port + 10000), then
    /// waits until every node says `cluster_state:ok`.
    ///
    /// # Errors
    /// A node did not start, or the Cluster did not form within 20 s.
    pub fn start(ca: &TestCa) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut bus_ports = Vec::new();
        for _ in 0..3 {
            // Both free now, and distinct; the node binds them at once, so
            // the next node's picks cannot collide with them.
            let port = free_port()?;
            let bus_port = std::iter::repeat_with(free_port)
                .take(10)
                .find(|bus| bus.as_ref().is_ok_and(|bus| *bus != port))
                .ok_or("no second free port")??;
            nodes.push(
                TlsRedis::builder(ca)
                    .port(port)
                    .cluster_node(bus_port)
                    .start()?,
            );
            bus_ports.push(bus_port);
        }
        let command = |node: &TlsRedis, args: &[&str]| {
            let out = node.cli(args);
            if out.trim() == "OK" {
                Ok(())
            } else {
                Err(format!(
                    "{} on port {}: {out:?}",
                    args.join(" "),
                    node.port()
                ))
            }
        };
        for (node, (first, last)) in
            nodes
                .iter()
                .zip([("0", "5460"), ("5461", "10922"), ("10923", "16383")])
        {
            command(node, &["CLUSTER", "ADDSLOTSRANGE", first, last])?;
        }
        for (node, bus_port) in nodes.iter().zip(&bus_ports).skip(1) {
            let (port, bus_port) = (node.port().to_string(), bus_port.to_string());
            command(
                &nodes[0],
                &["CLUSTER", "MEET", "127.0.0.1", &port, &bus_port],
            )?;
        }
        poll_until("the TLS Cluster to form", WAIT, || {
            nodes
                .iter()
                .all(|node| node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        })?;
        Ok(TlsRedisCluster { nodes })
    }

    /// `rediss-cluster://localhost:<first port>`: one node is enough, the
    /// others are discovered.
    pub fn url(&self) -> String {
        format!("rediss-cluster://localhost:{}", self.nodes[0].port())
    }

    /// The nodes' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(TlsRedis::port).collect()
    }
}

/// dynalite serving HTTPS with the [`TestCa`]'s server certificate (its
/// `--ssl` option, with `--key` and `--cert` given as PEM text), on
/// 127.0.0.1: add the port and the rest with the builder's options. Its URL
/// is `https://localhost:<port>`.
///
/// dynalite's `--ssl` alone serves a self-signed certificate shipped in its
/// package (for `localhost`, expired or not depending on the release); the
/// key and certificate given here replace it, so tests trust the same CA for
/// every TLS server.
///
/// # Errors
/// dynalite is not installed (see [`dynalite_command`]) or the CA files
/// cannot be read.
pub fn dynalite_tls(ca: &TestCa) -> Result<DynaliteBuilder, String> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (run `cargo xtask services up dynamodb-tls`, which generates the \
                 test CA)",
                path.display()
            )
        })
    };
    let mut command = dynalite_command()?;
    // dynalite hands its parsed arguments to node's `https.createServer`,
    // which wants the PEM text itself, not a path. `--name=value` keeps a
    // value that starts with dashes a value.
    command
        .arg("--ssl")
        .arg(format!("--key={}", read(ca.server_key())?))
        .arg(format!("--cert={}", read(ca.server_cert())?));
    Ok(Dynalite::builder().command(command))
}

/// Whether something accepts connections on 127.0.0.1:`port` and completes
/// a TLS handshake with `ca`'s certificate (see
/// [`TestCa::handshake_succeeds`]); `false` when the port is closed.
pub fn tls_port_up(ca: &TestCa, port: u16) -> bool {
    port_open(port) && ca.handshake_succeeds(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> Option<TestCa> {
        let dir = std::env::temp_dir().join(crate::unique("verrou-test-ca"));
        crate::require_service("openssl", TestCa::ensure(dir))
    }

    #[test]
    fn a_generated_ca_is_complete_and_kept() {
        let Some(ca) = ca() else {
            return;
        };
        let first = std::fs::read(ca.ca_file()).unwrap();
        let again = TestCa::ensure(ca.dir()).unwrap();
        assert_eq!(std::fs::read(again.ca_file()).unwrap(), first);
        assert_ne!(std::fs::read(ca.other_ca_file()).unwrap(), first);
        let _ = std::fs::remove_dir_all(ca.dir());
    }

    #[test]
    fn a_private_tls_redis_answers_only_with_its_ca() {
        let Some(ca) = ca() else {
            return;
        };
        let Some(server) = crate::require_service("redis-server", TlsRedis::builder(&ca).start())
        else {
            return;
        };
        assert_eq!(server.cli(&["PING"]).trim(), "PONG");
        assert!(ca.handshake_succeeds(server.port()));
        let wrong = Command::new("openssl")
            .args(["s_client", "-brief", "-verify_return_error"])
            .args(["-connect", &format!("127.0.0.1:{}", server.port())])
            .arg("-CAfile")
            .arg(ca.other_ca_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!wrong.success());
        let port = server.port();
        drop(server);
        assert!(!port_open(port));
        let _ = std::fs::remove_dir_all(ca.dir());
    }
}
