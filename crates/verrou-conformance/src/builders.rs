//! Checks every store's builder passes, written once instead of once per
//! store. Each takes a closure that builds the store with the option under
//! test, so it works for any builder that follows the shared vocabulary (see
//! the crate README).
//!
//! They are plain async functions, not part of [`conformance_tests!`](crate::conformance_tests):
//! a store's tests call the ones whose option it has.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use verrou_conformance::builders;
//! use verrou_core::LockError;
//!
//! // A store whose only option is a table name, checked before connecting.
//! async fn build(table: String) -> Result<(), LockError> {
//!     verrou_core::store::TableName::new("example", &table).map(drop)
//! }
//! builders::rejects_table_names(builders::BAD_TABLE_NAMES, build).await;
//! # }
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};

/// How long a build may take to fail before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

/// Table names no store accepts: empty, SQL injection, quotes, spaces, a
/// NUL byte, non-ASCII, and 256 bytes (over every store's limit).
pub const BAD_TABLE_NAMES: &[&str] = &[
    "",
    "verrou; DROP TABLE x",
    "\"quoted\"",
    "`ticked`",
    "ver rou",
    "verrou\0",
    "verrou\u{e9}",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Names no SQL store accepts on top of [`BAD_TABLE_NAMES`]: a leading
/// digit, a schema-qualified name, a comment, a dash, 64 bytes.
pub const BAD_SQL_TABLE_NAMES: &[&str] = &[
    "1verrou",
    "public.verrou",
    "verrou--",
    "ver-rou",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Every name in `names` makes `build` fail with
/// [`LockError::InvalidConfig`], without a hang and without a panic.
///
/// # Panics
/// When a name is accepted, fails otherwise, or hangs.
pub async fn rejects_table_names<S, F, Fut>(names: &[&str], mut build: F)
where
    S: Debug,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    for name in names {
        let result = bounded("building with a bad table name", build((*name).to_owned())).await;
        assert!(
            matches!(result, Err(LockError::InvalidConfig { .. })),
            "table name {name:?}: expected InvalidConfig, got {result:?}"
        );
    }
}

/// A timeout under a millisecond (zero, one nanosecond, 999 µs) makes
/// `build` fail with [`LockError::InvalidConfig`]: stores count time in whole
/// milliseconds, and a zero limit would fail every call.
///
/// # Panics
/// When such a timeout is accepted, fails otherwise, or hangs.
pub async fn rejects_timeouts_under_a_millisecond<S, F, Fut>(option: &str, mut build: F)
where
    S: Debug,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    for limit in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ] {
        let result = bounded("building with a tiny timeout", build(limit)).await;
        assert!(
            matches!(result, Err(LockError::InvalidConfig { .. })),
            "{option}({limit:?}): expected InvalidConfig, got {result:?}"
        );
    }
}

/// Every connect timeout and operation timeout from 1 ms up to
/// `Duration::MAX` (and no operation timeout) builds a store that takes a
/// lock: a huge limit means no limit, never an overflow panic or a hang.
/// `build(connect_timeout, operation_timeout)` builds the store with both;
/// each combination takes its own key, since a call cut short by a 1 ms
/// limit may still have taken its lock. A 1 ms limit may genuinely run out
/// on a loaded machine, so with one a `Store` error is accepted too.
///
/// # Panics
/// When a combination fails otherwise, panics, or hangs.
pub async fn huge_timeouts_work<S, F, Fut>(mut build: F)
where
    S: LockStore,
    F: FnMut(Duration, Option<Duration>) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    const LIMITS: [Duration; 3] = [
        Duration::from_millis(1),
        Duration::from_secs(1_000_000_000),
        Duration::MAX,
    ];
    let run = crate::harness::fresh_key("huge-timeouts");
    let mut round = 0;
    for connect in LIMITS {
        for operation in LIMITS.map(Some).into_iter().chain([None]) {
            round += 1;
            let one_ms = connect.as_millis() == 1 || operation.is_some_and(|o| o.as_millis() == 1);
            let key = format!("{run}:{round}");
            let attempt = async {
                let store = match build(connect, operation).await {
                    Ok(store) => store,
                    Err(LockError::Store { .. }) if one_ms => return,
                    Err(error) => panic!("{connect:?}/{operation:?}: {error:?}"),
                };
                match store.acquire(&key, "o", Expiry::Never).await {
                    Ok(Acquisition::Acquired { .. }) => {}
                    Err(LockError::Store { .. }) if one_ms => {}
                    other => panic!("{connect:?}/{operation:?}: {other:?}"),
                }
            };
            bounded(&format!("{connect:?}/{operation:?}"), attempt).await;
        }
    }
}

