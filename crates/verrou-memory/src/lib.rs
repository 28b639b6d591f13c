#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod keys;
mod store;

pub use store::MemoryStore;
