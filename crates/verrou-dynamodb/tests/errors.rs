//! Failures are `Store` errors, never `NotOwned` or `Held`; bad keys and bad
//! configuration fail before anything is sent; secrets stay out of `Debug`.

mod support;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use verrou_core::{Expiry, LockError, LockStore};

/// A dynalite of this test's own on a free port, so stopping it cannot
/// disturb the shared emulator other tests use.
struct PrivateEmulator {
    child: Child,
    port: u16,
}

impl PrivateEmulator {
    /// Starts on `port`, or on a free port when `None`.
    fn start(port: Option<u16>) -> Result<Self, String> {
        let cli = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/services/dynalite/node_modules/dynalite/cli.js");
        if !cli.exists() {
            return Err(format!(
                "{} missing: run `cargo xtask services up dynamodb`",
                cli.display()
            ));
        }
        let port = match port {
            Some(port) => port,
            None => TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port(),
        };
        let child = Command::new("node")
            .arg(&cli)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--createTableMs",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("node: {e}"))?;
        let mut emulator = PrivateEmulator { child, port };
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                emulator.stop();
                return Err(format!("private dynalite did not open port {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(emulator)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `call`, which must fail with a `Store` error well within a bound.
async fn assert_store_error<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, LockError>>,
) {
    let result = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not fail within 15 s"));
    match result {
        Err(LockError::Store {
            store: "dynamodb", ..
        }) => {}
        other => panic!("{what}: expected a dynamodb store error, got {other:?}"),
    }
}

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

#[tokio::test]
async fn a_stopped_emulator_gives_store_errors_not_not_owned() {
    let Some(mut emulator) =
        verrou_conformance::require_service("dynalite", PrivateEmulator::start(None))
    else {
        return;
    };
    let store = support::options_for(&emulator.endpoint())
        .build()
        .await
        .unwrap();
    store.acquire("k", "a", TTL).await.unwrap();
    store.extend("k", "a", TTL).await.unwrap();

    emulator.stop();
    assert_store_error("release", store.release("k", "a")).await;
    assert_store_error("extend", store.extend("k", "a", TTL)).await;
    assert_store_error("acquire", store.acquire("other", "a", TTL)).await;
    assert_store_error("exists", store.is_locked("k")).await;
    assert_store_error("force release", store.force_release("k")).await;
    // Key rules are checked before anything is sent: still InvalidKey.
    let oversized = "k".repeat(2049);
    assert!(matches!(
        store.acquire(&oversized, "a", TTL).await,
        Err(LockError::InvalidKey { .. })
    ));

    // Back on the same port but empty (dynalite keeps tables in memory): the
    // same store value works again and a missing table is a store error, not
    // "somebody else holds it".
    let restarted = PrivateEmulator::start(Some(emulator.port)).unwrap();
    assert_store_error("release on a missing table", store.release("k", "a")).await;
    assert_store_error("acquire on a missing table", store.acquire("k", "a", TTL)).await;
    drop(restarted);
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_the_build_quickly() {
    // A port nothing listens on (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let build = support::options_for(&format!("http://127.0.0.1:{port}")).build();
    assert_store_error("build", build).await;
}

#[cfg(not(feature = "rustls"))]
#[tokio::test]
async fn https_without_the_rustls_feature_is_a_configuration_error() {
    for options in [
        support::options_for("https://dynamodb.eu-west-3.amazonaws.com"),
        verrou_dynamodb::DynamoDbStore::builder()
            .region("eu-west-3")
            .credentials("id", "secret"),
    ] {
        let error = options.build().await.unwrap_err();
        assert!(
            matches!(
                error,
                LockError::InvalidConfig {
                    store: "dynamodb",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn https_with_the_rustls_feature_gets_as_far_as_connecting() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let build = support::options_for(&format!("https://127.0.0.1:{port}")).build();
    assert_store_error("https build", build).await;
}

#[test]
fn debug_never_shows_the_secret_key() {
    let options = support::options().credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret");
    let shown = format!("{options:?} {options:#?}");
    assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
    assert!(!shown.contains("wJalrXUtnFEMI-very-secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[tokio::test]
async fn debug_of_a_store_never_shows_the_secret_key() {
    let options = support::options().credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret");
    let Some(store) = verrou_conformance::require_service("dynamodb", options.build().await) else {
        return;
    };
    let shown = format!("{store:?} {store:#?} {:?}", store.client());
    assert!(shown.contains("verrou"), "{shown}");
    assert!(!shown.contains("wJalrXUtnFEMI-very-secret"), "{shown}");
}
