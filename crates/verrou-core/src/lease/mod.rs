//! The lease engine: what every primitive (a lock today; semaphores and
//! reader-writer locks next) is built from.
//!
//! - [`grant`]: one acquisition, its owner string, fencing token and the
//!   local, monotonic view of its lease;
//! - [`signal`]: the lost-lease signal a holder (or its child tasks) waits on;
//! - [`policy`]: renewal and the clock-drift margin;
//! - [`acquire`]: the retry and wake-up loop;
//! - [`cancel`]: clean-up of dropped or failed calls, always for *their* grant;
//! - [`gate`]: the one-holder locks of a handle's turn and a grant's calls;
//! - [`renew`]: the keep-alive task;
//! - [`run`]: work raced against the lost signal, released however it ends.

pub(crate) mod acquire;
pub(crate) mod cancel;
pub(crate) mod gate;
pub(crate) mod grant;
pub(crate) mod policy;
pub(crate) mod renew;
pub(crate) mod run;
pub(crate) mod signal;
