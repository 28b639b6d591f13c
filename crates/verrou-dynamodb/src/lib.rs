//! The dynamodb store of verrou (in progress).
