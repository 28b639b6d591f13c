//! The statements, one per store operation, each atomic on its own.
//!
//! # Reading the results
//!
//! The statements report through the OK packet rather than a result set, so
//! each operation is a single round trip on a prepared statement:
//!
//! - `acquire` is an upsert. `LAST_INSERT_ID(expr)` sets the "last insert id"
//!   the server reports for *this* statement on *this* connection, so it is
//!   atomic with the upsert and no other client can change it: the new token
//!   when the row was inserted or taken over, 0 when the lock was held.
//!   Affected-row counts are not used because their meaning depends on the
//!   client's `CLIENT_FOUND_ROWS` flag, which a user's pool may set either way.
//! - `release` and `force_release` always change a row they match
//!   (`expires_at` becomes 0 from NULL or a time in the future), so one
//!   affected row means "released" under either flag.
//! - `extend` may write the expiry the row already has (the same TTL twice in
//!   one millisecond, or "never" twice), which counts as zero changed rows
//!   without `CLIENT_FOUND_ROWS`; it reports a match through
//!   `LAST_INSERT_ID(fencing_token)` instead, which is at least 1.

use std::time::Duration;

use verrou_core::Expiry;
use verrou_core::store::TableName;

/// The server's clock in milliseconds since the Unix epoch, independent of the
/// session time zone.
///
/// `UNIX_TIMESTAMP(NOW(3))` would convert the local time back through the
/// session time zone, which is ambiguous for the hour repeated when daylight
/// saving time ends. `UNIX_TIMESTAMP()` without an argument is the epoch
/// directly; the milliseconds come from `NOW(6)`, whose fraction is the same in
/// every time zone. Both read the statement's start time, so they agree with
/// each other and every mention of `NOW_MS` in one statement is the same
/// instant.
const NOW_MS: &str = "(UNIX_TIMESTAMP() * 1000 + MICROSECOND(NOW(6)) DIV 1000)";

/// Where a lease's TTL is counted from: the next whole millisecond. `NOW_MS`
/// is rounded down, so counting from it would end a lease up to 1 ms before
/// its TTL; one millisecond late is safe, one early is not.
const LEASE_START_MS: &str = "(UNIX_TIMESTAMP() * 1000 + MICROSECOND(NOW(6)) DIV 1000 + 1)";

/// The same clock in microseconds, the floor of every fencing token, so that
/// a key whose row was pruned starts again above every token it had.
const NOW_US: &str = "(UNIX_TIMESTAMP() * 1000000 + MICROSECOND(NOW(6)))";

/// How far behind the server's clock a free row's token must be before a
/// prune may delete it, in microseconds (1 s).
///
/// Deleting a row is safe once every token issued later is higher, and a
/// later token is at least the server's clock at the start of its statement.
/// The margin covers the two ways that reading can lag behind the delete: an
/// upsert that started just before a prune deleted its row and then inserted
/// a fresh one, and a server clock stepped back. Either must exceed a second
/// to matter, where a plain "token below the clock" rule tolerated none.
const PRUNE_MARGIN_US: i64 = 1_000_000;

/// TTLs are stored as milliseconds added to the server's clock in a signed
/// 64-bit column; anything longer than this (about 146 million years) is
/// treated as "never expires" instead of overflowing.
const MAX_TTL_MILLIS: u64 = 1 << 62;

/// The SQL this store runs, one statement per operation, with its table
/// name spliced in ([`MysqlStore::statements`](crate::MysqlStore::statements)):
/// for a DBA's review, an audit, or a benchmark that runs the same work bare
/// on the driver. Each field says its parameters, in order, and what it
/// answers. Read-only: the store never runs anything else on the table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Statements {
    /// Parameters: key, owner, ttl, owner, ttl (the TTL as whole
    /// milliseconds, rounded up, or NULL for never). Reports the token as
    /// last insert id, 0 when held.
    pub acquire: String,
    /// Parameters: key, owner. One affected row when released.
    pub release: String,
    /// Parameters: key.
    pub force_release: String,
    /// Parameters: key. One row when held.
    pub exists: String,
    /// Parameters: ttl, key, owner. A non-zero last insert id when extended.
    pub extend: String,
    /// Parameters: the most rows to delete. Affected rows: how many were.
    pub prune: String,
}

