#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod pool;
mod schema;
mod shape;
mod store;

pub use builder::SqliteStoreBuilder;
/// The SQLite driver this store is built on, for [`SqliteStoreBuilder::connection`].
pub use rusqlite;
pub use store::SqliteStore;
