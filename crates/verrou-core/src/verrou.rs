//! `Verrou`: named stores and a default one.

use std::collections::BTreeMap;
use std::fmt;

use crate::{IntoTtl, Lock, LockError, LockFactory, LockStore};

/// Several named stores with a default: application code asks for locks by
/// key and the configuration decides where they live (memory in tests, Redis
/// in production), without a line of the application changing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verrou_core::LockError> {
/// use verrou_core::Verrou;
/// use verrou_memory::MemoryStore;
///
/// let verrou = Verrou::builder()
///     .store("memory", MemoryStore::new())
///     .store("other", MemoryStore::new())
///     .default_store("memory")
///     .default_store_from_env("LOCK_STORE") // LOCK_STORE=other overrides
///     .build()?;
/// let lock = verrou.create_lock("transfer:42", "5s")?;
/// lock.run(|| async { /* move the money */ }).await?;
/// assert!(verrou.use_store("nope").is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Verrou {
    factories: BTreeMap<String, LockFactory>,
    default: String,
}

impl Verrou {
    /// Starts a configuration.
    pub fn builder() -> VerrouBuilder {
        VerrouBuilder::default()
    }

    /// The factory of the store named `name`.
    ///
    /// # Errors
    /// [`LockError::UnknownStore`] if no store has that name.
    pub fn use_store(&self, name: &str) -> Result<&LockFactory, LockError> {
        self.factories
            .get(name)
            .ok_or_else(|| unknown(name, &self.factories))
    }

    /// The default store's factory.
    pub fn default_factory(&self) -> &LockFactory {
        // `build` guarantees the default is present.
        &self.factories[&self.default]
    }

    /// The default store's name.
    pub fn default_store_name(&self) -> &str {
        &self.default
    }

    /// Creates a lock on the default store; see [`LockFactory::create_lock`].
    ///
    /// # Errors
    /// As [`LockFactory::create_lock`].
    pub fn create_lock(
        &self,
        key: impl Into<String>,
        ttl: impl IntoTtl,
    ) -> Result<Lock, LockError> {
        self.default_factory().create_lock(key, ttl)
    }

    /// Restores a serialized lock on the default store; see
    /// [`LockFactory::restore_lock`].
    ///
    /// # Errors
    /// As [`LockFactory::restore_lock`].
    pub fn restore_lock(&self, serialized: &str) -> Result<Lock, LockError> {
        self.default_factory().restore_lock(serialized)
    }
}

impl fmt::Debug for Verrou {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verrou")
            .field("stores", &self.factories.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .finish()
    }
}

/// Builds a [`Verrou`]; see [`Verrou::builder`].
#[derive(Default)]
pub struct VerrouBuilder {
    factories: BTreeMap<String, LockFactory>,
    first: Option<String>,
    default: Option<String>,
    env_default: Option<String>,
}

impl VerrouBuilder {
    /// Adds a store under `name` with default settings (30 s TTL, default retries).
    pub fn store(self, name: impl Into<String>, store: impl LockStore) -> Self {
        self.factory(name, LockFactory::new(store))
    }

    /// Adds a configured factory under `name`.
    pub fn factory(mut self, name: impl Into<String>, factory: LockFactory) -> Self {
        let name = name.into();
        self.first.get_or_insert_with(|| name.clone());
        self.factories.insert(name, factory);
        self
    }

    /// Names the default store (without this, the first store added).
    pub fn default_store(mut self, name: impl Into<String>) -> Self {
        self.default = Some(name.into());
        self
    }

    /// Lets the environment variable `var` (for example `LOCK_STORE`) choose
    /// the default store when it is set and not empty; it wins over
    /// [`default_store`](Self::default_store).
    pub fn default_store_from_env(mut self, var: &str) -> Self {
        if let Ok(value) = std::env::var(var) {
            let value = value.trim();
            if !value.is_empty() {
                self.env_default = Some(value.to_owned());
            }
        }
        self
    }

    /// Finishes the configuration.
    ///
    /// # Errors
    /// [`LockError::UnknownStore`] when the default names no added store, or
    /// when no store was added.
    pub fn build(self) -> Result<Verrou, LockError> {
        let default = self
            .env_default
            .or(self.default)
            .or(self.first)
            .ok_or_else(|| unknown("(default)", &self.factories))?;
        if !self.factories.contains_key(&default) {
            return Err(unknown(&default, &self.factories));
        }
        Ok(Verrou {
            factories: self.factories,
            default,
        })
    }
}

impl fmt::Debug for VerrouBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerrouBuilder")
            .field("stores", &self.factories.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

fn unknown(name: &str, factories: &BTreeMap<String, LockFactory>) -> LockError {
    LockError::UnknownStore {
        name: name.to_owned(),
        known: factories.keys().cloned().collect::<Vec<_>>().join(", "),
    }
}
