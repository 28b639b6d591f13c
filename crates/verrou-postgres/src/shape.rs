//! Checking that an existing lock table can hold verrou's locks, before the
//! first lock rather than after it went wrong.
//!
//! A migration written by hand can compile against every statement and still
//! break the contract: a `char(n)` key pads `k` into `k `, a non-deterministic
//! collation makes `k` and `K` one key, a short `varchar` turns a long key
//! into a late `Store` error, an `integer` owner fails every call. Each of
//! these is an [`LockError::InvalidConfig`] at `build`, naming the column and
//! what is wrong with it.

use tokio_postgres::types::Type;
use verrou_core::LockError;
use verrou_core::store::TableName;

use crate::backend::Setup;
use crate::error::STORE;

/// The longest key the store accepts on a `text` key column, in bytes. Well
/// below the ~2,700 bytes a B-tree index entry may hold, so every accepted
/// key can be indexed.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// The shortest key limit a table may impose: every verrou store takes keys
/// of up to 255 bytes (the conformance suite checks it), so that code moving
/// between stores keeps working.
const MIN_KEY_BYTES: usize = 255;

/// Owners are at most this many bytes (what `verrou-core` allows).
const MAX_OWNER_BYTES: usize = 255;

/// What the checked table lets the store do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The longest key, in bytes, that the key column holds in full.
    pub(crate) max_key_bytes: usize,
}

/// One column as the catalog describes it (a row of [`COLUMNS`]).
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) type_oid: u32,
    /// `format_type`: `character varying(64)`, `timestamp(0) with time zone`.
    pub(crate) type_name: String,
    pub(crate) typmod: i32,
    pub(crate) not_null: bool,
    /// `None` for a type without collation.
    pub(crate) collation: Option<String>,
    /// Whether that collation is deterministic (`None`: no collation).
    pub(crate) deterministic: Option<bool>,
}

/// One unique index of the table, judged by how it treats `key` (a row of
/// [`UNIQUE_INDEXES`]).
pub(crate) struct UniqueIndex {
    pub(crate) name: String,
    /// Usable as the `ON CONFLICT (key)` arbiter: valid, immediate, not
    /// partial, on `key` alone with a deterministic collation.
    pub(crate) arbiter: bool,
    /// Has `key` among its key columns with a deterministic collation, so it
    /// can never be violated while keys are unique.
    pub(crate) covers_key: bool,
}

/// The table's columns, `$1` the quoted table name: name, type oid, type
/// name, typmod, NOT NULL, collation name, collation deterministic.
///
/// `to_regclass` resolves the name through `search_path`, exactly as the
/// store's statements will.
pub(crate) const COLUMNS: &str = "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), \
            a.atttypmod, a.attnotnull, c.collname::text, c.collisdeterministic \
     FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation \
     WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped";

/// The table's unique indexes, `$1` the quoted table name: name, usable as
/// the arbiter, covers the key.
pub(crate) const UNIQUE_INDEXES: &str = "SELECT ic.relname::text, \
            i.indisvalid AND i.indimmediate AND i.indpred IS NULL \
                AND i.indnkeyatts = 1 AND k.covers, \
            k.covers \
     FROM pg_index i \
     JOIN pg_class ic ON ic.oid = i.indexrelid \
     CROSS JOIN LATERAL ( \
         SELECT coalesce(bool_or(u.attnum = a.attnum \
                                 AND coalesce(c.collisdeterministic, true)), false) AS covers \
         FROM unnest(i.indkey::int2[], i.indcollation::oid[]) WITH ORDINALITY AS u(attnum, coll, n) \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = 'key' \
         LEFT JOIN pg_collation c ON c.oid = u.coll \
         WHERE u.n <= i.indnkeyatts \
     ) k \
     WHERE i.indrelid = to_regclass($1::text) AND i.indisunique";

/// Reads the table's columns and unique indexes and says what is wrong.
pub(crate) async fn check_table(
    session: &mut dyn Setup,
    table: &TableName,
) -> Result<Shape, LockError> {
    let columns = session.columns(COLUMNS, &table.quoted()).await?;
    let indexes = session
        .unique_indexes(UNIQUE_INDEXES, &table.quoted())
        .await?;
    judge(table, &columns, &indexes)
}

