//! The whole conformance suite against the memory store.

verrou_conformance::conformance_tests!(async { Some(verrou_memory::MemoryStore::new()) });
