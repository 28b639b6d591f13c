//! Where a Redis acquire+release spends its time on the client, for the
//! bench README's "Profiles": the same work through the `Lock` API, through
//! the store's trait methods alone, and as two `PING`s, on a multi-thread and
//! a current-thread runtime, with fred's connection settings as the store
//! sets them and with one setting changed. Settings alternate within each
//! round, so a noisy machine hits them alike; figures are medians over
//! rounds.
//!
//! ```text
//! cargo run --release -p verrou-redis --example client_settings -- [URL] [PAIRS] [ROUNDS]
//! ```
//!
//! Prints, per runtime, setting and path: the p50 of one task's
//! acquire+release pairs (or `PING` pairs), and pairs per second with 64
//! tasks on the one client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use verrou_core::{Expiry, LockFactory, LockStore, Ttl};
use verrou_redis::RedisStore;
use verrou_redis::fred::interfaces::ClientLike;
use verrou_redis::fred::prelude::{Client, Config};
use verrou_redis::fred::types::config::{ConnectionConfig, PerformanceConfig, TcpConfig};

const TASKS: usize = 64;
const TTL: Duration = Duration::from_secs(30);

/// fred's settings under test: as the store sets them, and the variants.
#[derive(Clone, Copy, Debug)]
enum Setting {
    /// What `RedisStore::builder().url(..)` uses (at most one send, no
    /// TCP_NODELAY: fred leaves the OS default, Nagle on).
    Store,
    /// The same with `TCP_NODELAY` set, as redis-rs and ioredis do.
    NoDelay,
    /// The same with fred's feed count at 1: every frame flushed alone.
    FlushEach,
    /// `RedisStore::builder().max_connections(4)`: a pool of four
    /// connections, commands spread round-robin.
    Pool4,
}

const SETTINGS: [Setting; 4] = [
    Setting::Store,
    Setting::NoDelay,
    Setting::FlushEach,
    Setting::Pool4,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// `Lock::acquire` + `Lock::release`.
    Lock,
    /// `LockStore::acquire` + `LockStore::release`, no handle around them.
    Store,
    /// Two `PING`s: the round trips alone.
    Ping,
}

const PATHS: [Path; 3] = [Path::Lock, Path::Store, Path::Ping];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let pairs: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3_000);
    let rounds: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3);
    for current_thread in [false, true] {
        let runtime = if current_thread {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
        };
        let name = if current_thread {
            "current-thread"
        } else {
            "multi-thread"
        };
        runtime.block_on(measure(name, &url, pairs, rounds))?;
    }
    Ok(())
}

async fn measure(
    runtime: &str,
    url: &str,
    pairs: usize,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut stores = Vec::new();
    for setting in SETTINGS {
        stores.push(Subject::new(store(url, setting).await?));
    }
    // (setting, path) -> per-round p50 (µs) and pairs/s.
    let mut p50s = vec![vec![Vec::new(); PATHS.len()]; SETTINGS.len()];
    let mut rates = vec![vec![Vec::new(); PATHS.len()]; SETTINGS.len()];
    for round in 0..rounds {
        for (s, subject) in stores.iter().enumerate() {
            for (p, &path) in PATHS.iter().enumerate() {
                let tag = format!("{round}-{s}-{p}");
                p50s[s][p].push(sequential(subject, path, pairs, &tag).await?);
                rates[s][p].push(concurrent(subject, path, pairs, &tag).await?);
            }
        }
    }
    println!("{runtime} runtime, medians over {rounds} rounds of {pairs} pairs:");
    println!(
        "{:<10} {:<6} {:>14} {:>18}",
        "setting", "path", "1 task p50 µs", "64 tasks pairs/s"
    );
    for (s, setting) in SETTINGS.iter().enumerate() {
        for (p, path) in PATHS.iter().enumerate() {
            println!(
                "{:<10} {:<6} {:>14.1} {:>18.0}",
                format!("{setting:?}"),
                format!("{path:?}"),
                median(&mut p50s[s][p]),
                median(&mut rates[s][p]),
            );
        }
    }
    for subject in stores {
        let _ = subject.store.client().quit().await;
    }
    Ok(())
}

/// A store on a fred client built as `RedisStore::builder()` builds its own,
/// with `setting` applied.
async fn store(url: &str, setting: Setting) -> Result<RedisStore, Box<dyn std::error::Error>> {
    if let Setting::Pool4 = setting {
        return Ok(RedisStore::builder()
            .url(url)
            .max_connections(4)
            .prefix("verrou-client-settings:")
            .build()
            .await?);
    }
    let config = Config::from_url(url)?;
    let mut performance = PerformanceConfig {
        default_command_timeout: Duration::from_secs(5),
        ..PerformanceConfig::default()
    };
    let mut connection = ConnectionConfig {
        max_command_attempts: 1,
        ..ConnectionConfig::default()
    };
    match setting {
        Setting::Store | Setting::Pool4 => {}
        Setting::NoDelay => {
            connection.tcp = TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            };
        }
        Setting::FlushEach => performance.max_feed_count = 1,
    }
    let client = Client::new(config, Some(performance), Some(connection), None);
    client.init().await?;
    Ok(RedisStore::from_client(client)
        .prefix("verrou-client-settings:")
        .build()
        .await?)
}

/// A store and a lock factory on it.
#[derive(Clone)]
struct Subject {
    store: RedisStore,
    locks: Arc<LockFactory>,
}

impl Subject {
    fn new(store: RedisStore) -> Subject {
        let locks = Arc::new(LockFactory::new(store.clone()));
        Subject { store, locks }
    }
}

/// One pair of `path`'s work on `key`.
async fn pair(subject: &Subject, path: Path, key: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = &subject.store;
    match path {
        Path::Lock => {
            let lock = subject.locks.create_lock(key, Ttl::After(TTL))?;
            lock.acquire().await?;
            lock.release().await?;
        }
        Path::Store => {
            store.acquire(key, "owner", Expiry::After(TTL)).await?;
            store.release(key, "owner").await?;
        }
        Path::Ping => {
            store.client().ping::<()>(None).await?;
            store.client().ping::<()>(None).await?;
        }
    }
    Ok(())
}

/// The p50 of `pairs` pairs back to back, in µs, each on a fresh key.
async fn sequential(
    subject: &Subject,
    path: Path,
    pairs: usize,
    tag: &str,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut samples = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let key = format!("seq-{tag}-{i}");
        let started = Instant::now();
        pair(subject, path, &key).await?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(&mut samples))
}

/// Pairs per second with [`TASKS`] tasks sharing `store`, `pairs` in all.
async fn concurrent(
    subject: &Subject,
    path: Path,
    pairs: usize,
    tag: &str,
) -> Result<f64, Box<dyn std::error::Error>> {
    let per_task = pairs.div_ceil(TASKS).max(1);
    let tag: Arc<str> = tag.into();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(TASKS);
    for t in 0..TASKS {
        let (subject, tag) = (subject.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let key = format!("con-{tag}-{t}-{i}");
                pair(&subject, path, &key)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((per_task * TASKS) as f64 / started.elapsed().as_secs_f64())
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
