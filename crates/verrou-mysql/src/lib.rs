#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backend;
mod builder;
mod cancel;
mod error;
mod native;
mod schema;
#[cfg(feature = "sqlx")]
mod sqlx_pool;
mod statements;
mod store;
mod tls;

pub use builder::MysqlStoreBuilder;
/// The driver, re-exported so that a pool you pass to
/// [`MysqlStore::from_pool`] is built with the version this store uses.
pub use mysql_async;
/// sqlx (feature `sqlx`), re-exported so that a pool you pass to
/// `MysqlStore::from_sqlx` is of the version this store was built against.
#[cfg(feature = "sqlx")]
pub use sqlx;
pub use statements::Statements;
pub use store::MysqlStore;
