#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod catch_panic;
mod duration;
mod error;
mod factory;
mod guard;
mod lease;
mod lock;
mod observe;
mod owner;
mod retry;
mod serialize;
pub mod store;
mod verrou;

pub use async_trait::async_trait;
pub use duration::{IntoTtl, Ttl, parse_duration};
pub use error::{BoxError, LockError};
pub use factory::LockFactory;
pub use guard::LockGuard;
pub use lease::policy::LeasePolicy;
pub use lease::signal::{LossReason, LostSignal};
pub use lock::Lock;
#[cfg(feature = "metrics")]
pub use observe::describe_metrics;
pub use owner::random_owner;
pub use retry::{Backoff, RetryPolicy};
pub use store::{Acquisition, Expiry, LockStore, ReleaseWatch};
pub use verrou::{Verrou, VerrouBuilder};
