//! Checking that an existing lock table can hold verrou's locks, before the
//! first lock rather than after it went wrong.
//!
//! Every statement compiles against a table whose key is `TEXT COLLATE
//! NOCASE`, yet `k` and `K` are then one lock; a key of `INTEGER` affinity
//! turns `"0123"` into `123`, the same key as `"123"`. Each such problem is a
//! [`LockError::InvalidConfig`] at `build`, naming the column and what is
//! wrong with it.

use rusqlite::Connection;
use verrou_core::LockError;
use verrou_core::store::TableName;

/// The collation under which `=` is byte equality. SQLite's other built-in
/// ones ignore ASCII case (`NOCASE`) or trailing spaces (`RTRIM`), and an
/// application-defined one can do anything.
const BINARY: &str = "BINARY";

/// One column as SQLite reports it.
struct Column {
    name: &'static str,
    declared: String,
    collation: String,
    not_null: bool,
}

/// SQLite's type affinity, from the declared type by the documented rules
/// (<https://sqlite.org/datatype3.html#determination_of_column_affinity>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

fn affinity(declared: &str) -> Affinity {
    let declared = declared.to_ascii_uppercase();
    let has = |part: &str| declared.contains(part);
    if has("INT") {
        Affinity::Integer
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        Affinity::Text
    } else if has("BLOB") || declared.is_empty() {
        Affinity::Blob
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

/// One unique index of the table, by how it treats `key`.
struct UniqueIndex {
    name: String,
    /// Usable as the `ON CONFLICT (key)` target: not partial, on `key` alone,
    /// compared with `BINARY`.
    arbiter: bool,
    /// Has `key` with `BINARY` among its columns, so it can never be
    /// violated while keys are unique.
    covers_key: bool,
}

/// Checks `table`'s columns and unique indexes: the outer error is SQLite
/// failing to answer (BUSY, say: the caller may retry), the inner one the
/// verdict, an [`LockError::InvalidConfig`] naming every problem.
pub(crate) fn check_table(
    conn: &Connection,
    table: &TableName,
) -> rusqlite::Result<Result<(), LockError>> {
    // Bound as a value (never spliced), so the plain name.
    let table = table.as_str();
    let present: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_xinfo(?1)")?
        .query_map([table], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut columns = Vec::new();
    let mut problems = Vec::new();
    for name in ["key", "owner", "expires_at", "fencing_token"] {
        if !present.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            problems.push(format!("column `{name}` is missing"));
            continue;
        }
        let (declared, collation, not_null, _, _) = conn.column_metadata(None, table, name)?;
        let text = |s: Option<&std::ffi::CStr>| {
            s.map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        columns.push(Column {
            name,
            declared: text(declared),
            collation: text(collation),
            not_null,
        });
    }
    let indexes = unique_indexes(conn, table)?;
    Ok(judge(table, &columns, &indexes, problems))
}

fn unique_indexes(conn: &Connection, table: &str) -> rusqlite::Result<Vec<UniqueIndex>> {
    let mut list =
        conn.prepare("SELECT name, partial FROM pragma_index_list(?1) WHERE \"unique\"")?;
    let mut columns = conn.prepare("SELECT name, coll FROM pragma_index_xinfo(?1) WHERE key")?;
    let mut indexes = Vec::new();
    for index in list.query_map([table], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))? {
        let (name, partial): (String, bool) = index?;
        // `name` is NULL for an expression or the rowid.
        let keyed: Vec<(Option<String>, Option<String>)> = columns
            .query_map([&name], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let is_binary_key = |(column, coll): &(Option<String>, Option<String>)| {
            column
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("key"))
                && coll
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(BINARY))
        };
        indexes.push(UniqueIndex {
            arbiter: !partial && keyed.len() == 1 && is_binary_key(&keyed[0]),
            covers_key: keyed.iter().any(is_binary_key),
            name,
        });
    }
    Ok(indexes)
}

fn judge(
    table: &str,
    columns: &[Column],
    indexes: &[UniqueIndex],
    mut problems: Vec<String>,
) -> Result<(), LockError> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let mut key_usable = false;
    for column in columns {
        let wanted = match column.name {
            "key" | "owner" => Affinity::Text,
            _ => Affinity::Integer,
        };
        let mut fine = true;
        if affinity(&column.declared) != wanted {
            fine = false;
            problems.push(format!(
                "column `{}` is declared {:?} ({:?} affinity), it must be {}",
                column.name,
                column.declared,
                affinity(&column.declared),
                if wanted == Affinity::Text {
                    "TEXT"
                } else {
                    "INTEGER"
                },
            ));
        }
        if matches!(column.name, "key" | "owner") && !column.collation.eq_ignore_ascii_case(BINARY)
        {
            fine = false;
            problems.push(format!(
                "column `{}` uses the collation {}, under which different strings compare \
                 equal (use the default, BINARY)",
                column.name, column.collation
            ));
        }
        // Release writes NULL into both.
        if matches!(column.name, "owner" | "expires_at") && column.not_null {
            problems.push(format!(
                "column `{}` is NOT NULL, but a free lock stores NULL there",
                column.name
            ));
        }
        if column.name == "key" {
            key_usable = fine;
        }
    }
    // The indexes are only judged on a usable key column: on a bad one they
    // would repeat its problem.
    if key_usable && find("key").is_some() {
        if !indexes.iter().any(|i| i.arbiter) {
            problems.push(
                "`key` is not the primary key (nor alone in a non-partial unique index with \
                 the BINARY collation), which the acquire's ON CONFLICT (key) needs"
                    .to_owned(),
            );
        }
        for index in indexes.iter().filter(|i| !i.covers_key) {
            problems.push(format!(
                "unique index {} does not include `key` (with the BINARY collation), so it \
                 could refuse an acquisition or make two keys collide",
                index.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            "sqlite",
            format!(
                "table `{table}` cannot hold verrou's locks: {} (see the schema in the \
                 verrou-sqlite documentation)",
                problems.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_follows_sqlite_s_rules() {
        for (declared, expected) in [
            ("TEXT", Affinity::Text),
            ("varchar(64)", Affinity::Text),
            ("CLOB", Affinity::Text),
            ("INTEGER", Affinity::Integer),
            ("BIGINT", Affinity::Integer),
            // "INT" wins over "CHAR": SQLite's first rule.
            ("CHARINT", Affinity::Integer),
            ("POINT", Affinity::Integer),
            ("", Affinity::Blob),
            ("BLOB", Affinity::Blob),
            ("DOUBLE", Affinity::Real),
            ("NUMERIC", Affinity::Numeric),
            ("DATETIME", Affinity::Numeric),
        ] {
            assert_eq!(affinity(declared), expected, "{declared:?}");
        }
    }
}
