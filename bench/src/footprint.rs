//! Bytes per held lock with many locks live: what holding locks costs the
//! store's memory. Reported, not a target.
//!
//! - Memory: the growth of the resident set (`/proc/self/statm`) of a fresh
//!   child process (this binary run with `--footprint-child`) while it takes
//!   the locks on a `MemoryStore`, divided by their number. A fresh process,
//!   because in this one the allocator would hand the locks memory the
//!   earlier workloads freed, and the resident set would hardly grow.
//! - Redis: the growth of the server's `used_memory` (`INFO memory`) while a
//!   store with a dedicated prefix takes the locks, divided by their number;
//!   every key under the prefix is deleted afterwards. Another client writing
//!   to the same server meanwhile would show up in the figure.
//!
//! The locks are taken through `LockStore::acquire` (what a `Lock` calls),
//! with a one-hour TTL, so that no handle of ours is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{Expiry, LockStore};
use verrou_memory::MemoryStore;
use verrou_redis::fred::interfaces::ClientLike;
use verrou_redis::fred::types::InfoKind;
use verrou_testkit::{Service, StoreKind};

use crate::workloads::describe;

/// Live locks of the measure.
pub const LOCKS: u64 = 1_000_000;

/// How long the locks live: far longer than the measure.
const TTL: Duration = Duration::from_secs(3600);

/// Tasks taking the locks on Redis (one connection, pipelined).
const TASKS: u64 = 64;

/// The command-line flag that runs [`child`] (not in the usage: internal).
pub const CHILD_FLAG: &str = "--footprint-child";

/// What was measured on one store.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Locks held at the measure.
    pub locks: u64,
    /// Growth of the measured memory, in bytes.
    pub grew_by: f64,
    /// What memory was measured.
    pub how: &'static str,
    /// How long taking the locks took.
    pub secs: f64,
}

impl Footprint {
    /// Bytes per held lock.
    pub fn per_lock(&self) -> f64 {
        // Lock counts are far below 2^52: the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let locks = self.locks as f64;
        self.grew_by / locks
    }
}

/// Whether the bench measures `kind`'s footprint.
pub fn measured(kind: StoreKind) -> bool {
    matches!(kind, StoreKind::Memory | StoreKind::Redis)
}

/// Measures `kind` with `locks` live locks (`run_id` names Redis's
/// dedicated prefix).
///
/// # Errors
/// The store or the child process failed.
pub async fn measure(kind: StoreKind, locks: u64, run_id: &str) -> Result<Footprint, String> {
    match kind {
        StoreKind::Memory => memory(locks).await,
        StoreKind::Redis => redis(Service::Redis, locks, run_id).await,
        other => Err(format!("no footprint measure for {other}")),
    }
}

/// Runs [`child`] in a fresh process of this binary and reads its answer.
async fn memory(locks: u64) -> Result<Footprint, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let output = tokio::process::Command::new(exe)
        .args([CHILD_FLAG, &locks.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("starting the footprint child: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the footprint child failed ({}): {}",
            output.status,
            text.trim()
        ));
    }
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(grew_by)), Some(Ok(secs))) => Ok(Footprint {
            locks,
            grew_by,
            how: "resident set growth of a fresh process (/proc/self/statm)",
            secs,
        }),
        _ => Err(format!("the footprint child printed `{}`", text.trim())),
    }
}

/// The child's side: takes `locks` locks on a fresh `MemoryStore` and
/// prints the resident set's growth in bytes and the seconds it took.
///
/// # Errors
/// `/proc` cannot be read, or the store refused a lock.
pub async fn child(locks: &str) -> Result<String, String> {
    let locks: u64 = locks
        .parse()
        .map_err(|e| format!("{CHILD_FLAG} {locks}: {e}"))?;
    let store = MemoryStore::new();
    let owner = verrou_core::random_owner().map_err(|e| describe(&e))?;
    // Warm the store and the allocator's first arenas before the baseline.
    take(&store, "footprint-warm", 0, &owner).await?;
    let before = resident_bytes()?;
    let started = Instant::now();
    for i in 0..locks {
        take(&store, "footprint", i, &owner).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = resident_bytes()?;
    if store.len() as u64 != locks + 1 {
        return Err(format!("{} locks live, not {}", store.len(), locks + 1));
    }
    Ok(format!("{} {secs}", after.saturating_sub(before)))
}

async fn take(store: &dyn LockStore, prefix: &str, i: u64, owner: &str) -> Result<(), String> {
    let key = format!("{prefix}:{i:07}");
    match store.acquire(&key, owner, Expiry::After(TTL)).await {
        Ok(verrou_core::Acquisition::Acquired { .. }) => Ok(()),
        Ok(verrou_core::Acquisition::Held) => Err(format!("{key} was already held")),
        Err(e) => Err(describe(&e)),
    }
}

/// This process's resident set, from `/proc/self/statm` (in pages) and the
/// kernel's page size (from `/proc/self/smaps`, 4 KiB if it is not there).
fn resident_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("/proc/self/statm: {e}"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("/proc/self/statm: `{}`", statm.trim()))?;
    let page_kib = std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|smaps| {
            smaps
                .lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(4);
    Ok(pages * page_kib * 1024)
}

/// Takes `locks` locks on a Redis store of their own prefix, reads
/// `used_memory` before and after, then deletes the prefix's keys.
async fn redis(service: Service, locks: u64, run_id: &str) -> Result<Footprint, String> {
    let prefix = format!("bench-footprint:{run_id}:");
    let store = verrou_testkit::redis(service)
        .prefix(prefix.clone())
        .build()
        .await
        .map_err(|e| describe(&e))?;
    let client = store.client().clone();
    let before = used_memory(&client).await?;
    let store: Arc<dyn LockStore> = Arc::new(store);
    let owner = verrou_core::random_owner().map_err(|e| describe(&e))?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, owner, next) = (store.clone(), owner.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= locks {
                        return Ok::<(), String>(());
                    }
                    take(store.as_ref(), "footprint", i, &owner).await?;
                }
            })
        })
        .collect();
    let mut outcome = Ok(());
    for task in tasks {
        let result = task
            .await
            .map_err(|e| format!("task panicked: {e}"))
            .and_then(|r| r);
        if outcome.is_ok() {
            outcome = result;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = if outcome.is_ok() {
        used_memory(&client).await
    } else {
        Ok(0)
    };
    // Whatever happened, the prefix's keys go: a million locks (and their
    // counters) on a shared server would otherwise stay an hour.
    let pattern = format!("{prefix}*");
    let cleaned = crate::stores::redis_delete_matching(&client, &pattern).await;
    outcome?;
    let after = after?;
    cleaned.map_err(|e| format!("deleting {pattern}: {}", describe(e.as_ref())))?;
    #[allow(clippy::cast_precision_loss)] // memory sizes far below 2^52
    let grew_by = after as f64 - before as f64;
    Ok(Footprint {
        locks,
        grew_by,
        how: "server used_memory growth (INFO memory)",
        secs,
    })
}

/// The server's `used_memory`, in bytes.
async fn used_memory(client: &verrou_redis::fred::clients::Client) -> Result<u64, String> {
    let info: String = client
        .info(Some(InfoKind::Memory))
        .await
        .map_err(|e| format!("INFO memory: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "INFO memory without used_memory".to_owned())
}
