//! Moving a held lock to another process: `Lock::serialize` / `restore_lock`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lock::Restored;
use crate::owner::{Owner, validate_owner};
use crate::store::validate_key;
use crate::{Expiry, LeasePolicy, Lock, LockError, LockStore, RetryPolicy};

/// The wire form. Versioned so a newer verrou can still read older strings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SerializedLock {
    v: u32,
    key: String,
    owner: String,
    ttl_ms: Option<u64>,
    /// Version 1 carried a wall-clock expiry; it is read and ignored (a
    /// restored lock is unverified until the store confirms it).
    #[serde(default, skip_serializing)]
    expires_at_ms: Option<u64>,
    fencing_token: Option<u64>,
}

const VERSION: u32 = 2;

pub(crate) fn to_string(lock: &Lock) -> String {
    let wire = SerializedLock {
        v: VERSION,
        key: lock.key().to_owned(),
        owner: lock.owner(),
        ttl_ms: lock.ttl().duration().map(millis),
        expires_at_ms: None,
        fencing_token: lock.fencing_token(),
    };
    // Serializing plain strings and integers to JSON cannot fail.
    serde_json::to_string(&wire).unwrap_or_default()
}

pub(crate) fn restore(
    store: Arc<dyn LockStore>,
    retry: RetryPolicy,
    lease: LeasePolicy,
    text: &str,
) -> Result<Lock, LockError> {
    let invalid = |reason: String| LockError::InvalidSerializedLock { reason };
    let wire: SerializedLock =
        serde_json::from_str(text).map_err(|e| invalid(format!("not a serialized lock: {e}")))?;
    // Version 1's wall-clock expiry is not trusted (see the field).
    let _ = wire.expires_at_ms;
    if wire.v != 1 && wire.v != VERSION {
        return Err(invalid(format!("unsupported version {}", wire.v)));
    }
    validate_key(&wire.key, store.max_key_bytes()).map_err(|e| invalid(format!("bad key: {e}")))?;
    validate_owner(&wire.owner).map_err(|e| invalid(format!("bad owner: {e}")))?;
    let ttl = match wire.ttl_ms {
        Some(0) => return Err(invalid("ttl_ms must be at least 1".into())),
        Some(ms) => Expiry::After(Duration::from_millis(ms)),
        None => Expiry::Never,
    };
    // A serialized lock says who held it, not whether it still does: the
    // restored handle is unverified until an extend confirms it.
    let lock = Lock::new(
        store,
        wire.key,
        Owner::Fixed(wire.owner.as_str().into()),
        ttl,
        retry,
        lease,
    );
    Ok(lock.restored(Restored {
        owner: wire.owner,
        fencing_token: wire.fencing_token,
    }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