fn judge(
    table: &TableName,
    columns: &[Column],
    indexes: &[UniqueIndex],
) -> Result<Shape, LockError> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let mut problems = Vec::new();
    let mut max_key_bytes = MAX_KEY_BYTES;
    // The indexes are only judged on a usable key column: on a bad one they
    // would repeat its problem.
    let mut key_usable = false;

    match find("key") {
        None => problems.push("column `key` is missing".to_owned()),
        Some(key) => match text_limit(key, "key") {
            Err(problem) => problems.push(problem),
            Ok(limit) => {
                key_usable = true;
                let limit = limit.unwrap_or(MAX_KEY_BYTES);
                if limit < MIN_KEY_BYTES {
                    problems.push(format!(
                        "column `key` is {}: keys of up to {MIN_KEY_BYTES} bytes must fit \
                         (use text)",
                        key.type_name
                    ));
                }
                // A varchar(n) holds n characters, so any key of at most n
                // bytes fits; longer keys become `InvalidKey`, never a late
                // "value too long" from the server.
                max_key_bytes = limit.min(MAX_KEY_BYTES);
            }
        },
    }
    match find("owner") {
        None => problems.push("column `owner` is missing".to_owned()),
        Some(owner) => match text_limit(owner, "owner") {
            Err(problem) => problems.push(problem),
            Ok(Some(limit)) if limit < MAX_OWNER_BYTES => problems.push(format!(
                "column `owner` is {}: owners of up to {MAX_OWNER_BYTES} bytes must fit",
                owner.type_name
            )),
            Ok(_) => {}
        },
    }
    match find("expires_at") {
        None => problems.push("column `expires_at` is missing".to_owned()),
        // Without a time zone, the value would be read through each
        // session's `TimeZone` setting; with fewer than 6 fractional digits,
        // expiries would be rounded, possibly to before the lease's end.
        Some(c) if c.type_oid != Type::TIMESTAMPTZ.oid() || (0..6).contains(&c.typmod) => {
            problems.push(format!(
                "column `expires_at` is {}, it must be timestamptz (microsecond precision)",
                c.type_name
            ));
        }
        Some(_) => {}
    }
    match find("fencing_token") {
        None => problems.push("column `fencing_token` is missing".to_owned()),
        // Tokens are microseconds of the server clock: they need 64 bits.
        Some(c) if c.type_oid != Type::INT8.oid() => problems.push(format!(
            "column `fencing_token` is {}, it must be bigint",
            c.type_name
        )),
        Some(_) => {}
    }
    // Release writes NULL into both.
    for name in ["owner", "expires_at"] {
        if find(name).is_some_and(|c| c.not_null) {
            problems.push(format!(
                "column `{name}` is NOT NULL, but a free lock stores NULL there"
            ));
        }
    }
    if key_usable {
        if !indexes.iter().any(|i| i.arbiter) {
            problems.push(
                "`key` is not the primary key (nor alone in a valid, non-partial, immediate \
                 unique index with a deterministic collation), which the acquire's \
                 ON CONFLICT (key) needs"
                    .to_owned(),
            );
        }
        for index in indexes.iter().filter(|i| !i.covers_key) {
            problems.push(format!(
                "unique index \"{}\" does not include `key` (with a deterministic collation), \
                 so it could refuse an acquisition or make two keys collide",
                index.name
            ));
        }
    }

    if problems.is_empty() {
        Ok(Shape { max_key_bytes })
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!(
                "table {} cannot hold verrou's locks: {} (see the schema in the \
                 verrou-postgres README)",
                table.quoted(),
                problems.join("; ")
            ),
        ))
    }
}

