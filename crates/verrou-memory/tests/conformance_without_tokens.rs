//! The conformance suite against a store without fencing tokens: the
//! contract's "stores without them return `None`" branch, which every real
//! store (they all have tokens) leaves unexercised.

use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch, async_trait};
use verrou_memory::MemoryStore;

/// The memory store, with its tokens taken away.
struct WithoutTokens(MemoryStore);

#[async_trait]
impl LockStore for WithoutTokens {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        Ok(match self.0.acquire(key, owner, expiry).await? {
            Acquisition::Acquired { .. } => Acquisition::Acquired {
                fencing_token: None,
            },
            Acquisition::Held => Acquisition::Held,
        })
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.0.release(key, owner).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.0.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.0.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        self.0.extend(key, owner, expiry).await
    }
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        self.0.watch_release(key).await
    }
    fn max_key_bytes(&self) -> usize {
        self.0.max_key_bytes()
    }
}

verrou_conformance::conformance_tests!(
    async { Some(WithoutTokens(MemoryStore::new())) },
    verrou_conformance::Capabilities {
        fencing_tokens: false,
        release_announcements: true,
    }
);
