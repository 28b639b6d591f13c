//! The mysql store of verrou (in progress).