impl Statements {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.backquoted();
        // In `ON DUPLICATE KEY UPDATE` (as in `UPDATE`), each assignment sees
        // the columns already assigned before it, unless the server runs with
        // MariaDB's SIMULTANEOUS_ASSIGNMENT mode. Every condition below reads
        // only `expires_at`, which is assigned last, so all three see the row
        // as it was and agree, in either mode.
        let free = format!("expires_at <= {NOW_MS}");
        let live = format!("(expires_at IS NULL OR expires_at > {NOW_MS})");
        Statements {
            // A token is the larger of "one more than the row's last" and the
            // server clock in microseconds: rising while the row exists, and
            // above every pruned row's tokens when a new row starts. Tables
            // of older versions, whose tokens count from 1, jump once to the
            // clock and keep rising.
            acquire: format!(
                "INSERT INTO {t} (lock_key, owner, expires_at, fencing_token) \
                 VALUES (?, ?, {LEASE_START_MS} + ?, LAST_INSERT_ID({NOW_US})) \
                 ON DUPLICATE KEY UPDATE \
                 fencing_token = IF({free}, LAST_INSERT_ID(GREATEST(fencing_token + 1, {NOW_US})), \
                                    fencing_token + LAST_INSERT_ID(0)), \
                 owner = IF({free}, ?, owner), \
                 expires_at = IF({free}, {LEASE_START_MS} + ?, expires_at)"
            ),
            release: format!(
                "UPDATE {t} SET owner = NULL, expires_at = 0 \
                 WHERE lock_key = ? AND owner = ? AND {live}"
            ),
            force_release: format!(
                "UPDATE {t} SET owner = NULL, expires_at = 0 WHERE lock_key = ?"
            ),
            exists: format!("SELECT 1 FROM {t} WHERE lock_key = ? AND {live}"),
            extend: format!(
                "UPDATE {t} SET fencing_token = LAST_INSERT_ID(fencing_token), \
                 expires_at = {LEASE_START_MS} + ? \
                 WHERE lock_key = ? AND owner = ? AND {live}"
            ),
            // Free (released or expired) rows whose token the clock has
            // passed by the margin. InnoDB locks the rows it scans until the
            // statement ends, so acquisitions wait for a prune: a bounded
            // table keeps that short, and the background prune deletes a
            // batch at a time.
            prune: format!(
                "DELETE FROM {t} WHERE {free} AND fencing_token < {NOW_US} - {PRUNE_MARGIN_US} \
                 LIMIT ?"
            ),
        }
    }

    /// The statement of every lock operation, to prepare them all when the
    /// store is built. Not `prune`: MySQL checks privileges when preparing,
    /// and a role without DELETE must still be able to lock (only pruning
    /// then fails).
    pub(crate) fn all(&self) -> [&str; 5] {
        [
            &self.acquire,
            &self.release,
            &self.force_release,
            &self.exists,
            &self.extend,
        ]
    }
}

/// A TTL as the milliseconds to add to the server's clock; `None` (SQL NULL,
/// and `now + NULL` is NULL) for "never expires".
///
/// By the one rule ([`Expiry::whole_millis`]): rounded up and at least 1 ms,
/// so that a sub-millisecond (or zero) TTL still gives the holder its
/// instant rather than expiring on arrival.
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Option<i64> {
    let millis = ttl
        .map_or(Expiry::Never, Expiry::After)
        .whole_millis(MAX_TTL_MILLIS)?;
    i64::try_from(millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_and_saturate_to_never() {
        assert_eq!(ttl_millis(None), None);
        assert_eq!(ttl_millis(Some(Duration::from_millis(1500))), Some(1500));
        assert_eq!(ttl_millis(Some(Duration::from_micros(1))), Some(1));
        assert_eq!(ttl_millis(Some(Duration::ZERO)), Some(1));
        assert_eq!(ttl_millis(Some(Duration::MAX)), None);
    }

    #[test]
    fn expires_at_is_assigned_last_in_the_upsert() {
        let sql = Statements::new(&TableName::new("mysql", "t").unwrap()).acquire;
        let update = sql.split("ON DUPLICATE KEY UPDATE").nth(1).unwrap();
        let at = |column: &str| update.find(&format!(" {column} = IF(")).unwrap();
        assert!(at("fencing_token") < at("owner"));
        assert!(at("owner") < at("expires_at"));
    }
}