/// For a column compared with `=` against bound strings: `Ok(Some(n))` for
/// `varchar(n)`, `Ok(None)` for an unbounded `text` or `varchar`, or what
/// makes it unusable.
fn text_limit(column: &Column, name: &str) -> Result<Option<usize>, String> {
    let oid = column.type_oid;
    if oid == Type::BPCHAR.oid() {
        return Err(format!(
            "column `{name}` is {}: a blank-padded type makes `k` and `k ` one value \
             (use text)",
            column.type_name
        ));
    }
    if oid != Type::TEXT.oid() && oid != Type::VARCHAR.oid() {
        return Err(format!(
            "column `{name}` is {}, it must be text",
            column.type_name
        ));
    }
    if let (Some(collation), Some(false)) = (&column.collation, column.deterministic) {
        // Deterministic collations break ties byte by byte, so their `=` is
        // byte equality whatever their sort order; a non-deterministic one
        // makes strings equal that differ in case, accents or more.
        return Err(format!(
            "column `{name}` uses the non-deterministic collation \"{collation}\", under which \
             different strings compare equal (use COLLATE \"C\")"
        ));
    }
    // varchar's typmod is the length plus a 4-byte header; -1 means unbounded.
    Ok(usize::try_from(column.typmod - 4)
        .ok()
        .filter(|_| column.typmod >= 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, ty: &Type, typmod: i32) -> Column {
        Column {
            name: name.to_owned(),
            type_oid: ty.oid(),
            type_name: ty.name().to_owned(),
            typmod,
            not_null: false,
            collation: Some("C".to_owned()),
            deterministic: Some(true),
        }
    }

    fn good() -> Vec<Column> {
        vec![
            column("key", &Type::TEXT, -1),
            column("owner", &Type::TEXT, -1),
            column("expires_at", &Type::TIMESTAMPTZ, -1),
            column("fencing_token", &Type::INT8, -1),
        ]
    }

    fn primary_key() -> Vec<UniqueIndex> {
        vec![UniqueIndex {
            name: "pk".to_owned(),
            arbiter: true,
            covers_key: true,
        }]
    }

    fn reason(result: Result<Shape, LockError>) -> String {
        match result {
            Err(LockError::InvalidConfig { reason, .. }) => reason,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn the_created_table_passes_with_the_full_key_limit() {
        let table = TableName::new(STORE, "t").unwrap();
        let shape = judge(&table, &good(), &primary_key()).unwrap();
        assert_eq!(shape.max_key_bytes, MAX_KEY_BYTES);
    }

    #[test]
    fn a_varchar_key_sets_the_key_limit_or_is_too_short() {
        let table = TableName::new(STORE, "t").unwrap();
        let mut columns = good();
        columns[0] = column("key", &Type::VARCHAR, 300 + 4);
        assert_eq!(
            judge(&table, &columns, &primary_key())
                .unwrap()
                .max_key_bytes,
            300
        );
        columns[0] = column("key", &Type::VARCHAR, 5000 + 4);
        assert_eq!(
            judge(&table, &columns, &primary_key())
                .unwrap()
                .max_key_bytes,
            MAX_KEY_BYTES
        );
        columns[0] = column("key", &Type::VARCHAR, 64 + 4);
        assert!(reason(judge(&table, &columns, &primary_key())).contains("`key`"));
    }

    #[test]
    fn every_problem_is_named() {
        let table = TableName::new(STORE, "t").unwrap();
        let mut columns = good();
        columns[0].collation = Some("und-ci".to_owned());
        columns[0].deterministic = Some(false);
        columns[1] = column("owner", &Type::INT4, -1);
        columns[2] = column("expires_at", &Type::TIMESTAMPTZ, 0);
        columns[3] = column("fencing_token", &Type::INT4, -1);
        let reason = reason(judge(&table, &columns, &[]));
        for needle in ["und-ci", "`owner`", "`expires_at`", "`fencing_token`"] {
            assert!(reason.contains(needle), "{needle}: {reason}");
        }
        // Without a usable key column, its indexes are not judged again.
        assert!(!reason.contains("primary key"), "{reason}");
        let reason = super::tests::reason(judge(&table, &good(), &[]));
        assert!(reason.contains("primary key"), "{reason}");
    }
}
