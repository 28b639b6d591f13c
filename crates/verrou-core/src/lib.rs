#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod catch_panic;
mod duration;
mod error;
mod factory;
mod guard;
mod identifier;
mod lock;
mod owner;
mod retry;
mod serialize;
mod store;
mod verrou;
mod watchers;

pub use async_trait::async_trait;
pub use duration::{IntoTtl, Ttl, parse_duration};
pub use error::{BoxError, LockError};
pub use factory::LockFactory;
pub use guard::LockGuard;
pub use identifier::validate_identifier;
pub use lock::Lock;
pub use owner::random_owner;
pub use retry::{Backoff, RetryPolicy};
pub use store::{Acquisition, LockStore, ReleaseWatch, validate_key};
pub use verrou::{Verrou, VerrouBuilder};
pub use watchers::ReleaseWatchers;
