#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backend;
mod builder;
mod pool;
mod schema;
mod shape;
#[cfg(feature = "sqlx")]
mod sqlx_pool;
mod store;

pub use builder::SqliteStoreBuilder;
/// The SQLite driver this store is built on, for [`SqliteStoreBuilder::connection`].
pub use rusqlite;
/// sqlx (feature `sqlx`), re-exported so that a pool you pass to
/// `SqliteStore::from_sqlx` is of the version this store was built against.
#[cfg(feature = "sqlx")]
pub use sqlx;
pub use store::SqliteStore;
