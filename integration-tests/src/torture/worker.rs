//! One torture worker: acquire a lock on one of a few keys, read the fenced
//! resource, pause, write it back, release — in a loop, logging every step.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{LockError, LockFactory, RetryPolicy};

use super::history::{Access, Event, HistoryWriter, Op, Release, now_us};
use super::resource::{ACCOUNTS, FencedResource, Outcome};

/// What a worker does.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Worker id (unique in the run, replacements get new ids).
    pub id: u32,
    /// The resource keys; the lock key is `lock_prefix + key`.
    pub keys: Vec<String>,
    /// Prefix of the lock keys, fresh per run so leftovers of an earlier run
    /// cannot interfere.
    pub lock_prefix: String,
    /// How many operations to do.
    pub ops: u64,
    /// The lock TTL.
    pub ttl: Duration,
    /// The longest pause between the read and the write.
    pub max_pause: Duration,
    /// Where the fenced resource lives.
    pub resource_dir: PathBuf,
    /// Where to write the history.
    pub history: PathBuf,
    /// Give up after store errors for this long in a row.
    pub give_up_after: Duration,
}

/// Faults a runner can inject into a worker that is a thread, not a process
/// (the memory store lives in one process, so `kill` and `SIGSTOP` are
/// simulated at the worker's pause point, inside its critical section).
#[derive(Debug, Default)]
pub struct ThreadControl {
    /// Abandon the held lock and stop, as a killed process would.
    pub crash: AtomicBool,
    /// Stall this many milliseconds inside the critical section, as a stopped
    /// process (or a long GC pause) would.
    pub stall_ms: AtomicU64,
    /// Set while the worker holds a lock.
    pub holding: AtomicBool,
}

/// Runs the worker loop until `ops` operations are done.
///
/// # Errors
/// When the history or the resource cannot be written, or the store kept
/// failing for `give_up_after`.
pub async fn run_worker(
    config: &WorkerConfig,
    locks: &LockFactory,
    control: Option<Arc<ThreadControl>>,
) -> Result<(), String> {
    let mut history = HistoryWriter::create(&config.history).map_err(|e| e.to_string())?;
    let resource = FencedResource::new(&config.resource_dir);
    let mut rng = Rng::seeded();
    for n in 0..config.ops {
        let key = &config.keys[rng.below(config.keys.len() as u64) as usize];
        let lock = locks
            .create_lock(format!("{}{key}", config.lock_prefix), config.ttl)
            .map_err(|e| e.to_string())?;
        let (sent, got) = acquire(&lock, config, &mut history, &mut rng).await?;
        let tok = lock.fencing_token();
        let io = |e: std::io::Error| format!("worker {}: {e}", config.id);
        history
            .log(&Event::Acquired {
                w: config.id,
                n,
                key: key.clone(),
                sent,
                got,
                tok,
            })
            .map_err(io)?;
        if let Some(control) = &control {
            control.holding.store(true, Ordering::SeqCst);
        }
        let token = tok.unwrap_or(0);
        let mut op = Op {
            w: config.id,
            n,
            key: key.clone(),
            sent,
            got,
            tok,
            read: Access::Skipped,
            read_seq: 0,
            write: Access::Skipped,
            write_seq: 0,
            write_end: 0,
            rel_start: 0,
            rel_end: 0,
            rel: Release::Ok,
            stalled: false,
        };
        let read = resource.read(key, token).map_err(io)?;
        let pause = Duration::from_micros(rng.below(config.max_pause.as_micros() as u64 + 1));
        tokio::time::sleep(pause).await;
        if let Some(control) = &control {
            let stall = control.stall_ms.swap(0, Ordering::SeqCst);
            if stall > 0 {
                op.stalled = true;
                tokio::time::sleep(Duration::from_millis(stall)).await;
            }
            if control.crash.load(Ordering::SeqCst) {
                // A crash: the lock is neither released nor written to again.
                op.rel_start = now_us();
                op.rel = Release::Abandoned;
                if let Outcome::Accepted { seq, .. } = read {
                    (op.read, op.read_seq) = (Access::Accepted, seq);
                }
                history.log(&Event::Op(op)).map_err(io)?;
                // Dropping a `Lock` sends nothing: the lock stays until its TTL.
                drop(lock);
                return Ok(());
            }
        }
        match read {
            Outcome::Rejected => op.read = Access::Rejected,
            Outcome::Accepted { seq, accounts } => {
                (op.read, op.read_seq) = (Access::Accepted, seq);
                let from = rng.below(ACCOUNTS as u64) as usize;
                let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let amount = 1 + rng.below(50) as i64;
                let mut next = accounts;
                next[from] -= amount;
                next[to] += amount;
                match resource.write(key, token, next).map_err(io)? {
                    Outcome::Accepted { seq, .. } => {
                        (op.write, op.write_seq) = (Access::Accepted, seq)
                    }
                    Outcome::Rejected => op.write = Access::Rejected,
                }
                op.write_end = now_us();
            }
        }
        if let Some(control) = &control {
            control.holding.store(false, Ordering::SeqCst);
        }
        op.rel_start = now_us();
        op.rel = Release::Pending;
        history.log(&Event::Op(op)).map_err(io)?;
        let rel = match lock.release().await {
            Ok(()) => Release::Ok,
            Err(LockError::NotOwned { .. }) => Release::NotOwned,
            Err(_) => Release::Error,
        };
        history
            .log(&Event::Released {
                w: config.id,
                n,
                rel,
                rel_end: now_us(),
            })
            .map_err(io)?;
    }
    Ok(())
}

