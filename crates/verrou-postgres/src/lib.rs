//! The postgres store of verrou (in progress).
