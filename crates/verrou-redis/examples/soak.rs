//! Memory soak: lock and release many distinct keys (one per "order"), then
//! show Redis's `used_memory` before, right after, and once the counters'
//! retention has passed. Earlier versions kept one counter per key forever.
//!
//! ```text
//! cargo run --release -p verrou-redis --example soak -- [URL] [KEYS] [RETENTION_SECS]
//! cargo run --release -p verrou-redis --example soak -- redis://127.0.0.1:6399 1000000 10
//! ```
//!
//! Run it against a server of its own: `used_memory` is the whole server's.

use std::time::{Duration, Instant};

use verrou_core::{Expiry, LockStore};
use verrou_redis::RedisStore;
use verrou_redis::fred::interfaces::ClientLike;
use verrou_redis::fred::types::{ClusterHash, CustomCommand, Value};

const TASKS: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let keys: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let retention = Duration::from_secs(args.next().map(|n| n.parse()).transpose()?.unwrap_or(10));
    let prefix = format!("verrou-soak:{}:", std::process::id());
    let store = RedisStore::builder()
        .url(&url)
        .prefix(prefix.as_str())
        .counter_retention(retention)
        .build()
        .await?;

    let before = memory(&store).await?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (task..keys).step_by(TASKS) {
                    let key = format!("order:{i}");
                    store
                        .acquire(&key, "soak", Expiry::After(Duration::from_secs(30)))
                        .await?;
                    store.release(&key, "soak").await?;
                }
                Ok::<_, verrou_core::LockError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let took = started.elapsed();
    let peak = memory(&store).await?;
    let (peak_memory, peak_keys) = peak;
    println!(
        "{keys} keys locked and released in {took:.1?} ({:.0}/s)",
        keys as f64 / took.as_secs_f64()
    );
    println!(
        "before:      used_memory {:>12} bytes, {:>9} keys",
        before.0, before.1
    );
    println!("right after: used_memory {peak_memory:>12} bytes, {peak_keys:>9} keys");

    // Counters expire `retention` after their token; give Redis's active
    // expiry a bounded while to reclaim them, then sweep what is left. A
    // retention of a day or more is not waited for (a century or more keeps
    // counters forever: the behaviour of earlier versions, for comparison).
    if retention >= Duration::from_secs(24 * 3600) {
        println!("retention {retention:?}: not waiting for the counters to expire");
        return Ok(());
    }
    let deadline = Instant::now() + retention + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, left) = memory(&store).await?;
        if left <= before.1 || Instant::now() > deadline {
            break;
        }
    }
    let by_expiry = memory(&store).await?;
    println!(
        "after expiry: used_memory {:>11} bytes, {:>9} keys ({:.1?} after the last release)",
        by_expiry.0,
        by_expiry.1,
        started.elapsed() - took
    );
    let pruned = store.prune().await?;
    let after = memory(&store).await?;
    println!(
        "after prune:  used_memory {:>11} bytes, {:>9} keys (pruned {pruned})",
        after.0, after.1
    );
    Ok(())
}

/// `used_memory` and `DBSIZE` of the server.
async fn memory(store: &RedisStore) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let client = store.client();
    let info: String = client
        .custom(
            CustomCommand::new_static("INFO", ClusterHash::Random, false),
            vec!["memory"],
        )
        .await?;
    let used = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .ok_or("no used_memory in INFO")?
        .trim()
        .parse()?;
    let size: Value = client
        .custom(
            CustomCommand::new_static("DBSIZE", ClusterHash::Random, false),
            Vec::<Value>::new(),
        )
        .await?;
    let keys = size.as_u64().ok_or("DBSIZE is not a number")?;
    Ok((used, keys))
}
