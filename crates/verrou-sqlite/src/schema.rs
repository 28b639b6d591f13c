//! The table: its name, its schema and the one statement behind each operation.
//!
//! The text here is the only copy: the store's own rusqlite connections and,
//! with the `sqlx` feature, an application's sqlx pool run the same
//! statements (see `backend`).

use std::sync::Arc;

use verrou_core::LockError;
use verrou_core::store::TableName;

/// The current time in Unix milliseconds, computed by SQLite inside the
/// statement. SQLite has no server: this is the local machine's clock, shared
/// by every process that opens the file. `'now'` is fixed for the duration of
/// one statement, so every comparison in a statement sees the same instant.
const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// The same clock in microseconds, the floor of every fencing token, so that
/// a key whose row was pruned starts again above every token it had. The
/// clock only has milliseconds; tokens within one millisecond count up by
/// one from the row's last.
const NOW_US: &str = "(CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000)";

/// How far behind the clock a free row's token must be before a prune may
/// delete it, in microseconds (1 s). SQLite runs one write at a time and
/// reads the clock inside it, so a later token is at least the clock of a
/// later write; the margin lets the machine's clock step back by up to a
/// second (an NTP correction) without a pruned key's tokens going back.
pub(crate) const PRUNE_MARGIN_US: i64 = 1_000_000;

/// Where a lease's TTL is counted from: the next whole millisecond. `NOW_MS`
/// is rounded down, so counting from it would end a lease up to 1 ms before
/// its TTL; one millisecond late is safe, one early is not.
const LEASE_START_MS: &str = "(CAST(unixepoch('subsec') * 1000 AS INTEGER) + 1)";

/// `CREATE TABLE IF NOT EXISTS` for `table`.
pub(crate) fn create_table(table: &TableName) -> String {
    // One row per key: a free lock keeps its row (owner NULL) so that its
    // fencing token keeps counting up, until a prune deletes it once the
    // clock has passed its token. STRICT refuses a value of the wrong type
    // instead of silently storing it.
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n    \
            key           TEXT    NOT NULL PRIMARY KEY,\n    \
            owner         TEXT,\n    \
            expires_at    INTEGER,\n    \
            fencing_token INTEGER NOT NULL\n\
        ) STRICT",
        table = table.quoted()
    )
}

/// Whether a table called `table` exists (SQLite names are case-insensitive).
pub(crate) const TABLE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE)";

/// What `build` says when the table is missing and may not be created.
pub(crate) fn missing_table(table: &TableName) -> LockError {
    LockError::invalid_config(
        "sqlite",
        format!(
            "table `{table}` does not exist and create_table is false; \
             create it with the schema in the verrou-sqlite documentation"
        ),
    )
}

/// What `build` says when SQLite refuses to prepare a statement on the
/// table: something the shape check did not foresee.
pub(crate) fn does_not_fit(table: &TableName, refusal: impl std::fmt::Display) -> LockError {
    LockError::invalid_config(
        "sqlite",
        format!("table `{table}` does not fit verrou's statements: {refusal}"),
    )
}

/// The SQL of every store operation for one table. Each is a single
/// statement, so SQLite runs it as one atomic write transaction.
///
/// Parameters: `?1` key, `?2` owner, `?3` TTL in milliseconds (`NULL`: never
/// expires; `NULL + now` is `NULL`). Shared text (`Arc<str>`), so that a
/// statement moves to a blocking thread or into sqlx without a copy.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// Inserts the row or takes over a free or expired one, bumping the
    /// fencing token; returns the new token, or no row when the lock is held.
    pub(crate) save: Arc<str>,
    /// Frees the lock if `owner` holds it and it has not expired.
    pub(crate) delete: Arc<str>,
    /// Frees the lock whoever holds it.
    pub(crate) force_delete: Arc<str>,
    /// One row with 1 if the lock is held and not expired, else 0.
    pub(crate) exists: Arc<str>,
    /// Moves the expiry if `owner` holds the lock and it has not expired.
    pub(crate) extend: Arc<str>,
    /// `?1` the most rows to delete (-1: all). Deletes free rows whose token
    /// the clock has passed by the margin.
    pub(crate) prune: Arc<str>,
}

impl Statements {
    /// Every statement, to prepare them all when the store is built.
    pub(crate) fn all(&self) -> [&str; 6] {
        [
            &*self.save,
            &*self.delete,
            &*self.force_delete,
            &*self.exists,
            &*self.extend,
            &*self.prune,
        ]
    }

    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.quoted();
        let live = |p: &str| {
            format!("{p}owner IS NOT NULL AND ({p}expires_at IS NULL OR {p}expires_at > {NOW_MS})")
        };
        let held_by_owner =
            format!("key = ?1 AND owner = ?2 AND (expires_at IS NULL OR expires_at > {NOW_MS})");
        Statements {
            // A token is the larger of "one more than the row's last" and the
            // clock in microseconds: rising while the row exists, and above
            // every pruned row's tokens when a new row starts. Tables of
            // older versions, whose tokens count from 1, jump once to the
            // clock and keep rising.
            save: format!(
                "INSERT INTO {t} (key, owner, expires_at, fencing_token) \
                 VALUES (?1, ?2, ?3 + {LEASE_START_MS}, {NOW_US}) \
                 ON CONFLICT (key) DO UPDATE SET \
                     owner = excluded.owner, \
                     expires_at = excluded.expires_at, \
                     fencing_token = max({t}.fencing_token + 1, {NOW_US}) \
                 WHERE NOT ({live}) \
                 RETURNING fencing_token",
                live = live(&format!("{t}."))
            )
            .into(),
            // One statement, so one write transaction: nothing can take a
            // row between the SELECT choosing it and the DELETE. `key`, not
            // `rowid`, so that a WITHOUT ROWID table works too.
            prune: format!(
                "DELETE FROM {t} WHERE key IN (\
                     SELECT key FROM {t} \
                     WHERE NOT ({live}) AND fencing_token < {NOW_US} - {PRUNE_MARGIN_US} \
                     LIMIT ?1)",
                live = live("")
            )
            .into(),
            delete: format!("UPDATE {t} SET owner = NULL, expires_at = NULL WHERE {held_by_owner}")
                .into(),
            force_delete: format!(
                "UPDATE {t} SET owner = NULL, expires_at = NULL \
                 WHERE key = ?1 AND owner IS NOT NULL"
            )
            .into(),
            exists: format!(
                "SELECT EXISTS (SELECT 1 FROM {t} WHERE key = ?1 AND {live})",
                live = live("")
            )
            .into(),
            extend: format!(
                "UPDATE {t} SET expires_at = ?3 + {LEASE_START_MS} WHERE {held_by_owner}"
            )
            .into(),
        }
    }
}
