//! `prune`: a sweep for fencing counters that no expiry will remove.
//!
//! Counters written by this version carry their own expiry (see
//! `scripts::ACQUIRE`), so Redis drops them by itself once that is safe and
//! the sweep finds nothing to do for them. It exists for counters without
//! one: written by versions before the expiry (their names are today's for
//! a store without prefix), or by a store whose retention was "forever".
//! It costs a `SCAN` of the whole keyspace of every primary, so it is meant
//! to be run once after an upgrade, not on a schedule.

use std::sync::Arc;

use fred::clients::Client;
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{ClientLike, ClusterInterface};
use fred::types::config::{Options, Server};
use fred::types::{ClusterHash, CustomCommand, Value};
use tokio::task::JoinSet;

use crate::keys::{LockKeys, counter_pattern};
use crate::scripts::Script;

/// Keys asked for per `SCAN` call: a hint to the server, which may return
/// more or fewer.
const SCAN_COUNT: u32 = 1_000;

/// Prune scripts in flight at once (fred pipelines them on the connection).
const IN_FLIGHT: usize = 64;

/// Scans every primary for counters of `prefix` and deletes each one that
/// nobody's lock uses and whose value the server clock has passed by more
/// than `retention_ms`. Returns how many were deleted.
pub(crate) async fn sweep(
    client: &Client,
    options: &Options,
    prefix: &str,
    retention_ms: u64,
    script: &Arc<Script>,
) -> Result<u64, FredError> {
    let pattern = counter_pattern(prefix);
    let mut pruned = 0;
    for node in primaries(client)? {
        let node_options = Options {
            cluster_node: node,
            ..options.clone()
        };
        let scanner = client.with_options(&node_options);
        let mut cursor = "0".to_owned();
        loop {
            let (next, names) = scan_page(&scanner, &cursor, &pattern).await?;
            let counters: Vec<(String, String)> = names
                .into_iter()
                .filter_map(|name| {
                    let lock = LockKeys::lock_of_counter(prefix, &name)?.to_owned();
                    Some((name, lock))
                })
                .collect();
            pruned += prune_counters(client, options, script, counters, retention_ms).await?;
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    Ok(pruned)
}

/// The servers to scan: every primary of a Cluster (`Some`), or the one
/// server (`None`: the client's own routing).
fn primaries(client: &Client) -> Result<Vec<Option<Server>>, FredError> {
    if !client.is_clustered() {
        return Ok(vec![None]);
    }
    let state = client.cached_cluster_state().ok_or_else(|| {
        FredError::new(
            ErrorKind::Cluster,
            "the cluster's slot map is not known yet; connect first",
        )
    })?;
    Ok(state.unique_primary_nodes().into_iter().map(Some).collect())
}

/// One `SCAN cursor MATCH pattern COUNT n`: the next cursor and the names
/// returned. (No `TYPE string`: it needs Redis 6; the prune script checks
/// the type itself.)
async fn scan_page(
    client: &impl ClientLike,
    cursor: &str,
    pattern: &str,
) -> Result<(String, Vec<String>), FredError> {
    let scan = CustomCommand::new_static("SCAN", ClusterHash::Random, false);
    let args: Vec<Value> = vec![
        cursor.into(),
        "MATCH".into(),
        pattern.into(),
        "COUNT".into(),
        SCAN_COUNT.into(),
    ];
    let reply: Value = client.custom(scan, args).await?;
    let unexpected = || {
        FredError::new(
            ErrorKind::Protocol,
            format!("unexpected SCAN reply: {reply:?}"),
        )
    };
    let Value::Array(parts) = &reply else {
        return Err(unexpected());
    };
    let [cursor, Value::Array(names)] = parts.as_slice() else {
        return Err(unexpected());
    };
    let cursor = cursor.as_string().ok_or_else(unexpected)?;
    // Names that are not UTF-8 are not ours (ours are built from `str`s).
    let names = names.iter().filter_map(Value::as_string).collect();
    Ok((cursor, names))
}

/// Runs the prune script on each `(counter, lock)`, [`IN_FLIGHT`] at a time.
async fn prune_counters(
    client: &Client,
    options: &Options,
    script: &Arc<Script>,
    counters: Vec<(String, String)>,
    retention_ms: u64,
) -> Result<u64, FredError> {
    let mut pruned = 0;
    let mut running = JoinSet::new();
    let mut counters = counters.into_iter();
    loop {
        while running.len() < IN_FLIGHT {
            let Some((counter, lock)) = counters.next() else {
                break;
            };
            let client = client.with_options(options);
            let script = script.clone();
            running.spawn(async move {
                script
                    .run(&client, &[&counter, &lock], || {
                        vec![Value::from(retention_ms.to_string())]
                    })
                    .await
            });
        }
        let Some(done) = running.join_next().await else {
            return Ok(pruned);
        };
        let reply = done.map_err(|e| FredError::new(ErrorKind::Unknown, e.to_string()))??;
        if reply == Value::Integer(1) {
            pruned += 1;
        }
    }
}
