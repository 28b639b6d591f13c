//! The lock item and the conditional writes that change it.
//!
//! One item per key, partition key `key` (S):
//!
//! | attribute       | type | present while                          |
//! |-----------------|------|----------------------------------------|
//! | `key`           | S    | always: the lock's key, byte for byte  |
//! | `owner`         | S    | held                                   |
//! | `expires_at_ms` | N    | held with a TTL (client epoch ms)      |
//! | `fencing_token` | N    | after the first acquisition            |
//! | `delete_after`  | N    | not held forever (epoch s, native TTL) |
//!
//! Each operation is one `UpdateItem` whose condition decides, on the server,
//! whether it applies; nothing is read first.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// The partition key attribute.
pub(crate) const KEY: &str = "key";
pub(crate) const OWNER: &str = "owner";
pub(crate) const EXPIRES_AT_MS: &str = "expires_at_ms";
pub(crate) const FENCING_TOKEN: &str = "fencing_token";
/// Epoch seconds after which DynamoDB's own TTL sweeper may delete the item.
pub(crate) const DELETE_AFTER: &str = "delete_after";

/// How long after a lease ends (or after a release) DynamoDB may delete the
/// item. Covers clock skew between the client that wrote `delete_after` and
/// AWS, so the sweeper never removes a lock that is still live.
pub(crate) const SWEEP_GRACE_SECS: u64 = 3600;

/// A fresh item's first token is the client's epoch milliseconds times this.
/// DynamoDB accepts at most about 1,000 writes per second on one item, so an
/// item swept away and created again starts above every token the old item
/// could have handed out, by a factor of about 1,000 (see the README).
pub(crate) const TOKEN_FLOOR_PER_MS: u64 = 1000;

/// One conditional `UpdateItem`, ready to send.
pub(crate) struct Write {
    pub(crate) condition: &'static str,
    pub(crate) update: &'static str,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
}

