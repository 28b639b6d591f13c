//! A private `redis-server` for tests that kill connections or restart the
//! server, so the shared one on 6379 is never disturbed: the workspace's one
//! bootstrap, `verrou_testkit::servers::RedisServer` (a free port, a
//! temporary directory, killed and removed on drop even when a test
//! panicked).

#![allow(dead_code)] // each test binary uses a part of it

pub use verrou_testkit::eventually;
pub use verrou_testkit::servers::RedisServer as PrivateRedis;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    verrou_testkit::servers::free_port().expect("a free port")
}
