//! The lock item and the conditional writes that change it.
//!
//! One item per key, partition key `key` (S):
//!
//! | attribute       | type | present while                          |
//! |-----------------|------|----------------------------------------|
//! | `key`           | S    | always: the lock's key, byte for byte  |
//! | `owner`         | S    | held                                   |
//! | `expires_at_ms` | N    | held with a TTL (holder's epoch ms)    |
//! | `lease_ms`      | N    | held with a TTL: the lease's length    |
//! | `lease_version` | S    | held: random, new at every write       |
//! | `fencing_token` | N    | after the first acquisition            |
//! | `delete_after`  | N    | not held forever (epoch s, native TTL) |
//!
//! Each operation is one `UpdateItem` whose condition decides, on the server,
//! whether it applies; nothing is read first. Other clients take a lease
//! over by its `lease_version` (see [`crate::takeover`]), never by comparing
//! `expires_at_ms` with their own clock: that attribute only serves the
//! holder, whose clock wrote it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// The partition key attribute.
pub(crate) const KEY: &str = "key";
pub(crate) const OWNER: &str = "owner";
pub(crate) const EXPIRES_AT_MS: &str = "expires_at_ms";
/// The length of the lease in milliseconds: how long another client must see
/// the same `lease_version` before it may take the lock over.
pub(crate) const LEASE_MS: &str = "lease_ms";
/// A random id written by every acquire and extend, so that a lease that is
/// renewed never looks unchanged to a client waiting to take it over.
pub(crate) const LEASE_VERSION: &str = "lease_version";
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

/// Held by `:owner` and not expired by the holder's own clock, the one that
/// wrote `expires_at_ms`: what release and extend require.
const HELD_BY_OWNER: &str = "#owner = :owner AND (attribute_not_exists(#exp) OR #exp > :now)";

/// A lease as the holder writes it: its end on the holder's clock (for the
/// holder's own release and extend) and its length (for everybody else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) end_ms: u64,
    pub(crate) length_ms: u64,
}

/// The sweep time of a lease ending at `lease_end_ms`.
fn sweep_after_lease(lease_end_ms: u64) -> u64 {
    lease_end_ms.div_ceil(1000) + SWEEP_GRACE_SECS
}

/// The sweep time of an item freed at `now_ms`: it keeps its counter until
/// then, and the token floor covers the time after.
fn sweep_after_release(now_ms: u64) -> u64 {
    now_ms / 1000 + SWEEP_GRACE_SECS
}

/// Take the lock if nobody holds it, or if it still carries the lease
/// version `takeover` that this client has watched unchanged for the whole
/// lease (see [`crate::takeover`]); bump the counter in the same write
/// (`ReturnValues = UPDATED_NEW` hands the token back). `version` is this
/// grant's new lease version; `now_ms` only seeds the counter of a new item.
pub(crate) fn acquire(
    owner: &str,
    now_ms: u64,
    version: &str,
    lease: Option<Lease>,
    takeover: Option<&str>,
) -> Write {
    let condition = match takeover {
        Some(_) => "attribute_not_exists(#owner) OR #ver = :seen",
        None => "attribute_not_exists(#owner)",
    };
    let write = match lease {
        Some(lease) => Write::new(
            condition,
            "SET #owner = :owner, #ver = :ver, #exp = :exp, #len = :len, #del = :del, \
             #token = if_not_exists(#token, :floor) + :one",
        )
        .number(":exp", lease.end_ms)
        .number(":len", lease.length_ms)
        .number(":del", sweep_after_lease(lease.end_ms)),
        // No length: nobody may take it over. No sweep time either: the
        // sweeper must never delete a held lock.
        None => Write::new(
            condition,
            "SET #owner = :owner, #ver = :ver, #token = if_not_exists(#token, :floor) + :one \
             REMOVE #exp, #len, #del",
        ),
    };
    let write = write
        .name("#owner", OWNER)
        .name("#ver", LEASE_VERSION)
        .name("#exp", EXPIRES_AT_MS)
        .name("#len", LEASE_MS)
        .name("#del", DELETE_AFTER)
        .name("#token", FENCING_TOKEN)
        .string(":owner", owner)
        .string(":ver", version)
        .number(":floor", now_ms.saturating_mul(TOKEN_FLOOR_PER_MS))
        .number(":one", 1);
    match takeover {
        Some(seen) => write.string(":seen", seen),
        None => write,
    }
}

/// Free the lock if `owner` holds it; the counter stays so tokens keep rising.
pub(crate) fn release(owner: &str, now_ms: u64) -> Write {
    Write::new(
        HELD_BY_OWNER,
        "REMOVE #owner, #exp, #len, #ver SET #del = :del",
    )
    .name("#owner", OWNER)
    .name("#exp", EXPIRES_AT_MS)
    .name("#len", LEASE_MS)
    .name("#ver", LEASE_VERSION)
    .name("#del", DELETE_AFTER)
    .string(":owner", owner)
    .number(":now", now_ms)
    .number(":del", sweep_after_release(now_ms))
}

