//! The launch bench's waits on tepui: until the master lists its agent, until a subscription stream
//! ends after TEARDOWN, and until no task is left (in the master's `/state`, then under tepui's
//! process tree). Each wait has a deadline, so a stuck tepui fails the bench instead of hanging it.

use super::{deadline, Anomalies, POLL};
use crate::devproc::DevProcess;
use crate::procfs;
use crate::scheduler::{Master, Next, Subscription};
use anyhow::{anyhow, bail, Context, Result};
use proto::TaskState;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Polls `/state` until it lists one agent.
pub(super) async fn wait_ready(
    master: &Master,
    dev: &mut DevProcess,
    until: tokio::time::Instant,
) -> Result<()> {
    loop {
        if let Some(status) = dev.exited()? {
            bail!("tepui exited during startup ({status})");
        }
        let last = match tokio::time::timeout_at(until, master.get_json("/state")).await {
            Err(_) => "GET /state did not answer before the deadline".to_string(),
            Ok(Ok(state)) => match state.get("slaves").and_then(|s| s.as_array()).map(Vec::len) {
                Some(1) => return Ok(()),
                Some(n) => format!("/state lists {n} slaves"),
                None => "/state has no 'slaves' array".to_string(),
            },
            Ok(Err(e)) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= until {
            bail!("tepui was not ready (one agent in the master's /state) before the deadline; last: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tasks the master's `/state` lists in a non-terminal state, and how many of them are RUNNING.
async fn live_tasks(master: &Master) -> Result<(usize, usize, BTreeMap<String, usize>)> {
    let state = master.get_json("/state").await?;
    let frameworks = state
        .get("frameworks")
        .and_then(|f| f.as_array())
        .context("/state has no 'frameworks' array")?;
    let (mut live, mut running) = (0, 0);
    let mut by_state = BTreeMap::new();
    for framework in frameworks {
        for task in framework
            .get("tasks")
            .and_then(|t| t.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = task
                .get("state")
                .and_then(|s| s.as_str())
                .unwrap_or("(no state)");
            let parsed: Option<TaskState> = serde_json::from_value(json!(name)).ok();
            if parsed.is_some_and(|s| s.is_terminal()) {
                continue;
            }
            live += 1;
            if parsed == Some(TaskState::TaskRunning) {
                running += 1;
            }
            *by_state.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    Ok((live, running, by_state))
}

pub(super) struct Drained {
    /// Until `/state` showed no live task.
    pub(super) state_empty: Duration,
    /// Until no process ran under tepui any more (None: some were still there at the deadline).
    pub(super) processes_gone: Option<Duration>,
    pub(super) left: Option<usize>,
}

/// Waits until the master's `/state` shows no live task (an error at the deadline), then until no
/// process runs under tepui (at the deadline: reported, not an error). Times are since `since`.
pub(super) async fn wait_drained(
    master: &Master,
    dev: &DevProcess,
    timeout: Duration,
    after: &str,
    since: Instant,
) -> Result<Drained> {
    let start = since;
    let until = deadline(timeout);
    loop {
        let (live, running, by_state) = tokio::time::timeout_at(until, live_tasks(master))
            .await
            .map_err(|_| {
            anyhow!("after {after}, GET /state did not answer within {timeout:?}")
        })??;
        if live == 0 {
            break;
        }
        if tokio::time::Instant::now() >= until {
            bail!("after {after}, the master's /state still lists {live} live tasks ({running} running; {by_state:?}) {timeout:?} later");
        }
        tokio::time::sleep(POLL).await;
    }
    let state_empty = start.elapsed();
    let until = deadline(timeout);
    loop {
        let procs = procfs::task_processes(dev.pid)?;
        if procs.is_empty() {
            return Ok(Drained {
                state_empty,
                processes_gone: Some(start.elapsed()),
                left: None,
            });
        }
        if tokio::time::Instant::now() >= until {
            let sample: Vec<String> = procs
                .iter()
                .take(5)
                .map(|p| format!("{} {} ({})", p.pid, p.comm, p.state))
                .collect();
            eprintln!(
                "tepui-bench: still under tepui after {after}: {} processes, e.g. {sample:?}",
                procs.len()
            );
            return Ok(Drained {
                state_empty,
                processes_gone: None,
                left: Some(procs.len()),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Reads (and drops) events until the stream ends; false if it is still open at the deadline. A
/// stream that breaks instead of ending (no final chunk) counts as closed and is noted.
pub(super) async fn stream_closes(
    sub: &mut Subscription,
    within: Duration,
    anomalies: &mut Anomalies,
) -> Result<bool> {
    let until = deadline(within);
    loop {
        match sub
            .next(until, "the end of the stream after TEARDOWN")
            .await
        {
            Ok(Next::Closed) => return Ok(true),
            Ok(Next::Event(..)) => {}
            Err(_) if tokio::time::Instant::now() >= until => return Ok(false),
            Err(e) => {
                anomalies.note(format!(
                    "after TEARDOWN the subscription stream broke instead of ending cleanly: {e:#}"
                ));
                return Ok(true);
            }
        }
    }
}
