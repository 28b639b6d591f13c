#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod announcements;
mod backend;
mod builder;
mod error;
mod native;
mod schema;
mod shape;
#[cfg(feature = "sqlx")]
mod sqlx_pool;
mod statements;
mod store;
mod tls;

pub use builder::PostgresStoreBuilder;
pub use statements::Statements;
pub use store::PostgresStore;

/// The pool the store runs on, re-exported so that a pool you build yourself
/// (for example with a TLS connector) is of the version this crate expects.
pub use deadpool_postgres;
/// sqlx (feature `sqlx`), re-exported so that a pool you pass to
/// `PostgresStore::from_sqlx` is of the version this store was built against.
#[cfg(feature = "sqlx")]
pub use sqlx;
/// The driver, re-exported so that [`tokio_postgres::Config`] and TLS
/// connectors match the version this crate was built against.
pub use tokio_postgres;