/// Renew the lease of a lock `owner` holds, under a new lease version (so
/// that a client waiting to take it over starts its wait again); never
/// revives an expired one.
pub(crate) fn extend(owner: &str, now_ms: u64, version: &str, lease: Option<Lease>) -> Write {
    let write = match lease {
        Some(lease) => Write::new(
            HELD_BY_OWNER,
            "SET #exp = :exp, #len = :len, #ver = :ver, #del = :del",
        )
        .number(":exp", lease.end_ms)
        .number(":len", lease.length_ms)
        .number(":del", sweep_after_lease(lease.end_ms)),
        None => Write::new(HELD_BY_OWNER, "SET #ver = :ver REMOVE #exp, #len, #del"),
    };
    write
        .name("#owner", OWNER)
        .name("#exp", EXPIRES_AT_MS)
        .name("#len", LEASE_MS)
        .name("#ver", LEASE_VERSION)
        .name("#del", DELETE_AFTER)
        .string(":owner", owner)
        .string(":ver", version)
        .number(":now", now_ms)
}

/// Free the lock whoever holds it. The condition only keeps the write from
/// creating an item for a key that was never locked; its failure means
/// "already free".
pub(crate) fn force_release(now_ms: u64) -> Write {
    Write::new(
        "attribute_exists(#owner)",
        "REMOVE #owner, #exp, #len, #ver SET #del = :del",
    )
    .name("#owner", OWNER)
    .name("#exp", EXPIRES_AT_MS)
    .name("#len", LEASE_MS)
    .name("#ver", LEASE_VERSION)
    .name("#del", DELETE_AFTER)
    .number(":del", sweep_after_release(now_ms))
}

/// What an item says about its lock, to a client that does not hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holding {
    /// No item, or no owner.
    Free,
    /// Held with no lease: until released. Also an owner without a readable
    /// `lease_ms` and `lease_version` (an item this store did not write):
    /// guessing a length could let two holders in, so it waits for a
    /// release or a force release.
    Forever,
    /// Held under a lease of `length_ms`, identified by `version`.
    Lease { version: String, length_ms: u64 },
}

impl Holding {
    pub(crate) fn of(item: Option<&HashMap<String, AttributeValue>>) -> Self {
        let Some(item) = item.filter(|item| item.contains_key(OWNER)) else {
            return Holding::Free;
        };
        let length_ms = item.get(LEASE_MS).and_then(number);
        let version = item.get(LEASE_VERSION).and_then(|v| v.as_s().ok());
        match (length_ms, version) {
            (Some(length_ms), Some(version)) => Holding::Lease {
                version: version.clone(),
                length_ms,
            },
            _ => Holding::Forever,
        }
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
        let lease = Lease {
            end_ms: 5_000,
            length_ms: 4_000,
        };
        for lease in [Some(lease), None] {
            for takeover in [Some("seen"), None] {
                assert_placeholders_match(&acquire("o", 1_000, "v", lease, takeover));
            }
            assert_placeholders_match(&extend("o", 1_000, "v", lease));
        }
        assert_placeholders_match(&release("o", 1_000));
        assert_placeholders_match(&force_release(1_000));
    }

    #[test]
    fn holding_reads_the_owner_length_and_version() {
        let mut item = HashMap::new();
        assert_eq!(Holding::of(None), Holding::Free);
        assert_eq!(Holding::of(Some(&item)), Holding::Free);
        item.insert(OWNER.to_owned(), AttributeValue::S("o".into()));
        assert_eq!(Holding::of(Some(&item)), Holding::Forever);
        item.insert(LEASE_MS.to_owned(), AttributeValue::N("300".into()));
        assert_eq!(
            Holding::of(Some(&item)),
            Holding::Forever,
            "a length without a version cannot be taken over"
        );
        item.insert(LEASE_VERSION.to_owned(), AttributeValue::S("v1".into()));
        assert_eq!(
            Holding::of(Some(&item)),
            Holding::Lease {
                version: "v1".into(),
                length_ms: 300
            }
        );
        item.insert(LEASE_MS.to_owned(), AttributeValue::S("soon".into()));
        assert_eq!(Holding::of(Some(&item)), Holding::Forever);
    }

    #[test]
    fn sweep_times_leave_the_grace_after_the_lease() {
        assert_eq!(sweep_after_lease(1_001), 2 + SWEEP_GRACE_SECS);
        assert_eq!(sweep_after_release(1_999), 1 + SWEEP_GRACE_SECS);
    }
}
