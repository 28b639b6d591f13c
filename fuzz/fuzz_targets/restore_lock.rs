//! Arbitrary bytes given to `LockFactory::restore_lock` (and to the duration
//! parser) must give a lock or a typed error, never a panic; a restored lock
//! must survive being used.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verrou_core::{LockError, LockFactory, parse_duration};
use verrou_memory::MemoryStore;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_duration(text);
    let locks = LockFactory::new(MemoryStore::new());
    match locks.restore_lock(text) {
        Ok(lock) => {
            assert!(!lock.key().is_empty());
            let _ = (lock.is_held(), lock.is_expired(), lock.remaining_time());
            let _ = format!("{lock:?}");
            // What was restored serializes and restores again.
            let again = locks.restore_lock(&lock.serialize()).expect("re-restore");
            assert_eq!(again.key(), lock.key());
            assert_eq!(again.ttl(), lock.ttl());
            assert_eq!(again.fencing_token(), lock.fencing_token());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let _ = runtime.block_on(lock.extend());
            let _ = runtime.block_on(lock.release());
        }
        Err(LockError::InvalidSerializedLock { .. }) => {}
        Err(other) => panic!("wrong error type: {other:?}"),
    }
});
