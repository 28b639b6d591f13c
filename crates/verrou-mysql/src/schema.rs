//! The lock table: its name, its definition, and checking that an existing
//! table has the shape the statements need.

use std::fmt;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use verrou_core::LockError;

use crate::error::{STORE, store_error};

/// The table name used when none is configured.
pub(crate) const DEFAULT_TABLE: &str = "verrou";

/// The longest key accepted, in bytes. 767 bytes is the largest index key
/// InnoDB accepts in every row format (`COMPACT` and `REDUNDANT` included), so
/// the primary key can hold every accepted key on any MySQL or MariaDB setup.
pub(crate) const MAX_KEY_BYTES: usize = 767;

/// The longest owner accepted, in bytes (what `verrou-core` allows).
pub(crate) const MAX_OWNER_BYTES: usize = 255;

/// A table name that is a plain SQL identifier, so that quoting it is enough
/// to splice it into a statement (keys and owners are always bound
/// parameters; the table name is the only text that cannot be one).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TableName(String);

impl TableName {
    /// Accepts what [`verrou_core::validate_identifier`] accepts, the rule
    /// shared by every verrou SQL store.
    pub(crate) fn new(name: &str) -> Result<Self, LockError> {
        verrou_core::validate_identifier(STORE, name)?;
        Ok(TableName(name.to_owned()))
    }

    /// The name as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an SQL identifier. Backquoted so that reserved words work;
    /// validation already ruled out the backquote itself.
    pub(crate) fn quoted(&self) -> String {
        format!("`{}`", self.0)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The table definition (also printed in the README as a migration).
///
/// - `lock_key` and `owner` are `VARBINARY`: compared byte by byte, so keys
///   differing only in case, accents or trailing spaces stay distinct, whatever
///   the server's default collation (MySQL's are case- and accent-insensitive,
///   and some pad spaces).
/// - A row stays after release (`owner` NULL, `expires_at` 0) so that
///   `fencing_token` keeps growing for that key.
/// - `expires_at` is milliseconds since the Unix epoch by the server's clock;
///   NULL means "never expires". A lock is free when `expires_at <= now`.
pub(crate) fn create_table_sql(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
             lock_key      VARBINARY({MAX_KEY_BYTES}) NOT NULL,\n    \
             owner         VARBINARY({MAX_OWNER_BYTES}) NULL,\n    \
             expires_at    BIGINT NULL,\n    \
             fencing_token BIGINT UNSIGNED NOT NULL,\n    \
             PRIMARY KEY (lock_key)\n\
         ) ENGINE = InnoDB",
        table.quoted()
    )
}

/// One column as `information_schema.columns` describes it.
struct Column {
    name: String,
    data_type: String,
    octet_length: Option<u64>,
    key: String,
}

/// Makes sure the table exists (creating it when allowed) and has columns the
/// statements can rely on.
///
/// Checking the column types matters more here than on other databases: a
/// hand-written migration with a `VARCHAR` key would silently make `a` and `A`
/// the same lock under MySQL's default collations.
pub(crate) async fn ensure_table(
    conn: &mut Conn,
    table: &TableName,
    auto_create: bool,
) -> Result<(), LockError> {
    let database: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .map_err(store_error)?
        .flatten();
    if database.is_none() {
        return Err(LockError::invalid_config(
            STORE,
            "the connection has no default database: name one in the URL (mysql://host:3306/db)",
        ));
    }
    let mut columns = columns(conn, table).await?;
    if columns.is_empty() {
        if !auto_create {
            return Err(LockError::invalid_config(
                STORE,
                format!(
                    "table {} does not exist in database `{}` and auto_create_table is off \
                     (create it with the migration in the verrou-mysql README)",
                    table.quoted(),
                    database.unwrap_or_default()
                ),
            ));
        }
        // MySQL and MariaDB serialize concurrent `CREATE TABLE IF NOT EXISTS`
        // on a metadata lock: every process starting at once succeeds, the
        // later ones with a "table exists" note.
        conn.query_drop(create_table_sql(table))
            .await
            .map_err(store_error)?;
        columns = self::columns(conn, table).await?;
    }
    check_columns(table, &columns)
}

async fn columns(conn: &mut Conn, table: &TableName) -> Result<Vec<Column>, LockError> {
    // With `lower_case_table_names = 1` the server stores (and lists) names in
    // lower case.
    let rows: Vec<(String, String, Option<u64>, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_OCTET_LENGTH, COLUMN_KEY \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() \
               AND TABLE_NAME = IF(@@lower_case_table_names = 1, LOWER(?), ?)",
            (table.as_str(), table.as_str()),
        )
        .await
        .map_err(store_error)?;
    Ok(rows
        .into_iter()
        .map(|(name, data_type, octet_length, key)| Column {
            name: name.to_ascii_lowercase(),
            data_type: data_type.to_ascii_lowercase(),
            octet_length,
            key,
        })
        .collect())
}

fn check_columns(table: &TableName, columns: &[Column]) -> Result<(), LockError> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let mut problems = Vec::new();
    match find("lock_key") {
        Some(c)
            if c.data_type == "varbinary"
                && c.octet_length.unwrap_or(0) >= MAX_KEY_BYTES as u64
                && c.key == "PRI" => {}
        _ => problems.push(format!(
            "`lock_key` must be VARBINARY({MAX_KEY_BYTES}) (or longer) and the primary key"
        )),
    }
    match find("owner") {
        Some(c)
            if c.data_type == "varbinary"
                && c.octet_length.unwrap_or(0) >= MAX_OWNER_BYTES as u64 => {}
        _ => problems.push(format!(
            "`owner` must be VARBINARY({MAX_OWNER_BYTES}) (or longer)"
        )),
    }
    for name in ["expires_at", "fencing_token"] {
        if find(name).is_none_or(|c| c.data_type != "bigint") {
            problems.push(format!("`{name}` must be a BIGINT"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!(
                "table {} does not have the columns verrou expects: {} \
                 (see the schema in the verrou-mysql README)",
                table.quoted(),
                problems.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["verrou", "_locks", "Locks_2", &"a".repeat(63)] {
            assert!(TableName::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "1locks",
            "verrou; DROP TABLE x",
            "`quoted`",
            "\"quoted\"",
            "a-b",
            "é",
            "db.table",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(TableName::new(bad), Err(LockError::InvalidConfig { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_key_column_holds_the_key_limit() {
        let sql = create_table_sql(&TableName::new("t").unwrap());
        assert!(sql.contains(&format!("VARBINARY({MAX_KEY_BYTES})")));
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS `t`"));
    }
}
