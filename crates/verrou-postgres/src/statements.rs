//! The statements, one per store operation, and the TTL parameter they
//! share.
//!
//! Each operation is a single statement, so PostgreSQL applies it atomically
//! with the row lock it takes: under READ COMMITTED a concurrent writer of the
//! same key waits for the first to commit, then re-checks the `WHERE` against
//! the row as it is now. Expiry is always compared with `clock_timestamp()`,
//! the server's clock at the moment the row is examined (not `now()`, which is
//! when the transaction began, possibly before a wait on a row lock).

use std::time::Duration;

use verrou_core::Expiry;
use verrou_core::store::TableName;

/// The SQL this store runs, one statement per operation, with its table
/// name spliced in ([`PostgresStore::statements`](crate::PostgresStore::statements)):
/// for a DBA's review, an audit, or a benchmark that runs the same work bare
/// on the driver. Each field says its parameters, in order, and what it
/// answers. Read-only: the store never runs anything else on the table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Statements {
    /// `$1` key, `$2` owner, `$3` TTL in ms (NULL: never). Returns the new
    /// fencing token, or no row when a live lock is in the way.
    pub acquire: String,
    /// `$1` key, `$2` owner. One row when released (and announced).
    pub release: String,
    /// `$1` key. One row when a holder was evicted (and announced).
    pub force_release: String,
    /// `$1` key. One boolean.
    pub exists: String,
    /// `$1` key, `$2` owner, `$3` TTL in ms (NULL: never). One row when extended.
    pub extend: String,
    /// `$1` the most rows to delete (NULL: all). One row: how many were.
    pub prune: String,
}

/// A live lock: held by someone and not expired by the server's clock.
const LIVE: &str = "owner IS NOT NULL AND (expires_at IS NULL OR expires_at > clock_timestamp())";

/// The server's clock in microseconds since the Unix epoch, read when the
/// expression is evaluated. Fencing tokens are at least this, so a key whose
/// row was pruned starts again above every token it had before.
const CLOCK_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// How far behind the server's clock a free row's token must be before a
/// prune may delete it, in microseconds (1 s).
///
/// Deleting a row is safe once every token issued later is higher, and a
/// later token is at least the clock when its statement evaluated it. The
/// margin covers the two ways that clock reading can lag behind the delete:
/// an acquire that evaluated its `VALUES` just before a prune deleted the
/// row, then inserted (PostgreSQL retries the insert with the values already
/// computed), and a server clock stepped back. Either must exceed a second
/// to matter, where the plain "token below the clock" rule tolerated none.
pub(crate) const PRUNE_MARGIN_US: i64 = 1_000_000;

impl Statements {
    /// `announce`: releases also `pg_notify` the table's channel with the
    /// key, in the same statement (see `announcements`).
    pub(crate) fn new(table: &TableName, announce: bool) -> Self {
        let t = table.quoted();
        // A row a prune may delete: nobody holds it, and its token is
        // behind the clock by the margin.
        let prunable = format!(
            "(owner IS NULL OR expires_at <= clock_timestamp()) \
             AND fencing_token < {CLOCK_US} - {PRUNE_MARGIN_US}"
        );
        // Turns "UPDATE ... RETURNING key" into a statement that also
        // announces each released key; the row count is unchanged.
        let announced = |update: String| {
            if announce {
                format!(
                    "WITH released AS ({update} RETURNING key) \
                     SELECT pg_notify('{channel}', key) FROM released",
                    // A validated identifier has no quote: a safe literal.
                    channel = table.as_str()
                )
            } else {
                format!("{update} RETURNING 1")
            }
        };
        Statements {
            // A token is the larger of "one more than the row's last" and
            // the server clock in microseconds: rising while the row exists,
            // and above every pruned row's tokens when a new row starts (a
            // row is only pruned once its token is behind the clock). Tables
            // of older versions, whose tokens count from 1, jump once to the
            // clock and keep rising. The conflict branch only fires when the
            // row is free or expired, which is exactly "take it"; otherwise
            // RETURNING yields no row: Held.
            acquire: format!(
                "INSERT INTO {t} AS l (key, owner, expires_at, fencing_token) \
                 VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond', {CLOCK_US}) \
                 ON CONFLICT (key) DO UPDATE \
                 SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, \
                     fencing_token = GREATEST(l.fencing_token + 1, {CLOCK_US}) \
                 WHERE l.owner IS NULL OR l.expires_at <= clock_timestamp() \
                 RETURNING l.fencing_token"
            ),
            release: announced(format!(
                "UPDATE {t} SET owner = NULL, expires_at = NULL \
                 WHERE key = $1 AND owner = $2 AND {LIVE}"
            )),
            force_release: announced(format!(
                "UPDATE {t} SET owner = NULL, expires_at = NULL \
                 WHERE key = $1 AND owner IS NOT NULL"
            )),
            exists: format!("SELECT EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND {LIVE})"),
            extend: format!(
                "UPDATE {t} SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond' \
                 WHERE key = $1 AND owner = $2 AND {LIVE} RETURNING 1"
            ),
            // Free (released or expired) rows whose token the clock has
            // passed by the margin. The inner SELECT picks at most `$1` of
            // them and locks them, skipping rows another statement is
            // working on (a prune never waits for an acquire); the DELETE
            // checks the condition again on the row as it now is, so a row
            // taken in between is never deleted.
            prune: format!(
                "WITH gone AS (\
                     DELETE FROM {t} WHERE key IN (\
                         SELECT key FROM {t} WHERE {prunable} LIMIT $1 FOR UPDATE SKIP LOCKED) \
                     AND {prunable} RETURNING 1) \
                 SELECT count(*) FROM gone"
            ),
        }
    }
}

/// TTLs beyond this many milliseconds (about 10,000 years) are stored as
/// "never expires": the sum would overflow PostgreSQL's timestamp range, and
/// no such lock will see its expiry anyway.
const FOREVER_MS: u64 = 10_000 * 366 * 24 * 3600 * 1000;

/// The `$3` parameter: whole milliseconds by the one rule
/// ([`Expiry::whole_millis`]: rounded up, at least 1); `None` for never.
pub(crate) fn ttl_millis(ttl: Option<Duration>) -> Option<i64> {
    let millis = ttl
        .map_or(Expiry::Never, Expiry::After)
        .whole_millis(FOREVER_MS)?;
    i64::try_from(millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(None), None);
        assert_eq!(ttl_millis(Some(Duration::from_micros(1))), Some(1));
        assert_eq!(ttl_millis(Some(Duration::from_millis(1500))), Some(1500));
        assert_eq!(ttl_millis(Some(Duration::from_micros(1500))), Some(2));
        assert_eq!(ttl_millis(Some(Duration::MAX)), None);
        assert_eq!(ttl_millis(Some(Duration::from_nanos(1))), Some(1));
        assert_eq!(ttl_millis(Some(Duration::ZERO)), Some(1));
    }
}
