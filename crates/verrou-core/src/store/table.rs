//! SQL table names: the one piece of text a store splices into its
//! statements, so it is checked once, here, for every SQL store.

use std::fmt;

use crate::LockError;

/// A table name that is a plain SQL identifier, so that quoting it is enough
/// to splice it into a statement (keys and owners are always bound
/// parameters; the table name is the only text that cannot be one).
///
/// ```
/// use verrou_core::store::TableName;
///
/// let table = TableName::new("postgres", "verrou_locks").unwrap();
/// assert_eq!(table.quoted(), "\"verrou_locks\"");
/// assert_eq!(table.backquoted(), "`verrou_locks`");
/// assert!(TableName::new("postgres", "locks; DROP TABLE x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    /// Accepts what [`validate_identifier`] accepts.
    ///
    /// # Errors
    /// [`LockError::InvalidConfig`] for `store`, naming the rejected text.
    pub fn new(store: &'static str, name: &str) -> Result<Self, LockError> {
        validate_identifier(store, name)?;
        Ok(TableName(name.to_owned()))
    }

    /// The name as given (case kept).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in ANSI double quotes (PostgreSQL, SQLite): case kept and
    /// reserved words allowed; validation already ruled out `"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The name in backquotes (MySQL and MariaDB, whose double quotes are
    /// string literals unless `ANSI_QUOTES` is set).
    pub fn backquoted(&self) -> String {
        format!("`{}`", self.0)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `name` is a plain SQL identifier, `[A-Za-z_][A-Za-z0-9_]{0,62}`,
/// the rule every verrou SQL store applies to its table name.
///
/// Keys and owners are always bound parameters; a table name cannot be one,
/// so it is refused rather than escaped when it is anything else. 63 bytes is
/// PostgreSQL's limit (beyond it the server silently truncates).
///
/// ```
/// assert!(verrou_core::store::validate_identifier("postgres", "verrou_locks").is_ok());
/// assert!(verrou_core::store::validate_identifier("postgres", "locks; DROP TABLE x").is_err());
/// ```
///
/// # Errors
/// [`LockError::InvalidConfig`] for `store`, naming the rejected text.
pub fn validate_identifier(store: &'static str, name: &str) -> Result<(), LockError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if valid {
        Ok(())
    } else {
        Err(LockError::invalid_config(
            store,
            format!(
                "table name {name:?} is not a plain SQL identifier \
                 (ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_pass() {
        for good in ["verrou", "_x", "Locks_2", &"a".repeat(63)] {
            assert!(validate_identifier("test", good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "1x",
            "a-b",
            "a b",
            "\"q\"",
            "`q`",
            "a;b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    validate_identifier("test", bad),
                    Err(LockError::InvalidConfig { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
