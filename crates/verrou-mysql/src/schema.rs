//! The lock table: its name, its definition, and checking that an existing
//! table has the shape the statements need.

use verrou_core::LockError;
use verrou_core::store::TableName;

use crate::backend::Setup;
use crate::error::STORE;

/// The table name used when none is configured.
pub(crate) const DEFAULT_TABLE: &str = "verrou";

/// The longest key accepted, in bytes. 767 bytes is the largest index key
/// InnoDB accepts in every row format (`COMPACT` and `REDUNDANT` included), so
/// the primary key can hold every accepted key on any MySQL or MariaDB setup.
pub(crate) const MAX_KEY_BYTES: usize = 767;

/// The longest owner accepted, in bytes (what `verrou-core` allows).
pub(crate) const MAX_OWNER_BYTES: usize = 255;

/// The table definition (also printed in the README as a migration).
///
/// - `lock_key` and `owner` are `VARBINARY`: compared byte by byte, so keys
///   differing only in case, accents or trailing spaces stay distinct, whatever
///   the server's default collation (MySQL's are case- and accent-insensitive,
///   and some pad spaces).
/// - A row stays after release (`owner` NULL, `expires_at` 0) so that
///   `fencing_token` keeps growing for that key, until a prune deletes it
///   once the server's clock has passed its token (tokens are at least the
///   clock, so they keep growing in the key's next row).
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
        table.backquoted()
    )
}

/// One column as `information_schema.COLUMNS` describes it (a row of
/// [`COLUMNS`]).
pub(crate) struct Column {
    name: String,
    data_type: String,
    /// The full type, for messages: `varchar(767)`, `binary(255)`.
    column_type: String,
    octet_length: Option<u64>,
    nullable: bool,
    /// A generated column (`AS (expr)`), which the statements cannot write.
    generated: bool,
}

/// One column of a unique index, as `information_schema.STATISTICS` lists it
/// (a row of [`UNIQUE_INDEX_PARTS`]).
pub(crate) struct IndexPart {
    index: String,
    /// `None` for an expression (MySQL's functional indexes).
    column: Option<String>,
    /// The indexed prefix length, `None` for the whole column.
    prefix: Option<u64>,
}

impl Column {
    /// A row of [`COLUMNS`]: `IS_NULLABLE` and `EXTRA` as the server wrote
    /// them.
    pub(crate) fn new(
        name: String,
        data_type: String,
        column_type: String,
        octet_length: Option<u64>,
        nullable: &str,
        extra: &str,
    ) -> Self {
        // `VIRTUAL GENERATED` or `STORED GENERATED`; MySQL's
        // `DEFAULT_GENERATED` (an expression default) is writable.
        let extra = extra.to_ascii_uppercase();
        Column {
            name: name.to_ascii_lowercase(),
            data_type: data_type.to_ascii_lowercase(),
            column_type,
            octet_length,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            generated: extra.contains(" GENERATED"),
        }
    }
}

impl IndexPart {
    /// A row of [`UNIQUE_INDEX_PARTS`].
    pub(crate) fn new(index: String, column: Option<String>, prefix: Option<u64>) -> Self {
        IndexPart {
            index,
            column: column.map(|c| c.to_ascii_lowercase()),
            prefix,
        }
    }
}

/// The table's columns, the table name bound twice: name, data type, full
/// type, octet length, `YES` if nullable, extra. With
/// `lower_case_table_names = 1` the server stores (and lists) names in lower
/// case. The numbers are cast to unsigned so that every driver reads them
/// the same (MariaDB declares some signed).
pub(crate) const COLUMNS: &str = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CAST(CHARACTER_OCTET_LENGTH AS UNSIGNED), \
            IS_NULLABLE, EXTRA \
     FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA = DATABASE() \
       AND TABLE_NAME = IF(@@lower_case_table_names = 1, LOWER(?), ?)";

/// The columns of the table's unique indexes, the table name bound twice:
/// index, column (NULL for an expression), prefix length (NULL: whole).
pub(crate) const UNIQUE_INDEX_PARTS: &str = "SELECT INDEX_NAME, COLUMN_NAME, CAST(SUB_PART AS UNSIGNED) \
     FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = DATABASE() \
       AND TABLE_NAME = IF(@@lower_case_table_names = 1, LOWER(?), ?) \
       AND NON_UNIQUE = 0 \
     ORDER BY INDEX_NAME, SEQ_IN_INDEX";

