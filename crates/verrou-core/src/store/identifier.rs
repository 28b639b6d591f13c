//! SQL identifiers (table names) that a store may splice into its statements.

use crate::LockError;

/// Checks that `name` is a plain SQL identifier, `[A-Za-z_][A-Za-z0-9_]{0,62}`,
/// the rule every verrou SQL store applies to its table name.
///
/// Keys and owners are always bound parameters; a table name cannot be one,
/// so it is refused rather than escaped when it is anything else. 63 bytes is
/// PostgreSQL's limit (beyond it the server silently truncates).
///
/// ```
/// assert!(verrou_core::validate_identifier("postgres", "verrou_locks").is_ok());
/// assert!(verrou_core::validate_identifier("postgres", "locks; DROP TABLE x").is_err());
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
