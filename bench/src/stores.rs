//! Every store the bench knows: how to open it, and its "floor" — the bare
//! round trip that one acquire + release must make twice at least.
//!
//! Stores connect to the local services (`cargo xtask services up`) with the
//! same defaults as the tests. The floor uses the store's own client or pool,
//! so it pays for exactly the same connection path.

use std::sync::Arc;

use verrou_core::{BoxError, LockStore};
use verrou_memory::MemoryStore;

/// Every store the bench can run, in report order.
pub const ALL: &[&str] = &["memory"];

/// Stores for which `bench/node/peer.mjs` wires up a Node Verrou driver.
pub const PEER: &[&str] = &["memory", "redis", "postgres", "mysql"];

/// A store under test.
pub struct Subject {
    /// The store, shared by every lock of the run.
    pub store: Arc<dyn LockStore>,
    /// Its bare round trip.
    pub floor: Arc<Floor>,
}

/// The cheapest request to the store's server, on the store's own client.
pub enum Floor {
    /// Memory has no server: an uncontended `tokio::sync::Mutex` lock + unlock.
    Memory(tokio::sync::Mutex<()>),
}

impl Floor {
    /// What the floor measures, for the report.
    pub fn label(&self) -> &'static str {
        match self {
            Floor::Memory(_) => "tokio::sync::Mutex lock+unlock",
        }
    }

    /// One bare round trip.
    pub async fn round_trip(&self) -> Result<(), BoxError> {
        match self {
            Floor::Memory(mutex) => {
                drop(mutex.lock().await);
                Ok(())
            }
        }
    }
}

/// Opens the store called `name` on the local service.
///
/// # Errors
/// An unknown name, or the service cannot be reached.
pub async fn open(name: &str) -> Result<Subject, String> {
    match name {
        "memory" => Ok(Subject {
            store: Arc::new(MemoryStore::new()),
            floor: Arc::new(Floor::Memory(tokio::sync::Mutex::new(()))),
        }),
        other => Err(format!(
            "unknown store `{other}` (known: {})",
            ALL.join(", ")
        )),
    }
}
