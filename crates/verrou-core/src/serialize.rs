//! Moving a held lock to another process: `Lock::serialize` / `restore_lock`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::lock::HeldState;
use crate::owner::validate_owner;
use crate::{Lock, LockError, LockStore, RetryPolicy, validate_key};

/// The wire form. Versioned so a newer verrou can still read older strings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SerializedLock {
    v: u32,
    key: String,
    owner: String,
    ttl_ms: Option<u64>,
    /// Wall-clock expiry in Unix milliseconds (advisory; the store decides).
    expires_at_ms: Option<u64>,
    fencing_token: Option<u64>,
}

const VERSION: u32 = 1;

pub(crate) fn to_string(lock: &Lock) -> String {
    let state = *lock.inner.state();
    let wire = SerializedLock {
        v: VERSION,
        key: lock.key().to_owned(),
        owner: lock.owner().to_owned(),
        ttl_ms: lock.ttl().map(millis),
        expires_at_ms: state
            .expires_at
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(millis),
        fencing_token: state.fencing_token,
    };
    // Serializing plain strings and integers to JSON cannot fail.
    serde_json::to_string(&wire).unwrap_or_default()
}

pub(crate) fn restore(
    store: Arc<dyn LockStore>,
    retry: RetryPolicy,
    text: &str,
) -> Result<Lock, LockError> {
    let invalid = |reason: String| LockError::InvalidSerializedLock { reason };
    let wire: SerializedLock =
        serde_json::from_str(text).map_err(|e| invalid(format!("not a serialized lock: {e}")))?;
    if wire.v != VERSION {
        return Err(invalid(format!("unsupported version {}", wire.v)));
    }
    validate_key(&wire.key, store.max_key_bytes()).map_err(|e| invalid(format!("bad key: {e}")))?;
    validate_owner(&wire.owner).map_err(|e| invalid(format!("bad owner: {e}")))?;
    if wire.ttl_ms == Some(0) {
        return Err(invalid("ttl_ms must be at least 1".into()));
    }
    let expires_at = match wire.expires_at_ms {
        Some(ms) => Some(
            UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| invalid("expires_at_ms is out of range".into()))?,
        ),
        None => None,
    };
    // A serialized lock is a held lock by construction; the store will say
    // NotOwned on release or extend if that is no longer true.
    let state = HeldState {
        held: true,
        expires_at: if wire.ttl_ms.is_some() {
            expires_at.or(Some(SystemTime::UNIX_EPOCH))
        } else {
            None
        },
        fencing_token: wire.fencing_token,
    };
    Ok(Lock::from_parts(
        store,
        wire.key,
        wire.owner,
        wire.ttl_ms.map(Duration::from_millis),
        retry,
        state,
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
