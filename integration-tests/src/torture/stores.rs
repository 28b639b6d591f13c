//! Every store the torture run knows: how a worker connects to it, and how the
//! runner sets it up, cuts its connections and restarts it.
//!
//! Adding a store is one arm in [`connect`] and one in [`StoreSetup::start`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use verrou_core::{Acquisition, LockError, LockFactory, LockStore, async_trait};
use verrou_memory::MemoryStore;

/// Stores in the order a run visits them.
pub const ALL: &[&str] = &["memory"];

/// Connects a worker to the store `name` at `url`.
///
/// # Errors
/// An unknown store or a failed connection, displayed.
pub async fn connect(name: &str, url: &str) -> Result<LockFactory, String> {
    let _ = url;
    match name {
        "memory" => Ok(LockFactory::new(MemoryStore::new())),
        "broken" => Ok(LockFactory::new(BrokenStore::default())),
        other => Err(format!("unknown store `{other}`")),
    }
}

/// What the runner knows about the store under test.
#[derive(Debug)]
pub struct StoreSetup {
    /// The store's name, as given to [`connect`].
    pub name: String,
    /// What workers get as `url`.
    pub url: String,
    /// Workers are threads sharing one store value (the memory store) rather
    /// than processes.
    pub threads: bool,
    /// What the report should say about this store's promises.
    pub notes: Vec<String>,
}

impl StoreSetup {
    /// Prepares the store `name` (starting a private server where the run
    /// restarts it). `full` enables the slow faults (server restarts of
    /// shared servers).
    ///
    /// # Errors
    /// When the store is unknown or its server cannot be prepared.
    pub fn start(name: &str, full: bool, work_dir: &std::path::Path) -> Result<Self, String> {
        let _ = (full, work_dir);
        match name {
            "broken" => Ok(StoreSetup {
                name: name.into(),
                url: String::new(),
                threads: true,
                notes: vec!["a deliberately broken store that grants every acquire: the run must fail".into()],
            }),
            "memory" => Ok(StoreSetup {
                name: name.into(),
                url: String::new(),
                threads: true,
                notes: vec![
                    "workers are threads of one process (a memory store cannot be shared by processes); `kill -9` is simulated by abandoning the held lock, `SIGSTOP` by stalling inside the critical section".into(),
                ],
            }),
            other => Err(format!(
                "unknown store `{other}` (known: {})",
                ALL.join(", ")
            )),
        }
    }

    /// Fault kinds this store supports besides killing and stopping workers.
    pub fn store_faults(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Injects a store fault (`kill_connections`, `restart`).
    ///
    /// # Errors
    /// When the fault could not be injected.
    pub fn inject(&mut self, kind: &str) -> Result<(), String> {
        Err(format!("{}: no fault `{kind}`", self.name))
    }

    /// Stops anything [`start`](Self::start) started.
    pub fn stop(&mut self) {}
}

/// A store that grants every acquire, held or not, with increasing tokens:
/// the harness's own test that it notices two holders.
#[derive(Debug, Default)]
pub struct BrokenStore {
    token: AtomicU64,
}

#[async_trait]
impl LockStore for BrokenStore {
    async fn save(&self, _: &str, _: &str, _: Option<Duration>) -> Result<Acquisition, LockError> {
        Ok(Acquisition::Acquired {
            fencing_token: Some(self.token.fetch_add(1, Ordering::SeqCst) + 1),
        })
    }

    async fn delete(&self, _: &str, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn force_delete(&self, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn exists(&self, _: &str) -> Result<bool, LockError> {
        Ok(false)
    }

    async fn extend(&self, _: &str, _: &str, _: Option<Duration>) -> Result<(), LockError> {
        Ok(())
    }
}
