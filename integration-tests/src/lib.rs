//! End-to-end scenarios shared by the examples and tests of verrou.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bank;
