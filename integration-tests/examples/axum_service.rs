//! An HTTP service whose handlers hold a verrou lock across an `.await`.
//!
//! ```sh
//! cargo run -p verrou-integration-tests --example axum_service
//! LOCK_STORE_URL=redis://127.0.0.1:6379 cargo run -p verrou-integration-tests --example axum_service
//! ```
//!
//! The store comes from `LOCK_STORE_URL` (any URL `verrou::StoreConfig::from_url`
//! reads; in memory when unset, which is enough for one instance: run two
//! instances on Redis or PostgreSQL and they exclude each other too). It
//! listens on `ADDR` (default `127.0.0.1:3000`). Each request on an account
//! works for a second under the account's lock:
//!
//! - `POST /transfer/{id}` waits for the lock, at most 5 s: `200` once done,
//!   `503 Service Unavailable` when the wait runs out.
//! - `POST /report/{id}` does not wait: `409 Conflict` when the account is
//!   locked, `200` otherwise.
//!
//! ```sh
//! curl -X POST localhost:3000/transfer/7 & curl -X POST localhost:3000/report/7   # 409
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use verrou::{Config, LockError, LockFactory, RetryPolicy, StoreConfig, Verrou};

/// How long the handlers work and wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a transfer or a report works while holding the lock.
    pub work: Duration,
    /// How long a transfer waits for the lock before answering 503.
    pub transfer_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            work: Duration::from_secs(1),
            transfer_wait: Duration::from_secs(5),
        }
    }
}

/// What every handler shares: one factory per route behaviour, both on the
/// default store.
#[derive(Clone)]
struct Locks {
    /// Waits up to `transfer_wait` for a lock.
    transfers: LockFactory,
    /// The configured factory; reports only ever try once.
    reports: LockFactory,
    work: Duration,
}

/// The locks' store, from `LOCK_STORE_URL`; in memory when it is unset.
///
/// # Errors
/// A `LOCK_STORE_URL` that is not a store URL, or a store that cannot be
/// reached.
pub async fn verrou_from_env() -> Result<Verrou, LockError> {
    let config = Config::from_env()?
        .unwrap_or_else(|| Config::new().store("default", StoreConfig::memory()));
    config.build().await
}

/// The service's routes on `verrou`'s default store.
pub fn app(verrou: &Verrou, timing: Timing) -> Router {
    let reports = verrou.default_factory().clone();
    // The same store, with this route's own bound on waiting: `acquire`
    // wakes as soon as the holder releases (on stores that announce
    // releases) and gives up at the deadline.
    let transfers = reports.clone().with_retry(
        RetryPolicy::default()
            .with_timeout(Some(timing.transfer_wait))
            .with_delay(Duration::from_millis(50)),
    );
    Router::new()
        .route("/transfer/{id}", post(transfer))
        .route("/report/{id}", post(report))
        .with_state(Locks {
            transfers,
            reports,
            work: timing.work,
        })
}

/// Waits for the account's lock, then works while holding it.
async fn transfer(State(locks): State<Locks>, Path(id): Path<String>) -> (StatusCode, String) {
    let asked = Instant::now();
    let lock = match locks.transfers.create_lock(account(&id), "30s") {
        Ok(lock) => lock,
        Err(error) => return refused(error),
    };
    let work = locks.work;
    // `run` releases the lock when the work is done, fails or is dropped
    // (a client that hangs up drops this future).
    match lock
        .run(|| async move {
            let waited = asked.elapsed();
            tokio::time::sleep(work).await; // the protected work, across an await
            waited
        })
        .await
    {
        Ok(waited) => (
            StatusCode::OK,
            format!(
                "transfer {id} done after waiting {}ms\n",
                waited.as_millis()
            ),
        ),
        Err(error) => refused(error),
    }
}

/// Works under the account's lock if nobody holds it; 409 otherwise.
async fn report(State(locks): State<Locks>, Path(id): Path<String>) -> (StatusCode, String) {
    let lock = match locks.reports.create_lock(account(&id), "30s") {
        Ok(lock) => lock,
        Err(error) => return refused(error),
    };
    let work = locks.work;
    match lock
        .try_run(|| async move { tokio::time::sleep(work).await })
        .await
    {
        Ok(Some(())) => (StatusCode::OK, format!("report {id} done\n")),
        Ok(None) => (
            StatusCode::CONFLICT,
            format!("account {id} is busy: try again later\n"),
        ),
        Err(error) => refused(error),
    }
}

fn account(id: &str) -> String {
    format!("account:{id}")
}

/// A lock error as an HTTP answer.
fn refused(error: LockError) -> (StatusCode, String) {
    let status = match &error {
        LockError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
        LockError::InvalidKey { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{error}\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verrou = verrou_from_env().await?;
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "listening on http://{}, locks in the {} store",
        listener.local_addr()?,
        verrou.default_factory().store().name()
    );
    axum::serve(listener, app(&verrou, Timing::default())).await?;
    Ok(())
}
