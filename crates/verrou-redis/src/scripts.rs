//! The Lua scripts: each store operation is one of them, so Redis runs it
//! atomically (no other command runs in between).
//!
//! Every key a script touches is passed in `KEYS` (Redis Cluster routes and
//! checks the slot with them; Dragonfly and other Redis-compatible servers
//! need undeclared-key access otherwise). The release channel is a pub/sub
//! channel, not a key, so it travels in `ARGV`.

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::LuaInterface;
use fred::types::Value;

/// `KEYS[1]` lock, `KEYS[2]` fencing counter; `ARGV[1]` owner, `ARGV[2]`
/// TTL in milliseconds (empty: no expiry; passed through as text so that
/// Lua's floating-point numbers never round it). Returns the new fencing token, or
/// nil when the lock is held (by anyone, the caller included: not re-entrant).
///
/// `SET NX` comes first so that a held lock does not burn a token.
pub(crate) const ACQUIRE: &str = r"
local set
if ARGV[2] == '' then
  set = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  set = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end
if not set then
  return false
end
return redis.call('INCR', KEYS[2])
";

/// `KEYS[1]` lock; `ARGV[1]` owner, `ARGV[2]` release channel. Returns 1 when
/// released, 0 when the key is free, expired or someone else's.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], '')
return 1
";

/// `KEYS[1]` lock; `ARGV[1]` owner, `ARGV[2]` TTL in milliseconds (empty:
/// never expire). Returns 1 when extended, 0 when not owned. An expired key
/// is already gone, so it is never revived.
pub(crate) const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// `KEYS[1]` lock; `ARGV[1]` release channel. Deletes whoever holds it (the
/// fencing counter stays) and announces the release if there was one.
pub(crate) const FORCE_RELEASE: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], '')
end
return 1
";

/// A script with its SHA-1, run with `EVALSHA` and, on a server that has
/// not seen it yet (restart, failover, `SCRIPT FLUSH`, a new Cluster node),
/// with `EVAL`, which also caches it there for the next call.
#[derive(Debug)]
pub(crate) struct Script {
    lua: &'static str,
    sha1: String,
}

impl Script {
    pub(crate) fn new(lua: &'static str) -> Self {
        Script {
            lua,
            sha1: fred::util::sha1_hash(lua),
        }
    }

    pub(crate) async fn run(
        &self,
        client: &Client,
        keys: Vec<&str>,
        args: Vec<Value>,
    ) -> Result<Value, FredError> {
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        match client
            .evalsha::<Value, _, _, _>(self.sha1.as_str(), keys.clone(), args.clone())
            .await
        {
            Err(error) if error.details().starts_with("NOSCRIPT") => {
                client.eval(self.lua, keys, args).await
            }
            result => result,
        }
    }
}

/// The store's scripts, hashed once.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) acquire: Script,
    pub(crate) release: Script,
    pub(crate) extend: Script,
    pub(crate) force_release: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
            extend: Script::new(EXTEND),
            force_release: Script::new(FORCE_RELEASE),
        }
    }
}
