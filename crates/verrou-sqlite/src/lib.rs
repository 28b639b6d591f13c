//! The sqlite store of verrou (in progress).
