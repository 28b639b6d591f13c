//! Where a lock lives in Redis: the lock key, its fencing counter and its
//! release channel, all derived from the store's prefix and the user's key.
//!
//! Layout, for store prefix `p` and user key `k`:
//!
//! | what             | Redis name                    | type                          |
//! |------------------|-------------------------------|-------------------------------|
//! | the lock         | `pre(p){tag(k)}`              | string: the owner, `PX`       |
//! | fencing counter  | `pre(p){tag(k)}:fence`        | integer, `PEXPIREAT`          |
//! | release channel  | `pre(p){tag(k)}:released`     | pub/sub channel (no data)     |
//!
//! - `tag` writes `\` as `\\` and `}` as `\)`: Redis ends a hash tag at the
//!   first `}` after the first `{`, so the tag is exactly the escaped key.
//!   The lock and its counter share it, hence one Cluster slot (one script
//!   may touch both), while distinct keys spread over all slots.
//! - `pre` writes `\` as `\\` and `{` as `\(`: the prefix never contains a
//!   `{`, so the first `{` of a name is where the key starts, and a `}` in
//!   the prefix is harmless (it comes before any `{`).
//!
//! Both escapes are injective (every `\` in their output starts a
//! two-character sequence), and the first `{` separates the two parts, so
//! every (prefix, key) pair has its own names: `app:` + `eu:1` is
//! `app:{eu:1}`, `app:eu:` + `1` is `app:eu:{1}`. The tag is never empty
//! because keys are not. With an empty prefix the names are the ones of
//! earlier versions (`{tag(k)}`), so such stores keep their locks across
//! an upgrade.

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

/// What follows the tag in a counter's name.
pub(crate) const FENCE_SUFFIX: &str = ":fence";

/// What follows the tag in a release channel's name.
const CHANNEL_SUFFIX: &str = ":released";

impl LockKeys {
    pub(crate) fn new(prefix: &str, key: &str) -> Self {
        let mut lock = String::with_capacity(prefix.len() + key.len() + 8);
        escape_prefix_into(&mut lock, prefix);
        lock.push('{');
        escape_key_into(&mut lock, key);
        lock.push('}');
        // Concatenated, not `format!`ed: this runs twice per acquire+release,
        // and a profile showed the formatting at a fifth of the store's own
        // instructions per call.
        LockKeys {
            fence: [lock.as_str(), FENCE_SUFFIX].concat(),
            channel: [lock.as_str(), CHANNEL_SUFFIX].concat(),
            lock,
        }
    }

    /// The lock's name for a counter's name, if `name` is a counter of a
    /// store with `prefix` (as written by [`LockKeys::new`]).
    pub(crate) fn lock_of_counter<'n>(prefix: &str, name: &'n str) -> Option<&'n str> {
        let lock = name.strip_suffix(FENCE_SUFFIX)?;
        let mut head = String::with_capacity(prefix.len() + 1);
        escape_prefix_into(&mut head, prefix);
        head.push('{');
        let tag = lock.strip_prefix(head.as_str())?.strip_suffix('}')?;
        is_escaped_key(tag).then_some(lock)
    }
}

/// A `SCAN MATCH` pattern for the counters of a store with `prefix`. It may
/// match more than them (a glob cannot say "no `}` here"); check each name
/// with [`LockKeys::lock_of_counter`].
pub(crate) fn counter_pattern(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 2);
    escape_prefix_into(&mut escaped, prefix);
    let mut pattern = String::with_capacity(escaped.len() * 2 + 10);
    for c in escaped.chars() {
        // Redis's glob treats these as special; `\` quotes the next character.
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("{*}");
    pattern.push_str(FENCE_SUFFIX);
    pattern
}

fn escape_prefix_into(out: &mut String, text: &str) {
    escape_into(out, text, '{', "\\(");
}

fn escape_key_into(out: &mut String, text: &str) {
    escape_into(out, text, '}', "\\)");
}

