//! The store contract ([`LockStore`], [`Expiry`], [`Acquisition`]) and what
//! store authors share: release watchers, key and identifier checks.
//!
//! Application code needs none of this beyond picking a store; the items are
//! also re-exported at the crate root for store crates.

mod auto_prune;
mod contract;
mod identifier;
mod watchers;

pub use auto_prune::AutoPrune;
pub use contract::{Acquisition, Expiry, LockStore, ReleaseWatch, validate_key};
pub use identifier::validate_identifier;
pub use watchers::ReleaseWatchers;
