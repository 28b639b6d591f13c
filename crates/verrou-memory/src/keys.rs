//! Keys hashed once per store call.
//!
//! A call looks its key up, and may then insert or remove it: with a plain
//! `HashMap<String, _>` that is two or three SipHash passes over the key. Here
//! the key is hashed once (with a per-store random SipHash key, so chosen
//! keys still cannot flood one bucket), the map stores that hash next to the
//! key, and the map's own hasher only passes it through.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

/// Hashes the keys of one store.
#[derive(Default)]
pub(crate) struct Keys {
    random: RandomState,
}

impl Keys {
    /// `key` with its hash, for the lookups of one call.
    pub(crate) fn hashed<'a>(&self, key: &'a str) -> Hashed<'a> {
        Hashed {
            hash: self.random.hash_one(key),
            text: key,
        }
    }
}

/// A key and its hash, borrowed for one call.
#[derive(Clone, Copy)]
pub(crate) struct Hashed<'a> {
    hash: u64,
    text: &'a str,
}

impl<'a> Hashed<'a> {
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The map key, its text in `text` (equal to this key's, possibly a
    /// reused buffer).
    pub(crate) fn owned(&self, text: String) -> Key {
        debug_assert_eq!(text, self.text);
        Key {
            hash: self.hash,
            text,
        }
    }

    /// What the map is searched with.
    pub(crate) fn probe(&self) -> &(dyn Lookup + 'a) {
        self
    }
}

/// A key as the map stores it.
pub(crate) struct Key {
    hash: u64,
    text: String,
}

impl Key {
    /// What the map is searched with.
    pub(crate) fn probe(&self) -> &(dyn Lookup + '_) {
        self
    }

    /// The text's buffer, for reuse.
    pub(crate) fn into_text(self) -> String {
        self.text
    }
}

/// What a stored [`Key`] and a borrowed [`Hashed`] have in common, so that the
/// map (keyed by `Key`) can be searched with either.
pub(crate) trait Lookup {
    fn hash_value(&self) -> u64;
    fn text(&self) -> &str;
}

impl Lookup for Key {
    fn hash_value(&self) -> u64 {
        self.hash
    }

    fn text(&self) -> &str {
        &self.text
    }
}

impl Lookup for Hashed<'_> {
    fn hash_value(&self) -> u64 {
        self.hash
    }

    fn text(&self) -> &str {
        self.text
    }
}

impl<'a> Borrow<dyn Lookup + 'a> for Key {
    fn borrow(&self) -> &(dyn Lookup + 'a) {
        self
    }
}

// `Key` and `dyn Lookup` hash and compare alike, as `Borrow` requires.
impl Hash for dyn Lookup + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl PartialEq for dyn Lookup + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.hash_value() == other.hash_value() && self.text() == other.text()
    }
}

impl Eq for dyn Lookup + '_ {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Key {}

/// The map's hasher: the key's hash is already made.
#[derive(Default, Clone, Copy)]
pub(crate) struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = Passthrough;

    fn build_hasher(&self) -> Passthrough {
        Passthrough(0)
    }
}

/// Returns the `u64` it was given.
pub(crate) struct Passthrough(u64);

impl Hasher for Passthrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (see the `Hash` impls above); this
        // stays correct, if slower, should anything else be hashed.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
