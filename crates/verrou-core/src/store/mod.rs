//! The store contract ([`LockStore`], [`Expiry`], [`Acquisition`]) and what
//! store authors share, written once: release watchers, key checks, table
//! names, operation timeouts, automatic pruning, TLS settings (feature
//! `rustls`).
//!
//! Application code needs none of this beyond picking a store; the contract
//! types are also re-exported at the crate root, the helpers only here.

mod auto_prune;
mod contract;
mod table;
mod timeout;
#[cfg(feature = "rustls")]
pub mod tls;
mod watchers;

pub use auto_prune::AutoPrune;
pub use contract::{Acquisition, Expiry, LockStore, ReleaseWatch, validate_key};
pub use table::{TableName, validate_identifier};
pub use timeout::{TimedOut, within};
pub use watchers::ReleaseWatchers;
