//! What the takeover rule costs, measured against a DynamoDB endpoint (the
//! emulator `cargo xtask services up` starts, by default):
//!
//! - acquire + release of a free key, one after the other;
//! - an acquire refused because another client holds the key;
//! - how long an abandoned lease (its holder "crashed") takes to be taken
//!   over, by a client that watched it from the grant on and by a newcomer
//!   that first looks after the lease has ended by every clock.
//!
//! Every client is its own `DynamoDbStore`, as separate processes would be.
//!
//! ```text
//! cargo run -p verrou-dynamodb --example lease_costs [-- ENDPOINT [MARGIN_MS]]
//! ```

use std::time::{Duration, Instant};

use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_dynamodb::DynamoDbStore;

const ROUNDS: usize = 300;
const TAKEOVERS: usize = 5;
const TTL: Duration = Duration::from_secs(1);
/// How often a contender retries, as a `Lock` with a 20 ms retry delay would.
const POLL: Duration = Duration::from_millis(20);

async fn client(endpoint: &str, margin: Duration) -> Result<DynamoDbStore, LockError> {
    DynamoDbStore::builder()
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("local", "local")
        .table_name("verrou-lease-costs")
        .clock_skew_margin(margin)
        .build()
        .await
}

fn key(what: &str, i: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("lease-costs:{what}:{nanos}:{i}")
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    )
}

fn spread(samples: &[Duration]) -> String {
    let ms: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    format!("{} ms", ms.join(", "))
}

/// Polls `store` until it takes `key`; returns how long after `since`.
async fn take_over(
    store: &DynamoDbStore,
    key: &str,
    since: Instant,
) -> Result<Duration, LockError> {
    let started = Instant::now();
    loop {
        match store.acquire(key, "contender", Expiry::After(TTL)).await? {
            Acquisition::Acquired { .. } => return Ok(since.elapsed()),
            Acquisition::Held if started.elapsed() > TTL * 30 => {
                return Err(LockError::store("dynamodb", "never taken over"));
            }
            Acquisition::Held => tokio::time::sleep(POLL).await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), LockError> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8000".to_owned());
    let margin = Duration::from_millis(args.next().map_or(0, |m| m.parse().unwrap_or(0)));
    let holder = client(&endpoint, margin).await?;
    let other = client(&endpoint, margin).await?;
    println!("endpoint {endpoint}, clock_skew_margin {margin:?}, lease TTL {TTL:?}");

    let mut pairs = Vec::with_capacity(ROUNDS);
    let k = key("pair", 0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        holder
            .acquire(&k, "holder", Expiry::After(Duration::from_secs(30)))
            .await?;
        holder.release(&k, "holder").await?;
        pairs.push(started.elapsed());
    }
    println!("acquire+release, free key: {}", percentiles(pairs));

    let k = key("refused", 0);
    holder
        .acquire(&k, "holder", Expiry::After(Duration::from_secs(30)))
        .await?;
    let mut refused = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let answer = other
            .acquire(&k, "other", Expiry::After(Duration::from_secs(30)))
            .await?;
        assert_eq!(answer, Acquisition::Held);
        refused.push(started.elapsed());
    }
    holder.release(&k, "holder").await?;
    println!("acquire refused (key held): {}", percentiles(refused));

    let mut watched = Vec::with_capacity(TAKEOVERS);
    for i in 0..TAKEOVERS {
        let k = key("watched", i);
        let watcher = client(&endpoint, margin).await?;
        let granted = Instant::now();
        holder.acquire(&k, "crashed", Expiry::After(TTL)).await?;
        watched.push(take_over(&watcher, &k, granted).await?);
    }
    println!(
        "abandoned lease, watched from the grant: taken over {} after the grant was asked",
        spread(&watched)
    );

    let mut newcomer = Vec::with_capacity(TAKEOVERS);
    for i in 0..TAKEOVERS {
        let k = key("newcomer", i);
        holder.acquire(&k, "crashed", Expiry::After(TTL)).await?;
        tokio::time::sleep(TTL + Duration::from_secs(1)).await;
        let late = client(&endpoint, margin).await?;
        newcomer.push(take_over(&late, &k, Instant::now()).await?);
    }
    println!(
        "abandoned lease, newcomer arriving 1 s after its end: taken over {} after its first try",
        spread(&newcomer)
    );
    Ok(())
}
