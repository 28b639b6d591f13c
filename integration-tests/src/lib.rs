//! End-to-end scenarios shared by the examples and tests of verrou (the
//! torture run is its own crate, `verrou-torture` in `tools/torture`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bank;
pub mod sqlite_bank;

/// The workspace README's examples, compiled and run as doctests so the quick
/// start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
