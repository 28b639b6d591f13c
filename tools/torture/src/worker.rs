//! One torture worker: acquire a lock on one of a few keys, read the fenced
//! resource, pause, write it back, release — in a loop, logging every step.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{Lock, LockError, LockFactory, LockGuard, RetryPolicy};

use crate::case::Case;
use crate::history::{Access, Event, HistoryWriter, Op, Release, now_us};
use crate::renewing_hold::{self, RenewalWork};
use crate::resource::{ACCOUNTS, FencedResource, Outcome};

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
    /// The renewal run's work (`None`: the plain run's brief hold).
    pub renewal: Option<RenewalWork>,
}

/// Faults a runner can inject into a worker that is a thread, not a process
/// (the memory store lives in one process, so `kill` and `SIGSTOP` are
/// simulated at the worker's pause point, inside its critical section).
#[derive(Debug, Default)]
pub struct ThreadControl {
    /// Abandon the held lock and stop, as a killed process would.
    pub crash: AtomicBool,
    /// Stall this many milliseconds inside the critical section, as a stopped
    /// process (or a long GC pause) would. A renewing hold stalls the whole
    /// thread, so that its renewal task (on the same runtime) stops too.
    pub stall_ms: AtomicU64,
    /// Set while the worker holds a lock.
    pub holding: AtomicBool,
}

/// What a hold needs besides its lock: the worker's config, the resource,
/// the runner's controls (threads), the history and the randomness.
pub(crate) struct HoldContext<'a> {
    pub(crate) config: &'a WorkerConfig,
    pub(crate) resource: &'a FencedResource,
    pub(crate) control: Option<&'a ThreadControl>,
    pub(crate) history: &'a mut HistoryWriter,
    pub(crate) rng: &'a mut Rng,
}

impl HoldContext<'_> {
    pub(crate) fn log(&mut self, event: &Event) -> Result<(), String> {
        self.history
            .log(event)
            .map_err(|e| format!("worker {}: {e}", self.config.id))
    }

    /// Tells the runner (threads) whether this worker holds a lock.
    pub(crate) fn set_holding(&self, holding: bool) {
        if let Some(control) = self.control {
            control.holding.store(holding, Ordering::SeqCst);
        }
    }

    /// Logs the end of a release.
    pub(crate) fn log_released(
        &mut self,
        n: u64,
        result: Result<(), LockError>,
    ) -> Result<(), String> {
        let rel = match result {
            Ok(()) => Release::Ok,
            Err(LockError::NotOwned { .. }) => Release::NotOwned,
            Err(_) => Release::Error,
        };
        let w = self.config.id;
        self.log(&Event::Released {
            w,
            n,
            rel,
            rel_end: now_us(),
        })
    }
}

/// How a hold ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HoldEnd {
    /// Released (or the release was tried): on to the next operation.
    Released,
    /// The thread "crashed" holding the lock: the worker stops.
    Crashed,
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
    // Retries every 3 ms (or on a release announcement) for up to 20 s: the
    // workers contend hard for few keys.
    let locks = locks.clone().with_retry(
        RetryPolicy::default()
            .with_delay(Duration::from_millis(3))
            .with_timeout(Some(Duration::from_secs(20))),
    );
    let mut history = HistoryWriter::create(&config.history).map_err(|e| e.to_string())?;
    let resource = FencedResource::new(&config.resource_dir);
    let mut rng = Rng::seeded();
    let mut cx = HoldContext {
        config,
        resource: &resource,
        control: control.as_deref(),
        history: &mut history,
        rng: &mut rng,
    };
    for n in 0..config.ops {
        let key = config.keys[cx.rng.below(config.keys.len() as u64) as usize].clone();
        let lock = locks
            .create_lock(format!("{}{key}", config.lock_prefix), config.ttl)
            .map_err(|e| e.to_string())?;
        let held = acquire(&lock, &locks, &mut cx).await?;
        let tok = lock.fencing_token();
        let renewing = held.guard.is_some();
        let (sent, got) = (held.sent, held.got);
        cx.log(&Event::Acquired {
            w: config.id,
            n,
            key: key.clone(),
            sent,
            got,
            tok,
            renewing,
        })?;
        cx.set_holding(true);
        let op = Op {
            w: config.id,
            n,
            key,
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
            renewals: 0,
        };
        let end = match (held.guard, &config.renewal) {
            (Some(guard), Some(work)) => renewing_hold::hold(guard, op, work, &mut cx).await?,
            _ => brief_hold(lock, op, &mut cx).await?,
        };
        if end == HoldEnd::Crashed {
            return Ok(());
        }
    }
    Ok(())
}