/// Writes `text` with `\` as `\\` and `special` as `replacement`, copying
/// the runs between them whole (both are ASCII, so every cut is on a
/// character boundary).
fn escape_into(out: &mut String, text: &str, special: char, replacement: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', special]) {
        out.push_str(&rest[..at]);
        out.push_str(if rest.as_bytes()[at] == b'\\' {
            "\\\\"
        } else {
            replacement
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Whether `tag` is a non-empty output of `escape_key_into`.
fn is_escaped_key(tag: &str) -> bool {
    let mut chars = tag.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '}' => return false,
            '\\' if !matches!(chars.next(), Some('\\' | ')')) => return false,
            _ => {}
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::util::redis_keyslot;

    /// Characters that mean something to the layout, to Redis's hash tags
    /// or to its glob patterns, plus plain ones and a multi-byte one.
    const AWKWARD: [char; 14] = [
        '{', '}', '\\', ':', '(', ')', '*', '?', '[', ']', 'a', 'b', ' ', 'é',
    ];

    /// A tiny deterministic generator (xorshift), so that failures replay.
    struct Strings(u64);

    impl Strings {
        fn next(&mut self, max_len: usize) -> String {
            let mut step = || {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            };
            let len = (step() % (max_len as u64 + 1)) as usize;
            (0..len)
                .map(|_| AWKWARD[(step() % AWKWARD.len() as u64) as usize])
                .collect()
        }
    }

    /// Inverts `LockKeys::new` on a lock name: the proof that the layout is
    /// injective is that this recovers every (prefix, key) pair.
    fn decode(lock: &str) -> (String, String) {
        let mut prefix = String::new();
        let mut chars = lock.chars();
        loop {
            match chars.next().expect("a `{`") {
                '{' => break,
                '\\' => prefix.push(match chars.next() {
                    Some('\\') => '\\',
                    Some('(') => '{',
                    other => panic!("bad prefix escape {other:?} in {lock:?}"),
                }),
                c => prefix.push(c),
            }
        }
        let mut key = String::new();
        loop {
            match chars.next().expect("a `}`") {
                '}' => break,
                '\\' => key.push(match chars.next() {
                    Some('\\') => '\\',
                    Some(')') => '}',
                    other => panic!("bad key escape {other:?} in {lock:?}"),
                }),
                c => key.push(c),
            }
        }
        assert_eq!(chars.next(), None, "trailing text in {lock:?}");
        (prefix, key)
    }

    #[test]
    fn the_layout_is_injective_over_prefix_and_key() {
        let mut strings = Strings(0x5eed_1234_abcd_0001);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let prefix = strings.next(6);
            let mut key = strings.next(6);
            if key.is_empty() {
                key.push('k');
            }
            let keys = LockKeys::new(&prefix, &key);
            assert_eq!(decode(&keys.lock), (prefix.clone(), key.clone()));
            if let Some(other) = seen.insert(keys.lock.clone(), (prefix.clone(), key.clone())) {
                assert_eq!(other, (prefix, key), "two pairs share {:?}", keys.lock);
            }
        }
    }

    #[test]
    fn a_prefix_boundary_cannot_be_moved() {
        let pairs = [
            ("app:", "eu:1"),
            ("app:eu:", "1"),
            ("", "app:eu:1"),
            ("app:eu:1", "x"),
            ("a{", "b"),
            ("a", "{b"),
            ("a\\(", "b"),
            ("a}", "b"),
            ("a", "}b"),
        ];
        let names: std::collections::HashSet<String> = pairs
            .iter()
            .map(|(p, k)| LockKeys::new(p, k).lock)
            .collect();
        assert_eq!(names.len(), pairs.len(), "{names:?}");
    }

    #[test]
    fn lock_and_counter_share_a_slot_whatever_the_prefix_and_key() {
        let mut strings = Strings(0x0dd_ba11);
        for _ in 0..5_000 {
            let prefix = strings.next(8);
            let key = format!("k{}", strings.next(8));
            let keys = LockKeys::new(&prefix, &key);
            assert_eq!(
                redis_keyslot(keys.lock.as_bytes()),
                redis_keyslot(keys.fence.as_bytes()),
                "{prefix:?} {key:?} → {keys:?}"
            );
            // The hash tag Redis sees is exactly the escaped key: the first
            // `{` opens it, the next `}` closes it, and it is not empty.
            let open = keys.lock.find('{').unwrap();
            let close = open + 1 + keys.lock[open + 1..].find('}').unwrap();
            assert!(close > open + 1);
            assert_eq!(close, keys.lock.len() - 1, "{keys:?}");
        }
    }

    #[test]
    fn an_empty_prefix_keeps_the_names_of_earlier_versions() {
        assert_eq!(LockKeys::new("", "job:{7}").lock, "{job:{7\\)}");
        assert_eq!(LockKeys::new("", "a\\b").fence, "{a\\\\b}:fence");
    }

    #[test]
    fn counters_are_recognised_only_under_their_own_prefix() {
        let mut strings = Strings(0xfeed);
        for _ in 0..5_000 {
            let prefix = strings.next(5);
            let key = format!("k{}", strings.next(5));
            let keys = LockKeys::new(&prefix, &key);
            assert_eq!(
                LockKeys::lock_of_counter(&prefix, &keys.fence),
                Some(keys.lock.as_str())
            );
            assert_eq!(LockKeys::lock_of_counter(&prefix, &keys.lock), None);
            let other = format!("{prefix}x");
            assert_eq!(LockKeys::lock_of_counter(&other, &keys.fence), None);
        }
        // Matched by the glob, but not a counter of ours.
        assert_eq!(LockKeys::lock_of_counter("p", "p{a}b}:fence"), None);
        assert_eq!(LockKeys::lock_of_counter("p", "p{a\\b}:fence"), None);
        assert_eq!(LockKeys::lock_of_counter("p", "p{}:fence"), None);
    }

    #[test]
    fn counter_patterns_quote_glob_characters() {
        assert_eq!(counter_pattern(""), "{*}:fence");
        assert_eq!(counter_pattern("app:"), "app:{*}:fence");
        assert_eq!(counter_pattern("a*?[]"), "a\\*\\?\\[\\]{*}:fence");
        // `{` becomes `\(` and then the `\` is quoted for the glob.
        assert_eq!(counter_pattern("a{b\\"), "a\\\\(b\\\\\\\\{*}:fence");
    }

    #[test]
    fn distinct_keys_spread_over_slots() {
        let slots: std::collections::HashSet<u16> = (0..100)
            .map(|i| redis_keyslot(LockKeys::new("p:", &format!("job:{i}")).lock.as_bytes()))
            .collect();
        assert!(slots.len() > 50, "only {} slots for 100 keys", slots.len());
    }
}