/// Makes sure the table exists (creating it when allowed) and has columns the
/// statements can rely on.
///
/// Checking the column types matters more here than on other databases: a
/// hand-written migration with a `VARCHAR` key would silently make `a` and `A`
/// the same lock under MySQL's default collations (and `k` and `k ` under a
/// `PAD SPACE` one, `utf8mb4_bin` included), and the upsert takes over the
/// row of *any* unique index the new row collides with.
pub(crate) async fn ensure_table(
    session: &mut dyn Setup,
    table: &TableName,
    create: bool,
) -> Result<(), LockError> {
    let Some(database) = session.database().await? else {
        return Err(LockError::invalid_config(
            STORE,
            "the connection has no default database: name one in the URL (mysql://host:3306/db)",
        ));
    };
    let mut columns = session.columns(COLUMNS, table.as_str()).await?;
    if columns.is_empty() {
        if !create {
            return Err(LockError::invalid_config(
                STORE,
                format!(
                    "table {} does not exist in database `{database}` and create_table is off \
                     (create it with the migration in the verrou-mysql README)",
                    table.backquoted(),
                ),
            ));
        }
        // MySQL and MariaDB serialize concurrent `CREATE TABLE IF NOT EXISTS`
        // on a metadata lock: every process starting at once succeeds, the
        // later ones with a "table exists" note.
        session.execute(&create_table_sql(table)).await?;
        columns = session.columns(COLUMNS, table.as_str()).await?;
    }
    let unique_parts = session
        .unique_index_parts(UNIQUE_INDEX_PARTS, table.as_str())
        .await?;
    check_columns(table, &columns, &unique_parts)
}

fn check_columns(
    table: &TableName,
    columns: &[Column],
    unique_parts: &[IndexPart],
) -> Result<(), LockError> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let mut problems = Vec::new();
    // VARBINARY compares bytes with no padding: `k`, `K` and `k ` are three
    // keys. Character types (CHAR, VARCHAR, even with a `_bin` collation,
    // which pads spaces) and BINARY(n) (padded with zero bytes, so a stored
    // `k` no longer equals the key `k`) are refused by this one rule.
    match find("lock_key") {
        Some(c)
            if c.data_type == "varbinary"
                && c.octet_length.unwrap_or(0) >= MAX_KEY_BYTES as u64 => {}
        Some(c) => problems.push(format!(
            "`lock_key` is {}, it must be VARBINARY({MAX_KEY_BYTES}) or longer \
             (compared byte for byte, without padding)",
            c.column_type
        )),
        None => problems.push(format!(
            "`lock_key` is missing, it must be VARBINARY({MAX_KEY_BYTES}) or longer"
        )),
    }
    problems.extend(check_unique_indexes(unique_parts));
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
    // Acquiring without a TTL writes a NULL expiry and releasing a NULL
    // owner: a NOT NULL column fails those in strict mode, and outside it
    // stores 0 instead, turning a lock that never expires into a free one.
    for name in ["owner", "expires_at"] {
        if find(name).is_some_and(|c| !c.nullable) {
            problems.push(format!("`{name}` must allow NULL"));
        }
    }
    // Every acquire writes all four: a generated one fails it in strict mode
    // and, outside it, silently keeps its own value.
    for name in ["lock_key", "owner", "expires_at", "fencing_token"] {
        if find(name).is_some_and(|c| c.generated) {
            problems.push(format!(
                "`{name}` is a generated column, but the statements write it"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            STORE,
            format!(
                "table {} cannot hold verrou's locks: {} \
                 (see the schema in the verrou-mysql README)",
                table.backquoted(),
                problems.join("; ")
            ),
        ))
    }
}

/// The upsert must conflict exactly when the key does: some unique index
/// (the primary key, normally) is the whole `lock_key` alone, and every
/// unique index includes the whole `lock_key`, so that none can collide
/// without the key colliding too. A prefix would make keys that share it one
/// lock, `(lock_key, owner)` would let two owners hold one key, and a unique
/// `owner` would let `ON DUPLICATE KEY UPDATE` take over another key's row.
fn check_unique_indexes(parts: &[IndexPart]) -> Vec<String> {
    let mut names: Vec<&str> = parts.iter().map(|p| p.index.as_str()).collect();
    names.dedup();
    let whole_key = |p: &IndexPart| p.column.as_deref() == Some("lock_key") && p.prefix.is_none();
    let indexes: Vec<(&str, Vec<&IndexPart>)> = names
        .into_iter()
        .map(|name| (name, parts.iter().filter(|p| p.index == name).collect()))
        .collect();
    let describe = |(name, index): &(&str, Vec<&IndexPart>)| {
        let columns: Vec<String> = index
            .iter()
            .map(|p| match (&p.column, p.prefix) {
                (Some(column), None) => column.clone(),
                (Some(column), Some(prefix)) => format!("{column}({prefix})"),
                (None, _) => "an expression".to_owned(),
            })
            .collect();
        format!("{name} ({})", columns.join(", "))
    };
    if !indexes
        .iter()
        .any(|(_, index)| index.len() == 1 && whole_key(index[0]))
    {
        let found: Vec<String> = indexes.iter().map(describe).collect();
        return vec![format!(
            "`lock_key` must be the primary key, whole and alone (unique indexes found: {})",
            if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            }
        )];
    }
    indexes
        .iter()
        .filter(|(_, index)| !index.iter().any(|p| whole_key(p)))
        .map(|index| {
            format!(
                "unique index {} does not include the whole `lock_key`, so an acquire could \
                 take over another key's row",
                describe(index)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_column_holds_the_key_limit() {
        let sql = create_table_sql(&TableName::new(STORE, "t").unwrap());
        assert!(sql.contains(&format!("VARBINARY({MAX_KEY_BYTES})")));
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS `t`"));
    }
}
