//! The redis store of verrou (in progress).
