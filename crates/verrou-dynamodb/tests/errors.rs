//! Failures are `Store` errors, never `NotOwned` or `Held`; bad
//! configuration fails before anything is sent; secrets stay out of `Debug`.
//! The builder checks every store passes come from
//! `verrou_conformance::builders`.

mod support;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use verrou_conformance::builders;
use verrou_core::store::TimedOut;
use verrou_core::{Expiry, LockError, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_dynamodb::aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use verrou_dynamodb::aws_sdk_dynamodb::{self, Client};
use verrou_testkit::servers::dynalite_command;

/// A dynalite of this test's own on a free port, so stopping it cannot
/// disturb the shared emulator other tests use.
struct PrivateEmulator {
    child: Child,
    port: u16,
}

impl PrivateEmulator {
    /// Starts on `port`, or on a free port when `None`.
    fn start(port: Option<u16>) -> Result<Self, String> {
        let mut command = dynalite_command()?;
        let port = match port {
            Some(port) => port,
            None => TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port(),
        };
        let child = command
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
            .map_err(|e| format!("starting dynalite: {e}"))?;
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
    let store = support::builder_for(&emulator.endpoint())
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

    // Back on the same port but empty (dynalite keeps tables in memory): the
    // same store value works again and a missing table is a store error, not
    // "somebody else holds it".
    let restarted = PrivateEmulator::start(Some(emulator.port)).unwrap();
    assert_store_error("release on a missing table", store.release("k", "a")).await;
    assert_store_error("acquire on a missing table", store.acquire("k", "a", TTL)).await;
    drop(restarted);
}

#[tokio::test]
async fn a_refused_connection_is_a_store_error() {
    builders::a_refused_connection_is_a_store_error(|address| {
        support::builder_for(&format!("http://{address}")).build()
    })
    .await;
}

/// A server that accepts connections and never answers: the operation
/// timeout ends the build (its first request) as a `Store` error.
#[tokio::test]
async fn a_silent_server_is_a_store_error() {
    builders::a_silent_server_is_a_store_error(|address| {
        support::builder_for(&format!("http://{address}"))
            .operation_timeout(Some(Duration::from_millis(500)))
            .build()
    })
    .await;
}

/// A client of the application's own, without timeouts of its own: the
/// store's operation timeout still bounds every request, and says so with a
/// `TimedOut` source.
#[tokio::test]
async fn the_operation_timeout_bounds_a_given_client() {
    let (address, silent) = builders::silent_server().await;
    let client = Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("id", "secret", None, None, "test"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .endpoint_url(format!("http://{address}"))
            .build(),
    );
    let limit = Duration::from_millis(300);
    let build = DynamoDbStore::from_client(client)
        .operation_timeout(Some(limit))
        .build();
    let result = tokio::time::timeout(Duration::from_secs(15), build)
        .await
        .expect("the build hung");
    silent.abort();
    let Err(error @ LockError::Store { .. }) = result else {
        panic!("expected a Store error, got {result:?}");
    };
    let timed_out = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<TimedOut>());
    assert!(timed_out.is_some_and(|t| t.after == limit), "{error:?}");
}

/// Checked before any request: no emulator needed. DynamoDB's own rule
/// refuses a few more (too short, `/`, `:`, `#`); `-` and `.` are allowed
/// (see `tests/table.rs`).
#[tokio::test]
async fn bad_table_names_are_invalid_config() {
    let build = |name: String| support::builder().table_name(name).build();
    builders::rejects_table_names(builders::BAD_TABLE_NAMES, build).await;
    builders::rejects_table_names(&["ab", "ver/rou", "ver:rou", "ver#rou"], build).await;
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn https_with_the_rustls_feature_gets_as_far_as_connecting() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let build = support::builder_for(&format!("https://127.0.0.1:{port}")).build();
    assert_store_error("https build", build).await;
}

#[test]
fn debug_never_shows_the_secret_key() {
    let builder = support::builder().credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret");
    builders::debug_hides(&builder, "wJalrXUtnFEMI-very-secret");
    let shown = format!("{builder:?}");
    assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[tokio::test]
async fn debug_of_a_store_never_shows_the_secret_key() {
    let builder = support::builder().credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret");
    let Some(store) = verrou_conformance::require_service("dynamodb", builder.build().await) else {
        return;
    };
    builders::debug_hides(&store, "wJalrXUtnFEMI-very-secret");
    builders::debug_hides(store.client(), "wJalrXUtnFEMI-very-secret");
    let shown = format!("{store:?}");
    assert!(shown.contains("verrou"), "{shown}");
}