/// Acquires through the library's own waiting (release announcements where
/// the store has them, polling otherwise), retrying after store errors.
///
/// Returns when the successful request was sent (at the earliest) and when it
/// returned. The send time comes from the handle's own expiry, which the
/// library counts from *before* the request (documented as conservative): the
/// server granted the lease after that instant, so its lease lasts at least
/// until `sent + TTL`, which is what the checker needs.
async fn acquire(
    lock: &verrou_core::Lock,
    config: &WorkerConfig,
    history: &mut HistoryWriter,
    rng: &mut Rng,
) -> Result<(u64, u64), String> {
    let policy = RetryPolicy::default()
        .with_delay(Duration::from_millis(3))
        .with_timeout(Some(Duration::from_secs(20)));
    let mut failing_since: Option<Instant> = None;
    loop {
        let called = now_us();
        match lock.acquire_with(&policy).await {
            Ok(()) => {
                let got = now_us();
                let sent = match lock.remaining_time() {
                    // The expiry is `sent + TTL`: recover `sent`.
                    Some(left) if !left.is_zero() => {
                        got.saturating_sub(config.ttl.saturating_sub(left).as_micros() as u64)
                    }
                    // Already expired when it returned (the process was
                    // stopped mid-acquire): all we know is that the request
                    // went out after the call began.
                    _ => called,
                };
                return Ok((sent.max(called), got));
            }
            Err(error) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                history
                    .log(&Event::AcquireError {
                        w: config.id,
                        at: now_us(),
                        error: error_chain(&error),
                    })
                    .map_err(|e| e.to_string())?;
                if since.elapsed() > config.give_up_after {
                    return Err(format!(
                        "worker {}: the store kept failing for {:?}: {}",
                        config.id,
                        config.give_up_after,
                        error_chain(&error)
                    ));
                }
                if !matches!(error, LockError::Timeout { .. }) {
                    tokio::time::sleep(Duration::from_millis(20 + rng.below(30))).await;
                }
            }
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// xorshift64*: enough randomness for picking keys and pauses, no dependency.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the operating system.
    pub fn seeded() -> Self {
        Rng(getrandom::u64().unwrap_or(0x2545_f491_4f6c_dd1d) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

impl WorkerConfig {
    /// The command line of a worker process: `key=value` words, store first.
    pub fn to_args(&self, store: &str, url: &str) -> Vec<String> {
        vec![
            format!("store={store}"),
            format!("url={url}"),
            format!("id={}", self.id),
            format!("keys={}", self.keys.join(",")),
            format!("prefix={}", self.lock_prefix),
            format!("ops={}", self.ops),
            format!("ttl_ms={}", self.ttl.as_millis()),
            format!("max_pause_us={}", self.max_pause.as_micros()),
            format!("resource={}", self.resource_dir.display()),
            format!("history={}", self.history.display()),
            format!("give_up_ms={}", self.give_up_after.as_millis()),
        ]
    }

    /// Parses [`to_args`](Self::to_args); returns the store, its url and the config.
    ///
    /// # Errors
    /// A missing or malformed word.
    pub fn from_args(args: &[String]) -> Result<(String, String, Self), String> {
        let get = |name: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_owned)
                .ok_or_else(|| format!("missing `{name}=`"))
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?.parse().map_err(|e| format!("`{name}`: {e}"))
        };
        let config = WorkerConfig {
            id: u32::try_from(num("id")?).map_err(|e| e.to_string())?,
            keys: get("keys")?.split(',').map(str::to_owned).collect(),
            lock_prefix: get("prefix")?,
            ops: num("ops")?,
            ttl: Duration::from_millis(num("ttl_ms")?),
            max_pause: Duration::from_micros(num("max_pause_us")?),
            resource_dir: get("resource")?.into(),
            history: get("history")?.into(),
            give_up_after: Duration::from_millis(num("give_up_ms")?),
        };
        Ok((get("store")?, get("url")?, config))
    }
}
