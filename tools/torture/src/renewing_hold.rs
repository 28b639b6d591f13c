//! The renewal run's hold: a guard whose lease renews itself in the
//! background while the holder works for several TTLs in short steps, and
//! checks the guard's lost signal before every access to the resource.

use std::sync::atomic::Ordering;
use std::time::Duration;

use verrou_core::{LockGuard, LossReason, LostSignal};

use crate::history::{Access, Event, Op, Release, Step, now_us};
use crate::resource::Outcome;
use crate::worker::{HoldContext, HoldEnd, Rng, transfer};

/// How long a renewing hold works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalWork {
    /// The pause before each step; renewals run during it.
    pub step: Duration,
    /// The fewest steps of a hold.
    pub min_steps: u32,
    /// The most steps of a hold.
    pub max_steps: u32,
}

impl RenewalWork {
    fn steps(&self, rng: &mut Rng) -> u32 {
        let spread = u64::from(self.max_steps.saturating_sub(self.min_steps));
        self.min_steps + rng.below(spread + 1) as u32
    }

    /// `40ms:20-30`, for a worker's command line.
    pub fn to_arg(&self) -> String {
        format!(
            "{}ms:{}-{}",
            self.step.as_millis(),
            self.min_steps,
            self.max_steps
        )
    }

    /// Parses [`to_arg`](Self::to_arg).
    ///
    /// # Errors
    /// A malformed argument.
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        let bad = || format!("`renewal={arg}`: expected `<step>ms:<min>-<max>`");
        let (step, steps) = arg.split_once(':').ok_or_else(bad)?;
        let (min, max) = steps.split_once('-').ok_or_else(bad)?;
        let step: u64 = step
            .strip_suffix("ms")
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(bad)?;
        Ok(RenewalWork {
            step: Duration::from_millis(step),
            min_steps: min.parse().map_err(|_| bad())?,
            max_steps: max.parse().map_err(|_| bad())?,
        })
    }
}

/// Where the lease stood when the holder checked the signal.
struct Vouched {
    /// When the check was made (µs).
    checked: u64,
    /// Until when the local clock vouched for the lease (µs).
    until: u64,
}

/// Checks the lost signal just before an access to the resource.
///
/// `checked` is read before the lease view, so `until` can only come out a
/// little early: the checker then counts a write as unsignalled only if it
/// truly began before the signal could have fired.
fn check_signal(lost: &LostSignal, guard: &LockGuard) -> Result<Vouched, LossReason> {
    let checked = now_us();
    let left = guard.remaining_time();
    if let Some(reason) = lost.reason() {
        return Err(reason);
    }
    let until = left.map_or(u64::MAX, |left| {
        checked.saturating_add(u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
    });
    Ok(Vouched { checked, until })
}

/// Works `work`'s steps under `guard`, then releases it. Each step sleeps
/// (renewals run then), takes the runner's thread faults, and moves money:
/// the signal is checked before the read and again before the write, and a
/// lost signal ends the hold without touching the resource again.
pub(crate) async fn hold(
    guard: LockGuard,
    mut op: Op,
    work: &RenewalWork,
    cx: &mut HoldContext<'_>,
) -> Result<HoldEnd, String> {
    let token = op.tok.unwrap_or(0);
    let (w, n) = (op.w, op.n);
    let io = |e: std::io::Error| format!("worker {w}: {e}");
    let lost = guard.lost();
    let steps = work.steps(cx.rng);
    for i in 0..steps {
        tokio::time::sleep(work.step).await;
        if let Some(control) = cx.control {
            let stall = control.stall_ms.swap(0, Ordering::SeqCst);
            if stall > 0 {
                // Block the thread, not just this task: the renewal task
                // runs on the same single-threaded runtime and must stop too,
                // as it would in a process stopped with SIGSTOP.
                let from = now_us();
                std::thread::sleep(Duration::from_millis(stall));
                op.stalled = true;
                cx.log(&Event::Paused {
                    w,
                    n,
                    from,
                    to: now_us(),
                })?;
            }
            if control.crash.load(Ordering::SeqCst) {
                op.rel_start = now_us();
                op.rel = Release::Abandoned;
                op.renewals = guard.renewals();
                cx.log(&Event::Op(op))?;
                // A crash sends nothing: forgetting the guard keeps it from
                // releasing, and its renewal task ends with this thread's
                // runtime, so the lease runs out at its TTL as a dead
                // process's would.
                std::mem::forget(guard);
                return Ok(HoldEnd::Crashed);
            }
        }
        let signalled = |cx: &mut HoldContext<'_>, reason: LossReason| {
            cx.log(&Event::Signalled {
                w,
                n,
                at: now_us(),
                reason: format!("{reason:?}"),
                renewals: guard.renewals(),
            })
        };
        if let Err(reason) = check_signal(&lost, &guard) {
            signalled(cx, reason)?;
            break;
        }
        let mut step = Step {
            w,
            n,
            i,
            read: Access::Rejected,
            read_seq: 0,
            write: Access::Skipped,
            write_seq: 0,
            checked: 0,
            vouched_until: 0,
            write_start: 0,
            write_end: 0,
            renewals: guard.renewals(),
        };
        let accounts = match cx.resource.read(&op.key, token).map_err(io)? {
            Outcome::Accepted { seq, accounts } => {
                (step.read, step.read_seq) = (Access::Accepted, seq);
                accounts
            }
            Outcome::Rejected => {
                // A newer holder has touched the resource: fenced off.
                cx.log(&Event::Step(step))?;
                break;
            }
        };
        let next = transfer(accounts, cx.rng);
        let vouched = match check_signal(&lost, &guard) {
            Ok(vouched) => vouched,
            Err(reason) => {
                cx.log(&Event::Step(step))?;
                signalled(cx, reason)?;
                break;
            }
        };
        (step.checked, step.vouched_until) = (vouched.checked, vouched.until);
        step.write_start = now_us();
        let written = cx.resource.write(&op.key, token, next).map_err(io)?;
        step.write_end = now_us();
        let fenced_off = match written {
            Outcome::Accepted { seq, .. } => {
                (step.write, step.write_seq) = (Access::Accepted, seq);
                false
            }
            Outcome::Rejected => {
                step.write = Access::Rejected;
                true
            }
        };
        cx.log(&Event::Step(step))?;
        if fenced_off {
            break;
        }
    }
    cx.set_holding(false);
    op.renewals = guard.renewals();
    op.rel_start = now_us();
    op.rel = Release::Pending;
    cx.log(&Event::Op(op))?;
    let released = guard.release().await;
    cx.log_released(n, released)?;
    Ok(HoldEnd::Released)
}
