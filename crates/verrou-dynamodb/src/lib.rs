#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
mod clock;
mod item;
mod store;
mod table;
mod takeover;

pub use aws_sdk_dynamodb;
pub use builder::DynamoDbStoreBuilder;
pub use store::DynamoDbStore;
