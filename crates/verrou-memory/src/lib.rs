#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod store;
mod watchers;

pub use store::MemoryStore;
