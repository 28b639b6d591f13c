//! The lock table: its name, its definition, and creating it safely when many
//! processes start at once.

use verrou_core::LockError;
use verrou_core::store::TableName;

use crate::backend::Setup;
use crate::error::STORE;

/// The table name used when none is configured.
pub(crate) const DEFAULT_TABLE: &str = "verrou";

/// The table definition (also printed in the README as a migration).
///
/// - `key` uses the `"C"` collation: byte-wise comparison, so keys differing
///   only in case, accents or trailing spaces stay distinct, whatever the
///   database's default collation.
/// - A row stays after release (`owner` NULL) so that `fencing_token` keeps
///   growing for that key, until a prune deletes it once the server's clock
///   has passed its token (tokens are at least the clock, so they keep
///   growing in the key's next row).
/// - `expires_at` NULL with an owner means the lock never expires.
///
/// `shape::check_table` accepts any table that behaves the same.
pub(crate) fn create_table_sql(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
             key           text COLLATE \"C\" PRIMARY KEY,\n    \
             owner         text,\n    \
             expires_at    timestamptz,\n    \
             fencing_token bigint NOT NULL\n\
         )",
        table.quoted()
    )
}

/// Whether the table exists, `$1` its quoted name. `to_regclass` resolves
/// the name through `search_path`, exactly as the store's statements will,
/// and returns NULL instead of failing.
const TABLE_EXISTS: &str = "SELECT to_regclass($1::text) IS NOT NULL";

/// SQLSTATEs of a concurrent creator winning the race: `unique_violation`
/// (on `pg_type`) and `duplicate_table`.
const CREATED_MEANWHILE: [&str; 2] = ["23505", "42P07"];

/// Makes sure the table exists: creates it when allowed, otherwise says
/// clearly that it is missing.
pub(crate) async fn ensure_table(
    session: &mut dyn Setup,
    table: &TableName,
    create: bool,
) -> Result<(), LockError> {
    // Looking first means a role without CREATE rights on the schema works
    // once the table exists (`CREATE TABLE IF NOT EXISTS` checks the right
    // before it checks for the table).
    if session.query_bool(TABLE_EXISTS, &table.quoted()).await? {
        return Ok(());
    }
    if !create {
        return Err(LockError::invalid_config(
            STORE,
            format!(
                "table {} does not exist and create_table is off; \
                 create it with the migration in the verrou-postgres README",
                table.quoted()
            ),
        ));
    }
    // Concurrent `CREATE TABLE IF NOT EXISTS` on an empty database can fail
    // with a unique violation on `pg_type`: both sessions pass the existence
    // check before either commits. A transaction-scoped advisory lock makes
    // the creators take turns. The statements run as one simple query, which
    // PostgreSQL executes as one implicit transaction: the advisory lock is
    // released at its end, and a failure rolls back without leaving the
    // session inside an aborted transaction.
    let batch = format!(
        "SELECT pg_advisory_xact_lock(hashtext('verrou-postgres create table'), hashtext('{name}'));\n{create}",
        // A validated identifier has no quote, so it is a safe literal.
        name = table.as_str(),
        create = create_table_sql(table),
    );
    match session.batch(&batch).await? {
        Ok(()) => Ok(()),
        // Someone creating the table without our advisory lock (a migration
        // tool, another version) won the race: the table is there.
        Err(refusal) if CREATED_MEANWHILE.contains(&refusal.code.as_str()) => Ok(()),
        Err(refusal) => Err(LockError::store(STORE, refusal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_quoted() {
        let sql = create_table_sql(&TableName::new(STORE, "Locks").unwrap());
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS \"Locks\" ("));
    }
}
