#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod case;
pub mod checker;
pub mod fault;
pub mod history;
pub mod mode;
mod processes;
mod progress;
pub mod renewing_hold;
pub mod report;
pub mod resource;
pub mod runner;
pub mod setup;
mod skew;
pub mod stores;
mod threads;
pub mod worker;
