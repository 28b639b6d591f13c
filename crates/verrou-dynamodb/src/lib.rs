#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod item;
mod options;
mod store;
mod table;
mod takeover;

pub use aws_sdk_dynamodb;
pub use options::DynamoDbOptions;
pub use store::DynamoDbStore;