/// The plain run's hold: read, pause a few milliseconds, write, release.
async fn brief_hold(lock: Lock, mut op: Op, cx: &mut HoldContext<'_>) -> Result<HoldEnd, String> {
    let token = op.tok.unwrap_or(0);
    let io = |e: std::io::Error| format!("worker {}: {e}", op.w);
    let read = cx.resource.read(&op.key, token).map_err(io)?;
    let max_pause = cx.config.max_pause.as_micros() as u64;
    let pause = Duration::from_micros(cx.rng.below(max_pause + 1));
    tokio::time::sleep(pause).await;
    if let Some(control) = cx.control {
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
            cx.log(&Event::Op(op))?;
            // Dropping a `Lock` sends nothing: the lock stays until its TTL.
            drop(lock);
            return Ok(HoldEnd::Crashed);
        }
    }
    match read {
        Outcome::Rejected => op.read = Access::Rejected,
        Outcome::Accepted { seq, accounts } => {
            (op.read, op.read_seq) = (Access::Accepted, seq);
            let next = transfer(accounts, cx.rng);
            match cx.resource.write(&op.key, token, next).map_err(io)? {
                Outcome::Accepted { seq, .. } => (op.write, op.write_seq) = (Access::Accepted, seq),
                Outcome::Rejected => op.write = Access::Rejected,
            }
            op.write_end = now_us();
        }
    }
    cx.set_holding(false);
    op.rel_start = now_us();
    op.rel = Release::Pending;
    let n = op.n;
    cx.log(&Event::Op(op))?;
    let released = lock.release().await;
    cx.log_released(n, released)?;
    Ok(HoldEnd::Released)
}

/// The balances after moving a random amount between two random accounts.
pub(crate) fn transfer(accounts: [i64; ACCOUNTS], rng: &mut Rng) -> [i64; ACCOUNTS] {
    let from = rng.below(ACCOUNTS as u64) as usize;
    let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
    let amount = 1 + rng.below(50) as i64;
    let mut next = accounts;
    next[from] -= amount;
    next[to] += amount;
    next
}

/// A granted acquire: when it was sent (at the earliest) and returned, and
/// the guard of a renewing hold.
struct Held {
    sent: u64,
    got: u64,
    guard: Option<LockGuard>,
}

/// Acquires through the library's own waiting (release announcements where
/// the store has them, polling otherwise), retrying after store errors. A
/// renewing run takes a guard, whose lost signal the hold watches.
///
/// The send time comes from the handle's own lease view, which the library
/// counts from *before* the request: it vouches for the lease until
/// `sent + TTL - drift margin`. The server granted the lease after `sent`, so
/// its lease lasts at least until `sent + TTL`, which is what the checker
/// needs.
async fn acquire(
    lock: &Lock,
    locks: &LockFactory,
    cx: &mut HoldContext<'_>,
) -> Result<Held, String> {
    let config = cx.config;
    let vouched = config
        .ttl
        .saturating_sub(locks.lease().drift_margin(config.ttl));
    let mut failing_since: Option<Instant> = None;
    loop {
        let called = now_us();
        let result = if config.renewal.is_some() {
            lock.acquire_guard().await.map(Some)
        } else {
            lock.acquire().await.map(|()| None)
        };
        match result {
            Ok(guard) => {
                let got = now_us();
                let sent = match lock.remaining_time() {
                    // Vouched until `sent + TTL - margin`: recover `sent`.
                    Some(left) if !left.is_zero() => {
                        got.saturating_sub(vouched.saturating_sub(left).as_micros() as u64)
                    }
                    // Already given up when it returned (the process was
                    // stopped mid-acquire): all we know is that the request
                    // went out after the call began.
                    _ => called,
                };
                return Ok(Held {
                    sent: sent.max(called),
                    got,
                    guard,
                });
            }
            Err(error) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                cx.log(&Event::AcquireError {
                    w: config.id,
                    at: now_us(),
                    error: error_chain(&error),
                })?;
                if since.elapsed() > config.give_up_after {
                    return Err(format!(
                        "worker {}: the store kept failing for {:?}: {}",
                        config.id,
                        config.give_up_after,
                        error_chain(&error)
                    ));
                }
                if !matches!(error, LockError::Timeout { .. }) {
                    tokio::time::sleep(Duration::from_millis(20 + cx.rng.below(30))).await;
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
    /// The command line of a worker process: `key=value` words, the run
    /// (`store=redis-renewal`) first.
    pub fn to_args(&self, case: Case, url: &str) -> Vec<String> {
        let mut args = vec![
            format!("store={case}"),
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
        ];
        if let Some(work) = &self.renewal {
            args.push(format!("renewal={}", work.to_arg()));
        }
        args
    }

    /// Parses [`to_args`](Self::to_args); returns the run, its store's url
    /// and the config.
    ///
    /// # Errors
    /// A missing or malformed word.
    pub fn from_args(args: &[String]) -> Result<(Case, String, Self), String> {
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
            renewal: match get("renewal") {
                Ok(arg) => Some(RenewalWork::from_arg(&arg)?),
                Err(_) => None,
            },
        };
        Ok((get("store")?.parse()?, get("url")?, config))
    }
}
