#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
#[cfg(feature = "aws-config")]
mod chain;
mod clock;
mod item;
mod store;
mod table;
mod takeover;
mod tls;

pub use aws_sdk_dynamodb;
pub use builder::DynamoDbStoreBuilder;
pub use store::{DynamoDbStore, UpdateRequest};