/// Every way a CA file can be unusable makes `build` fail with
/// [`LockError::InvalidConfig`] before any connection: a missing file, a file
/// without a `BEGIN CERTIFICATE` block, a block that is not base64, and one
/// that is base64 but not a certificate (which some drivers would panic on).
/// `build` gets the file's path and should point the store at an address
/// where nothing listens, so that an accepted file shows as another error.
/// Each reason must name the problem (the file, for a missing or broken
/// one) and every string of `must_say`.
///
/// # Panics
/// When such a file is accepted, fails otherwise, or hangs.
pub async fn rejects_unusable_ca_files<S, F, Fut>(must_say: &[&str], mut build: F)
where
    S: Debug,
    F: FnMut(PathBuf) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    static FILES: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "verrou-ca-files-{}-{}",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("a temporary file");
        path
    };
    let cases = [
        (dir.join("missing.pem"), "missing.pem"),
        (
            write("not-pem.pem", "just text\n"),
            "no `BEGIN CERTIFICATE`",
        ),
        (
            write(
                "broken.pem",
                "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
            ),
            "broken.pem",
        ),
        (
            write(
                "not-a-certificate.pem",
                "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
            ),
            "rustls cannot use",
        ),
    ];
    for (file, says) in cases {
        let result = bounded("building with an unusable CA file", build(file.clone())).await;
        match result {
            Err(LockError::InvalidConfig { reason, .. }) => assert!(
                reason.contains(says) && must_say.iter().all(|word| reason.contains(word)),
                "{}: the reason should say {says:?} and {must_say:?}: {reason}",
                file.display()
            ),
            other => panic!("{}: expected InvalidConfig, got {other:?}", file.display()),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `build`, pointed at an address where nothing listens, fails with
/// [`LockError::Store`] (the server is down: not a configuration error, and
/// never a hang).
///
/// # Panics
/// When the build succeeds, fails otherwise, or hangs.
pub async fn a_refused_connection_is_a_store_error<S, F, Fut>(build: F)
where
    S: Debug,
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    let closed = closed_address().await;
    let result = bounded("building against a closed port", build(closed)).await;
    assert!(
        matches!(result, Err(LockError::Store { .. })),
        "closed port {closed}: expected a Store error, got {result:?}"
    );
}

/// `build`, pointed at a server that accepts connections and never says a
/// word, fails with [`LockError::Store`] within the connect or operation
/// timeout the closure sets, rather than hanging.
///
/// # Panics
/// When the build succeeds, fails otherwise, or takes 30 s.
pub async fn a_silent_server_is_a_store_error<S, F, Fut>(build: F)
where
    S: Debug,
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = Result<S, LockError>>,
{
    let (address, silent) = silent_server().await;
    let result = bounded("building against a silent server", build(address)).await;
    silent.abort();
    assert!(
        matches!(result, Err(LockError::Store { .. })),
        "silent server {address}: expected a Store error, got {result:?}"
    );
}

/// `build` fails with [`LockError::Store`] within `bound` (a wrong CA, a
/// host name the certificate does not name, TLS against a plain-text
/// server...); returns the error and its whole source chain as text, for
/// the caller to check that it says why.
///
/// # Panics
/// When the build succeeds, fails otherwise, or takes `bound`.
pub async fn store_error_within<S, Fut>(what: &str, bound: Duration, build: Fut) -> String
where
    S: Debug,
    Fut: Future<Output = Result<S, LockError>>,
{
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(bound, build)
        .await
        .unwrap_or_else(|_| panic!("{what}: build hung past {bound:?}"));
    let error = match result {
        Err(error @ LockError::Store { .. }) => error,
        other => panic!("{what}: expected a Store error, got {other:?}"),
    };
    assert!(started.elapsed() < bound, "{what}");
    error_chain(&error)
}

/// An error and every source under it, joined by `": "`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// The `Debug` output of a builder or store never shows `secret` (a
/// password in its URL, a secret key).
///
/// # Panics
/// When it does.
pub fn debug_hides(value: &impl Debug, secret: &str) {
    let shown = format!("{value:?}");
    assert!(
        !shown.contains(secret),
        "Debug output shows the secret: {shown}"
    );
}

/// An address on loopback where nothing listens (bound, then released).
pub async fn closed_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let address = listener.local_addr().expect("a bound address");
    drop(listener);
    address
}

/// A loopback server that accepts connections and never answers, until the
/// returned task is aborted.
pub async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let address = listener.local_addr().expect("a bound address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (address, task)
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, future)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"))
}
