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
pub use mysql_async;
pub use store::MysqlStore;
