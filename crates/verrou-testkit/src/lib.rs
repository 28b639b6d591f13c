//! What verrou's tests, bench and torture tool share, written once.
//!
//! - [`Service`]: where each local server is. Every address has one
//!   environment variable and one default, the one `cargo xtask services up`
//!   starts; nobody else hard-codes an address.
//! - [`require_service`]: a missing server fails the test when
//!   `VERROU_REQUIRE_SERVICES=1` (CI) and skips it with a printed reason
//!   otherwise.
//! - [`unique`] names and keys, [`eventually`] for polling with a bound.
//! - [`StoreKind`] and, with the `open` feature, [`open`]: any store on its
//!   local service, with the same defaults everywhere.
//! - [`servers`]: private servers for tests that kill, pause or restart one,
//!   shared with `cargo xtask services`.
//!
//! Not published: it is the workspace's own scaffolding.

#![deny(missing_docs)]

mod eventually;
mod kinds;
#[cfg(feature = "open")]
mod open;
pub mod servers;
mod service;
mod unique;

pub use eventually::eventually;
pub use kinds::StoreKind;
#[cfg(feature = "open")]
pub use open::{dynamodb, mysql, open, postgres, redis, sqlite};
pub use service::Service;
pub use unique::unique;
/// The published suite's rule, so that custom-store authors and the
/// workspace skip or fail the same way.
pub use verrou_conformance::{require_service, services_required};
