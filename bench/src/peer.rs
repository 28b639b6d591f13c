//! Node's Verrou as the peer: `bench/node/peer.mjs`, one process per store,
//! driven one JSON line per request so that its rounds interleave with ours.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use verrou_testkit::{Service, StoreKind};

use crate::sample::{CDF_QUANTILES, Sample, Workload};

/// How long Node may take to start and connect.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Slack on top of a workload's own duration before the peer counts as hung
/// (Verrou's default retry polls every 250 ms, so a round can overrun).
const ANSWER_SLACK: Duration = Duration::from_secs(60);

/// The Node project folder: `bench/node`, next to this crate's manifest.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Node's and `@verrou/core`'s versions, or why the peer cannot run.
pub fn versions(dir: &Path) -> Result<(String, String), String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("`node` cannot be started ({e}); install Node.js for the peer"))?;
    let node = String::from_utf8_lossy(&node.stdout).trim().to_owned();
    let manifest = dir.join("node_modules/@verrou/core/package.json");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "{} is missing ({e}); run `npm install` in {} (`cargo xtask bench` does)",
            manifest.display(),
            dir.display()
        )
    })?;
    let verrou = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("{} has no version", manifest.display()))?;
    Ok((node, verrou))
}

/// What the peer answered to one workload.
#[derive(Debug)]
pub enum Answer {
    /// It ran it.
    Ran(Sample),
    /// Node's Verrou cannot run it on this store, and why.
    NotApplicable(String),
}

/// One running `node peer.mjs <store>`; killed when dropped.
pub struct Peer {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    /// Starts the peer for `store` and waits until it has connected. It
    /// finds Redis where the store does: `VERROU_REDIS_URL`, or the
    /// testkit's default, passed on to it.
    ///
    /// # Errors
    /// Node cannot start, or the peer cannot reach the store.
    pub async fn start(dir: &Path, store: StoreKind) -> Result<Peer, String> {
        let redis = Service::Redis;
        // --no-warnings: the AWS SDK nags about Node versions on stderr.
        let mut child = Command::new("node")
            .args(["--no-warnings", "peer.mjs"])
            .arg(store.name())
            .env(redis.env_var(), redis.url())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let stdin = child.stdin.take().ok_or("node has no stdin")?;
        let stdout = child.stdout.take().ok_or("node has no stdout")?;
        let mut peer = Peer {
            _child: child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = peer.answer(START_LIMIT).await?;
        if ready["ready"] == Value::Bool(true) {
            Ok(peer)
        } else {
            Err(format!("peer did not start: {ready}"))
        }
    }

    /// Runs one workload for `secs` seconds (keys of round `round`).
    ///
    /// # Errors
    /// The peer failed the workload, hung or died.
    pub async fn run(
        &mut self,
        workload: Workload,
        secs: f64,
        round: usize,
    ) -> Result<Answer, String> {
        let request =
            serde_json::json!({ "workload": workload.name(), "secs": secs, "round": round });
        let line = format!("{request}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("peer is gone: {e}"))?;
        let limit = Duration::from_secs_f64(secs) + ANSWER_SLACK;
        let answer = self.answer(limit).await?;
        if let Some(error) = answer["error"].as_str() {
            return Err(error.lines().next().unwrap_or(error).to_owned());
        }
        if let Some(why) = answer["na"].as_str() {
            return Ok(Answer::NotApplicable(why.to_owned()));
        }
        let field = |name: &str| answer[name].as_f64();
        // The distribution counts only when it has every quantile.
        let cdf_us: Vec<f64> = answer["cdf_us"]
            .as_array()
            .map(|values| values.iter().filter_map(Value::as_f64).collect())
            .filter(|values: &Vec<f64>| values.len() == CDF_QUANTILES.len())
            .unwrap_or_default();
        Ok(Answer::Ran(Sample {
            ops: answer["ops"]
                .as_u64()
                .ok_or_else(|| format!("peer answer without ops: {answer}"))?,
            secs: field("secs").ok_or_else(|| format!("peer answer without secs: {answer}"))?,
            p50_us: field("p50_us"),
            p99_us: field("p99_us"),
            cdf_us,
        }))
    }

    async fn answer(&mut self, limit: Duration) -> Result<Value, String> {
        let line = tokio::time::timeout(limit, self.lines.next_line())
            .await
            .map_err(|_| format!("peer gave no answer within {limit:?}"))?
            .map_err(|e| format!("reading the peer: {e}"))?
            .ok_or("peer exited")?;
        serde_json::from_str(&line).map_err(|e| format!("peer printed `{line}`: {e}"))
    }
}
