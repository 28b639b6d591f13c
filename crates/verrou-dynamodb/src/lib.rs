#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod item;
mod options;
mod store;
mod table;

pub use aws_sdk_dynamodb;
pub use options::DynamoDbOptions;
pub use store::DynamoDbStore;