impl Write {
    fn new(condition: &'static str, update: &'static str) -> Self {
        Write {
            condition,
            update,
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn string(mut self, placeholder: &str, value: &str) -> Self {
        self.values
            .insert(placeholder.to_owned(), AttributeValue::S(value.to_owned()));
        self
    }

    fn number(mut self, placeholder: &str, value: u64) -> Self {
        self.values
            .insert(placeholder.to_owned(), AttributeValue::N(value.to_string()));
        self
    }
}

/// Held by `:owner` and not expired: what release and extend require.
const HELD_BY_OWNER: &str = "#owner = :owner AND (attribute_not_exists(#exp) OR #exp > :now)";

/// The sweep time of a lease ending at `lease_end_ms`.
fn sweep_after_lease(lease_end_ms: u64) -> u64 {
    lease_end_ms.div_ceil(1000) + SWEEP_GRACE_SECS
}

/// The sweep time of an item freed at `now_ms`: it keeps its counter until
/// then, and the token floor covers the time after.
fn sweep_after_release(now_ms: u64) -> u64 {
    now_ms / 1000 + SWEEP_GRACE_SECS
}

/// Take the lock if nobody holds it or its lease ended by `ended_before_ms`
/// (the client's clock minus the skew margin), and bump the counter in the
/// same write (`ReturnValues = UPDATED_NEW` hands the token back). `now_ms`
/// only seeds the counter of a new item.
pub(crate) fn acquire(
    owner: &str,
    now_ms: u64,
    ended_before_ms: u64,
    lease_end_ms: Option<u64>,
) -> Write {
    // `#exp <= :ended` is false when the attribute is missing, so a lock held
    // forever is never taken over.
    const CONDITION: &str = "attribute_not_exists(#owner) OR #exp <= :ended";
    let write = match lease_end_ms {
        Some(end) => Write::new(
            CONDITION,
            "SET #owner = :owner, #exp = :exp, #del = :del, \
             #token = if_not_exists(#token, :floor) + :one",
        )
        .number(":exp", end)
        .number(":del", sweep_after_lease(end)),
        // No sweep time either: the sweeper must never delete a held lock.
        None => Write::new(
            CONDITION,
            "SET #owner = :owner, #token = if_not_exists(#token, :floor) + :one \
             REMOVE #exp, #del",
        ),
    };
    write
        .name("#owner", OWNER)
        .name("#exp", EXPIRES_AT_MS)
        .name("#del", DELETE_AFTER)
        .name("#token", FENCING_TOKEN)
        .string(":owner", owner)
        .number(":ended", ended_before_ms)
        .number(":floor", now_ms.saturating_mul(TOKEN_FLOOR_PER_MS))
        .number(":one", 1)
}

/// Free the lock if `owner` holds it; the counter stays so tokens keep rising.
pub(crate) fn release(owner: &str, now_ms: u64) -> Write {
    Write::new(HELD_BY_OWNER, "REMOVE #owner, #exp SET #del = :del")
        .name("#owner", OWNER)
        .name("#exp", EXPIRES_AT_MS)
        .name("#del", DELETE_AFTER)
        .string(":owner", owner)
        .number(":now", now_ms)
        .number(":del", sweep_after_release(now_ms))
}

/// Move the lease end of a lock `owner` holds; never revives an expired one.
pub(crate) fn extend(owner: &str, now_ms: u64, lease_end_ms: Option<u64>) -> Write {
    let write = match lease_end_ms {
        Some(end) => Write::new(HELD_BY_OWNER, "SET #exp = :exp, #del = :del")
            .number(":exp", end)
            .number(":del", sweep_after_lease(end)),
        None => Write::new(HELD_BY_OWNER, "REMOVE #exp, #del"),
    };
    write
        .name("#owner", OWNER)
        .name("#exp", EXPIRES_AT_MS)
        .name("#del", DELETE_AFTER)
        .string(":owner", owner)
        .number(":now", now_ms)
}

/// Free the lock whoever holds it. The condition only keeps the write from
/// creating an item for a key that was never locked; its failure means
/// "already free".
pub(crate) fn force_release(now_ms: u64) -> Write {
    Write::new(
        "attribute_exists(#owner)",
        "REMOVE #owner, #exp SET #del = :del",
    )
    .name("#owner", OWNER)
    .name("#exp", EXPIRES_AT_MS)
    .name("#del", DELETE_AFTER)
    .number(":del", sweep_after_release(now_ms))
}

/// Whether an item read with a consistent `GetItem` is a live lock at `now_ms`.
pub(crate) fn is_held(item: &HashMap<String, AttributeValue>, now_ms: u64) -> bool {
    if !item.contains_key(OWNER) {
        return false;
    }
    match item.get(EXPIRES_AT_MS) {
        None => true,
        // An unreadable expiry is treated as expired: `exists` must not keep a
        // waiter out forever because of a foreign write.
        Some(value) => number(value).is_some_and(|end| end > now_ms),
    }
}

/// A numeric attribute as `u64`.
pub(crate) fn number(value: &AttributeValue) -> Option<u64> {
    value.as_n().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str, sigil: char) -> Vec<String> {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == sigil))
            .filter(|w| w.starts_with(sigil))
            .map(str::to_owned)
            .collect()
    }

    /// DynamoDB rejects a request that defines a placeholder it does not use
    /// (and one that uses an undefined placeholder), so check both ways.
    fn assert_placeholders_match(write: &Write) {
        let text = format!("{} {}", write.condition, write.update);
        let mut used_names = placeholders(&text, '#');
        let mut used_values = placeholders(&text, ':');
        used_names.sort();
        used_names.dedup();
        used_values.sort();
        used_values.dedup();
        let mut names: Vec<_> = write.names.keys().cloned().collect();
        let mut values: Vec<_> = write.values.keys().cloned().collect();
        names.sort();
        values.sort();
        assert_eq!(used_names, names, "{text}");
        assert_eq!(used_values, values, "{text}");
    }

    #[test]
    fn every_write_defines_exactly_the_placeholders_it_uses() {
        for lease in [Some(5_000), None] {
            assert_placeholders_match(&acquire("o", 1_000, 900, lease));
            assert_placeholders_match(&extend("o", 1_000, lease));
        }
        assert_placeholders_match(&release("o", 1_000));
        assert_placeholders_match(&force_release(1_000));
    }

    #[test]
    fn liveness_follows_the_expiry() {
        let mut item = HashMap::new();
        assert!(!is_held(&item, 10));
        item.insert(OWNER.to_owned(), AttributeValue::S("o".into()));
        assert!(is_held(&item, 10), "no expiry: held forever");
        item.insert(EXPIRES_AT_MS.to_owned(), AttributeValue::N("11".into()));
        assert!(is_held(&item, 10));
        assert!(
            !is_held(&item, 11),
            "expired at its end, as the conditions say"
        );
    }

    #[test]
    fn sweep_times_leave_the_grace_after_the_lease() {
        assert_eq!(sweep_after_lease(1_001), 2 + SWEEP_GRACE_SECS);
        assert_eq!(sweep_after_release(1_999), 1 + SWEEP_GRACE_SECS);
    }
}
