//! Names that no other test, run or machine uses.

/// `prefix` followed by `_` and 12 random hex digits: valid as a key, a SQL
/// table name (when `prefix` is) and a DynamoDB table name.
///
/// ```
/// let a = verrou_testkit::unique("locks");
/// assert!(a.starts_with("locks_") && a.len() == "locks_".len() + 12);
/// assert_ne!(a, verrou_testkit::unique("locks"));
/// ```
///
/// # Panics
/// When the operating system has no randomness to give, which only a broken
/// test machine does.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{suffix}")
}
