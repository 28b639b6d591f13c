//! Owner identities: who holds a lock.

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
    Fixed(String),
}

impl Owner {
    /// The owner string of grant number `grant` of this handle.
    pub(crate) fn for_grant(&self, grant: u64) -> String {
        match self {
            Owner::Random(base) => format!("{base}.{grant}"),
            Owner::Fixed(owner) => owner.clone(),
        }
    }

    /// The owner string before any grant: the base of a random owner.
    pub(crate) fn base(&self) -> &str {
        match self {
            Owner::Random(base) | Owner::Fixed(base) => base,
        }
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
    fn owners_are_128_bit_and_distinct() {
        let a = random_owner().unwrap();
        let b = random_owner().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
