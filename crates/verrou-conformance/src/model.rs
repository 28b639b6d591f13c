//! Model-based testing: random operations by several owners, compared step by
//! step with a reference model of the contract.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockError, LockStore};

use crate::Capabilities;
use crate::harness::{fresh_key, until_free};

/// A small deterministic generator, so a failing sequence can be replayed
/// from the seed printed in the failure message.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy)]
enum Life {
    Never,
    Long,
    /// Expires during the run: the model waits for the store to drop it.
    Short,
}

impl Life {
    fn ttl(self) -> Expiry {
        match self {
            Life::Never => Expiry::Never,
            Life::Long => Expiry::After(Duration::from_secs(30)),
            Life::Short => Expiry::After(Duration::from_millis(150)),
        }
    }
}

#[derive(Debug)]
enum Op {
    Save { owner: usize, life: Life },
    Delete { owner: usize },
    Extend { owner: usize, life: Life },
    ForceDelete,
    Exists,
}

const KEYS: usize = 2;
const OWNERS: usize = 3;
const STEPS: usize = 120;

/// Random sequences of acquire, release, extend, force-release, expiry and
/// exists by three owners on two keys, each step checked against a model:
/// who holds what, what each call must answer, and fencing tokens that only
/// go up.
pub async fn model_based_random_operations(store: Arc<dyn LockStore>, caps: Capabilities) {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).expect("OS randomness");
    let seed = u64::from_le_bytes(seed) | 1;
    run_model(&store, caps, seed).await;
}

async fn run_model(store: &Arc<dyn LockStore>, caps: Capabilities, seed: u64) {
    let mut rng = XorShift(seed);
    let keys: Vec<String> = (0..KEYS).map(|i| fresh_key(&format!("model{i}"))).collect();
    let owners: Vec<String> = (0..OWNERS).map(|i| format!("owner-{i}-{seed:x}")).collect();
    let mut holder: HashMap<usize, usize> = HashMap::new();
    let mut last_token: HashMap<usize, u64> = HashMap::new();

    for step in 0..STEPS {
        let life = match rng.below(10) {
            0 => Life::Short,
            1..=3 => Life::Never,
            _ => Life::Long,
        };
        let (k, o) = (rng.below(KEYS), rng.below(OWNERS));
        let op = match rng.below(10) {
            0..=3 => Op::Save { owner: o, life },
            4..=5 => Op::Delete { owner: o },
            6..=7 => Op::Extend { owner: o, life },
            8 => Op::ForceDelete,
            _ => Op::Exists,
        };
        let at = format!(
            "seed {seed:#x}, step {step}, {op:?}, model holder {:?}",
            holder.get(&k)
        );
        let key = &keys[k];
        let mut expires_now = false;
        match op {
            Op::Save { owner: o, life } => {
                match store.acquire(key, &owners[o], life.ttl()).await.unwrap() {
                    Acquisition::Held => {
                        assert!(holder.contains_key(&k), "{at}: Held for a free key")
                    }
                    Acquisition::Acquired { fencing_token } => {
                        assert!(!holder.contains_key(&k), "{at}: a second holder got in");
                        holder.insert(k, o);
                        if caps.fencing_tokens {
                            let token =
                                fencing_token.unwrap_or_else(|| panic!("{at}: no fencing token"));
                            if let Some(last) = last_token.get(&k) {
                                assert!(token > *last, "{at}: token {token} after {last}");
                            }
                            last_token.insert(k, token);
                        }
                        expires_now = matches!(life, Life::Short);
                    }
                }
            }
            Op::Delete { owner: o } => {
                let result = store.release(key, &owners[o]).await;
                if holder.get(&k) == Some(&o) {
                    result.unwrap_or_else(|e| panic!("{at}: owner's release failed: {e}"));
                    holder.remove(&k);
                } else {
                    assert!(
                        matches!(result, Err(LockError::NotOwned { .. })),
                        "{at}: {result:?}"
                    );
                }
            }
            Op::Extend { owner: o, life } => {
                let result = store.extend(key, &owners[o], life.ttl()).await;
                if holder.get(&k) == Some(&o) {
                    result.unwrap_or_else(|e| panic!("{at}: owner's extend failed: {e}"));
                    expires_now = matches!(life, Life::Short);
                } else {
                    assert!(
                        matches!(result, Err(LockError::NotOwned { .. })),
                        "{at}: {result:?}"
                    );
                }
            }
            Op::ForceDelete => {
                store.force_release(key).await.unwrap();
                holder.remove(&k);
            }
            Op::Exists => {
                let exists = store.is_locked(key).await.unwrap();
                assert_eq!(exists, holder.contains_key(&k), "{at}: exists");
            }
        }
        if expires_now {
            // The model's "expiry" step: wait for the store's clock to drop it.
            until_free(store, key).await;
            holder.remove(&k);
        }
        // Every step, the store and the model agree on who holds each key.
        let exists = store.is_locked(key).await.unwrap();
        assert_eq!(
            exists,
            holder.contains_key(&k),
            "{at}: exists after the step"
        );
    }
    for key in &keys {
        store.force_release(key).await.unwrap();
    }
}
