#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod announcements;
mod builder;
mod error;
mod keys;
mod prune;
pub mod scripts;
mod store;
mod tls;

pub use builder::RedisStoreBuilder;
pub use fred;
pub use store::RedisStore;
