//! The Lua this store runs, for audits and benchmarks: each store operation
//! is one of these scripts, so Redis runs it atomically (no other command
//! runs in between). They are public so that an ACL review, a security audit
//! or a benchmark of the bare server work (`cargo xtask bench` times them
//! with `EVALSHA` on the same fred client as the store) reads the exact text
//! the store sends. They are not an API to take locks with: a caller running
//! them by hand skips the store's checks, timeouts and release wake-ups.
//!
//! Every key a script touches is passed in `KEYS` (Redis Cluster routes and
//! checks the slot with them; Dragonfly and other Redis-compatible servers
//! need undeclared-key access otherwise). The release channel is a pub/sub
//! channel, not a key, so it travels in `ARGV`.
//!
//! The names, for store prefix `p` and user key `k` (see the crate's
//! [data layout](crate#data-layout) for the escaping of `{`, `}` and `\`; a
//! prefix and key without them are used as they are):
//!
//! | name            | Redis name                |
//! |-----------------|---------------------------|
//! | lock            | `p{k}`                    |
//! | fencing counter | `p{k}:fence`              |
//! | release channel | `p{k}:released`           |
//!
//! The store sends each script with `EVALSHA` (the SHA-1 of the text) and
//! falls back to `EVAL` when the server answers `NOSCRIPT`. Numbers travel
//! as decimal text so that Lua's floating-point numbers never round them.

use std::sync::Arc;

use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};
use fred::util::redis_keyslot;

/// `KEYS[1]` lock, `KEYS[2]` fencing counter; `ARGV[1]` owner, `ARGV[2]`
/// TTL in milliseconds (empty: no expiry), `ARGV[3]` how long the counter
/// outlives its last token, in milliseconds (empty: forever). Numbers travel
/// as text so that Lua's floating-point numbers never round them. Returns the
/// new fencing token, or nil when the lock is held (by anyone, the caller
/// included: not re-entrant).
///
/// The store passes the lock's owner (32 hex digits from
/// [`random_owner`](verrou_core::random_owner)), the lock's TTL rounded up
/// to whole milliseconds, and the builder's `counter_retention` (default
/// one hour: `3600000`).
///
/// The token is the server clock in microseconds (`TIME`), or the last
/// token + 1 when that is not higher (several acquisitions within one
/// microsecond, or a clock that stepped back while the counter was kept).
/// The counter expires `ARGV[3]` after the instant its value names, not
/// after now: it is dropped only once the clock has passed it by that much,
/// so any later token (at least the clock) is still higher as long as the
/// clock never steps back by more than that. `PEXPIREAT` is in whole
/// milliseconds; the `+ 1` keeps the expiry after the token's microsecond.
///
/// `SET NX` comes first so that a held lock does not touch the counter.
/// `redis.replicate_commands()` lets Redis 3.2–4 write after `TIME` (effects
/// replication); from Redis 5 it is the default and the call a no-op.
pub const ACQUIRE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local set
if ARGV[2] == '' then
  set = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  set = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end
if not set then
  return false
end
local time = redis.call('TIME')
local clock = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last = tonumber(redis.call('GET', KEYS[2]))
local token
if last and last >= clock then
  token = redis.call('INCR', KEYS[2])
else
  token = clock
  redis.call('SET', KEYS[2], time[1] .. string.format('%06d', tonumber(time[2])))
end
if ARGV[3] == '' then
  redis.call('PERSIST', KEYS[2])
else
  local expires = math.floor(token / 1000) + tonumber(ARGV[3]) + 1
  redis.call('PEXPIREAT', KEYS[2], string.format('%.0f', expires))
end
return token
";

/// `KEYS[1]` lock; `ARGV[1]` owner, `ARGV[2]` release channel. Returns 1 when
/// released, 0 when the key is free, expired or someone else's. The
/// `PUBLISH` is what wakes waiters on the key (each process's store wakes
/// one of its own), and is sent whether or not anyone waits.
pub const RELEASE: &str = r"
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
pub const EXTEND: &str = r"
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
/// fencing counter stays, with its expiry) and announces the release if
/// there was one.
pub const FORCE_RELEASE: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], '')
end
return 1
";

/// `KEYS[1]` fencing counter, `KEYS[2]` its lock; `ARGV[1]` retention in
/// milliseconds. Deletes the counter when nobody holds the lock and the
/// server clock has passed the counter's value by more than the retention
/// (the condition under which its own expiry would drop it), so that the
/// next token, at least the clock, is still higher. A key that is not a
/// string holding a plain integer is not a counter of ours and is left
/// alone (checked here rather than with `SCAN ... TYPE`, which needs Redis
/// 6). Returns 1 when deleted, else 0.
pub const PRUNE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return 0
end
local value = redis.call('GET', KEYS[1])
local last = tonumber(value)
if not last or string.format('%.0f', last) ~= value then
  return 0
end
local time = redis.call('TIME')
local clock = tonumber(time[1]) * 1000000 + tonumber(time[2])
if last + tonumber(ARGV[1]) * 1000 >= clock then
  return 0
end
redis.call('DEL', KEYS[1])
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

    /// Runs the script on `client` with its per-command options (the
    /// store's `WithOptions`: at most one send, the command timeout).
    ///
    /// Sent as a custom command: fred's `LuaInterface` is not implemented
    /// for `WithOptions`, and going through it on the bare client dropped
    /// those options. The Cluster slot is the first key's, as fred's own
    /// `EVALSHA` computes it. Unlike fred's `EVALSHA`, the command may be
    /// pipelined behind others on the connection; each operation is one
    /// independent script, so nothing depends on an earlier one having
    /// found its script cached.
    ///
    /// `args` makes the arguments, once for `EVALSHA` and again only for the
    /// `EVAL` after a `NOSCRIPT`: keeping a copy for that rare fallback cost
    /// an allocation per argument on every call.
    pub(crate) async fn run<C: ClientLike>(
        &self,
        client: &C,
        keys: &[&str],
        args: impl Fn() -> Vec<Value>,
    ) -> Result<Value, FredError> {
        let slot = keys.first().map(|key| redis_keyslot(key.as_bytes()));
        let command = |name: &'static str, body: &str| {
            let args = args();
            let mut line: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
            line.push(body.into());
            line.push(Value::Integer(keys.len() as i64));
            line.extend(keys.iter().map(|&key| Value::from(key)));
            line.extend(args);
            let hash = slot.map_or(ClusterHash::Random, ClusterHash::Custom);
            (CustomCommand::new_static(name, hash, false), line)
        };
        let (evalsha, line) = command("EVALSHA", &self.sha1);
        match client.custom::<Value, Value>(evalsha, line).await {
            Err(error) if error.details().starts_with("NOSCRIPT") => {
                let (eval, line) = command("EVAL", self.lua);
                client.custom(eval, line).await
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
    /// Shared with the tasks of a prune sweep.
    pub(crate) prune: Arc<Script>,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
            extend: Script::new(EXTEND),
            force_release: Script::new(FORCE_RELEASE),
            prune: Arc::new(Script::new(PRUNE)),
        }
    }
}
