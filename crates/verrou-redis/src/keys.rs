//! Where a lock lives in Redis: the lock key, its fencing counter and its
//! release channel, all derived from the user's key.
//!
//! Layout, for user key `k` and store prefix `p`:
//!
//! | what             | Redis name              | type                      |
//! |------------------|-------------------------|---------------------------|
//! | the lock         | `{p + esc(k)}`          | string: the owner, `PX`   |
//! | fencing counter  | `{p + esc(k)}:fence`    | integer, never expires    |
//! | release channel  | `{p + esc(k)}:released` | pub/sub channel (no data) |
//!
//! The whole name sits inside one hash tag so that the lock and its counter
//! are always in the same Cluster slot (one script may touch both), while
//! distinct keys still spread over all slots. Redis ends a hash tag at the
//! first `}`, so a `}` from the user's key must not appear inside it:
//! `esc` writes `\` as `\\` and `}` as `\)`. The escape is injective (every
//! `\` in its output starts a two-character sequence), so two distinct user
//! keys never share a Redis key, and the tag is never empty because keys are
//! not.

/// The Redis names of one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockKeys {
    /// The string holding the owner.
    pub(crate) lock: String,
    /// The per-key fencing counter.
    pub(crate) fence: String,
    /// The channel a release is published on.
    pub(crate) channel: String,
}

impl LockKeys {
    pub(crate) fn new(prefix: &str, key: &str) -> Self {
        let mut tag = String::with_capacity(prefix.len() + key.len() + 8);
        tag.push('{');
        escape_into(&mut tag, prefix);
        escape_into(&mut tag, key);
        tag.push('}');
        LockKeys {
            fence: format!("{tag}:fence"),
            channel: format!("{tag}:released"),
            lock: tag,
        }
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '}' => out.push_str("\\)"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::util::redis_keyslot;

    #[test]
    fn lock_and_counter_share_a_slot_even_with_braces_in_the_key() {
        for key in ["plain", "{tag}", "a}b{c", "}}", "{", "\\}", "ключ 🔒"] {
            let keys = LockKeys::new("verrou:", key);
            assert_eq!(
                redis_keyslot(keys.lock.as_bytes()),
                redis_keyslot(keys.fence.as_bytes()),
                "{key:?} → {keys:?}"
            );
            // The tag is the whole name: exactly one `}`, the closing one.
            assert_eq!(keys.lock.matches('}').count(), 1, "{keys:?}");
            assert!(keys.lock.starts_with('{') && keys.lock.ends_with('}'));
        }
    }

    #[test]
    fn escaping_never_merges_two_keys() {
        let keys = ["a}", "a\\)", "a\\", "a\\\\", "a)", "a", "a}b", "a\\)b"];
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            assert!(seen.insert(LockKeys::new("", key).lock), "{key:?} collided");
        }
    }

    #[test]
    fn distinct_keys_spread_over_slots() {
        let slots: std::collections::HashSet<u16> = (0..100)
            .map(|i| redis_keyslot(LockKeys::new("p:", &format!("job:{i}")).lock.as_bytes()))
            .collect();
        assert!(slots.len() > 50, "only {} slots for 100 keys", slots.len());
    }
}
