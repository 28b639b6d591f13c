//! The history every worker writes: one JSON line when it acquires a lock and
//! one when the operation is over, so that a worker killed while holding still
//! leaves the start of its critical section behind.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch on this machine's wall clock. Every
/// worker runs on the same machine as the store, so all of them (and the
/// servers) read the same clock; a worker whose clock was deliberately set
/// ahead takes the offset back off (see `skew`).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
        .saturating_sub(crate::skew::ahead_us())
}

/// What the fenced resource said to a read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Not attempted (an earlier step failed).
    Skipped,
    /// The token was at least the highest seen: the access happened.
    Accepted,
    /// The token was lower than one already seen: refused, nothing changed.
    Rejected,
}

/// How the release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Sent, answer not logged yet (the worker may have died meanwhile).
    Pending,
    /// The store released our lock.
    Ok,
    /// The store said we no longer held it (our lease had run out).
    NotOwned,
    /// The store failed; the lock may stay until its TTL.
    Error,
    /// The worker abandoned the lock on purpose (thread "crash").
    Abandoned,
}

/// One line of a worker's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// The lock was granted; written before touching the resource.
    Acquired {
        /// Worker id.
        w: u32,
        /// Operation number within the worker.
        n: u64,
        /// Lock key.
        key: String,
        /// When the successful acquire call was sent (µs).
        sent: u64,
        /// When it returned (µs).
        got: u64,
        /// Fencing token.
        tok: Option<u64>,
        /// The lease renews itself while held (a `-renewal` run): the hold
        /// is a series of [`Step`]s gated on the lost signal.
        #[serde(default)]
        renewing: bool,
    },
    /// One step of a renewing hold, written after its write returned.
    Step(Step),
    /// A renewing holder found its lost signal fired and stopped writing.
    Signalled {
        /// Worker id.
        w: u32,
        /// Operation number within the worker.
        n: u64,
        /// When the signal was seen (µs).
        at: u64,
        /// Why the lease ended, as the signal said (`LossReason`, debug form).
        reason: String,
        /// Renewals the store had confirmed for this hold.
        renewals: u64,
    },
    /// A thread worker stalled its whole runtime inside a hold (the thread
    /// version of `SIGSTOP`; process stops are in the runner's fault log).
    Paused {
        /// Worker id.
        w: u32,
        /// Operation number within the worker.
        n: u64,
        /// When the stall began (µs).
        from: u64,
        /// When it ended (µs).
        to: u64,
    },
    /// The whole operation, written just before the release is sent (a
    /// worker killed during the release has then still said it released).
    Op(Op),
    /// How the release ended.
    Released {
        /// Worker id.
        w: u32,
        /// Operation number within the worker.
        n: u64,
        /// The outcome.
        rel: Release,
        /// When the release returned (µs).
        rel_end: u64,
    },
    /// An acquire that failed with a store error (connection killed, restart).
    AcquireError {
        /// Worker id.
        w: u32,
        /// When (µs).
        at: u64,
        /// The error, displayed.
        error: String,
    },
}

/// One lock operation: acquire, read, pause, write, release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// Worker id.
    pub w: u32,
    /// Operation number within the worker.
    pub n: u64,
    /// Lock key.
    pub key: String,
    /// When the successful acquire call was sent (µs).
    pub sent: u64,
    /// When it returned (µs).
    pub got: u64,
    /// Fencing token of the hold.
    pub tok: Option<u64>,
    /// The fenced read.
    pub read: Access,
    /// The resource's sequence number after the read.
    pub read_seq: u64,
    /// The fenced write.
    pub write: Access,
    /// The resource's sequence number after the write.
    pub write_seq: u64,
    /// When the write returned (µs).
    pub write_end: u64,
    /// When the release was sent (µs); the critical section ends here.
    pub rel_start: u64,
    /// When it returned (µs).
    pub rel_end: u64,
    /// How the release ended.
    pub rel: Release,
    /// Whether the worker stalled itself past the TTL inside this section.
    #[serde(default)]
    pub stalled: bool,
    /// Renewals the store confirmed for this hold (renewing holds only).
    #[serde(default)]
    pub renewals: u64,
}

/// One step of a renewing hold: a money transfer (fenced read, then fenced
/// write), the lost signal checked before each access.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Worker id.
    pub w: u32,
    /// Operation number within the worker.
    pub n: u64,
    /// Step number within the hold.
    pub i: u32,
    /// The fenced read.
    pub read: Access,
    /// The resource's sequence number after the read.
    pub read_seq: u64,
    /// The fenced write (`Skipped` when the signal fired after the read).
    pub write: Access,
    /// The resource's sequence number after the write.
    pub write_seq: u64,
    /// When the signal was checked, just before the write (µs).
    pub checked: u64,
    /// Until when the local clock vouched for the lease at that check (µs;
    /// 0 when the signal had fired). The signal fires by itself at this
    /// instant unless a renewal moves it, and no renewal can run between the
    /// check and the write: the renewal task shares the worker's
    /// single-threaded runtime and there is no `.await` in between.
    pub vouched_until: u64,
    /// When the write was sent to the resource (µs).
    pub write_start: u64,
    /// When it returned (µs).
    pub write_end: u64,
    /// Renewals the store had confirmed for this hold at the check.
    pub renewals: u64,
}

impl Event {
    /// Whether a worker whose history ends with this event holds a lock.
    pub fn holding(&self) -> bool {
        matches!(
            self,
            Event::Acquired { .. } | Event::Step(_) | Event::Paused { .. }
        )
    }
}

/// Appends events to a worker's history file, one flushed line each, so that
/// `kill -9` loses at most the line being written.
#[derive(Debug)]
pub struct HistoryWriter {
    file: File,
}

impl HistoryWriter {
    /// Creates (truncates) the history at `path`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(HistoryWriter {
            file: File::create(path)?,
        })
    }

    /// Writes one event as one line, in one `write` call.
    ///
    /// # Errors
    /// When the disk write fails.
    pub fn log(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// Reads a history; a torn last line (the worker died while writing it) is
/// skipped.
///
/// # Errors
/// When the file cannot be read.
pub fn read_history(path: &Path) -> std::io::Result<Vec<Event>> {
    let mut events = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        if let Ok(event) = serde_json::from_str(&line?) {
            events.push(event);
        }
    }
    Ok(events)
}
