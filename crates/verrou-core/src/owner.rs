//! Owner identities: who holds a lock.

use std::sync::Arc;

use crate::LockError;

/// Generates an unguessable owner id: 128 random bits from the operating
/// system, as 32 hex digits. Nobody can release or extend a lock without
/// knowing its owner, so the id must not be predictable.
///
/// # Errors
/// [`LockError::NoRandomness`] if the OS has no randomness to give.
pub fn random_owner() -> Result<String, LockError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| LockError::NoRandomness {
        source: e.to_string().into(),
    })?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut owner = String::with_capacity(32);
    for b in bytes {
        owner.push(char::from(HEX[usize::from(b >> 4)]));
        owner.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(owner)
}

/// Checks a caller-supplied owner id: non-empty, at most 255 bytes, no NUL.
pub(crate) fn validate_owner(owner: &str) -> Result<(), LockError> {
    let invalid = |reason: String| Err(LockError::InvalidOwner { reason });
    if owner.is_empty() {
        return invalid("owner is empty".into());
    }
    if owner.len() > 255 {
        return invalid(format!(
            "owner is {} bytes, at most 255 are allowed",
            owner.len()
        ));
    }
    if owner.contains('\0') {
        return invalid("owner contains a NUL character".into());
    }
    Ok(())
}

/// Who a handle acquires as. A random owner gives every grant its own owner
/// string (`<128 random bits>.<grant number>`), so that a release or
/// extension sent for one grant can never match a later grant of the same
/// handle at the store, whatever order the network delivers them in. A
/// caller-chosen owner is used as given: its grants are one holder to the
/// store.
#[derive(Debug, Clone)]
pub(crate) enum Owner {
    Random(String),
    /// Shared by every grant: no copy per acquire.
    Fixed(Arc<str>),
}

/// The longest random owner string: 32 hex digits, a dot, and a `u64`.
const MAX_RANDOM_OWNER: usize = 32 + 1 + 20;

impl Owner {
    /// The owner string of grant number `grant` of this handle.
    ///
    /// This runs on every acquire: a random owner's string is written in
    /// place (`format!` and an `Arc<str>` cost two allocations and a
    /// reallocation, and every copy of an `Arc` two atomic operations), a
    /// caller-chosen one is shared.
    pub(crate) fn for_grant(&self, grant: u64) -> GrantOwner {
        match self {
            Owner::Random(base) if base.len() + 1 + 20 <= MAX_RANDOM_OWNER => {
                let mut text = [0u8; MAX_RANDOM_OWNER];
                text[..base.len()].copy_from_slice(base.as_bytes());
                text[base.len()] = b'.';
                let mut digits = [0u8; 20];
                let mut at = digits.len();
                let mut rest = grant;
                loop {
                    at -= 1;
                    digits[at] = b'0' + (rest % 10) as u8;
                    rest /= 10;
                    if rest == 0 {
                        break;
                    }
                }
                let digits = &digits[at..];
                let start = base.len() + 1;
                text[start..start + digits.len()].copy_from_slice(digits);
                GrantOwner::Inline {
                    len: (start + digits.len()) as u8,
                    text,
                }
            }
            Owner::Random(base) => GrantOwner::Shared(format!("{base}.{grant}").into()),
            Owner::Fixed(owner) => GrantOwner::Shared(owner.clone()),
        }
    }

    /// The owner string before any grant: the base of a random owner.
    pub(crate) fn base(&self) -> &str {
        match self {
            Owner::Random(base) => base,
            Owner::Fixed(owner) => owner,
        }
    }
}

/// The owner string of one grant, as [`Owner::for_grant`] makes it: a
/// random owner's inline (ASCII, at most [`MAX_RANDOM_OWNER`] bytes), any
/// other shared.
#[derive(Clone)]
pub(crate) enum GrantOwner {
    Inline {
        len: u8,
        text: [u8; MAX_RANDOM_OWNER],
    },
    Shared(Arc<str>),
}

impl std::ops::Deref for GrantOwner {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Only ASCII is ever written there, so this never fails (and
            // checks ~50 ASCII bytes in a few instructions).
            GrantOwner::Inline { len, text } => {
                std::str::from_utf8(&text[..usize::from(*len)]).unwrap_or_default()
            }
            GrantOwner::Shared(owner) => owner,
        }
    }
}

impl From<String> for GrantOwner {
    fn from(owner: String) -> Self {
        GrantOwner::Shared(owner.into())
    }
}

impl std::fmt::Debug for GrantOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The owner is the right to release: never print it.
        f.write_str("GrantOwner(..)")
    }
}

/// A uniformly random `u64` for jitter; a fixed value if the OS has none,
/// because jitter only spreads load and must never fail an acquire.
pub(crate) fn jitter_seed() -> u64 {
    getrandom::u64().unwrap_or(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_owners_are_the_base_a_dot_and_the_grant_number() {
        let base = random_owner().unwrap();
        let owner = Owner::Random(base.clone());
        for grant in [0, 1, 9, 10, 42, 1_000_001, u64::MAX] {
            assert_eq!(&*owner.for_grant(grant), format!("{base}.{grant}"));
        }
        let long = Owner::Random("x".repeat(40));
        assert_eq!(&*long.for_grant(7), format!("{}.7", "x".repeat(40)));
        let fixed = Owner::Fixed("me".into());
        assert_eq!(&*fixed.for_grant(3), "me");
    }

    #[test]
    fn owners_are_128_bit_and_distinct() {
        let a = random_owner().unwrap();
        let b = random_owner().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
