#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod cancel;
mod error;
mod schema;
mod statements;
mod store;

pub use builder::MysqlStoreBuilder;
/// The driver, re-exported so that a pool you pass to
/// [`MysqlStore::from_pool`] is built with the version this store uses.
pub use mysql_async;
pub use store::MysqlStore;
