#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod announcements;
mod builder;
mod error;
mod schema;
mod shape;
mod statements;
mod store;

pub use builder::PostgresStoreBuilder;
pub use store::PostgresStore;

/// The pool the store runs on, re-exported so that a pool you build yourself
/// (for example with a TLS connector) is of the version this crate expects.
pub use deadpool_postgres;
/// The driver, re-exported so that [`tokio_postgres::Config`] and TLS
/// connectors match the version this crate was built against.
pub use tokio_postgres;
