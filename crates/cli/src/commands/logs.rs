//! `task logs ID [--follow] [--stderr] [--lines N]`: a task's sandbox output, read through the
//! leading master's proxy of the agent's files (`/agents/<agent>/files/read`,
//! mesos-http-api.md 5), so no agent port needs to be reachable from here.
//!
//! The task is looked up in the leader's `/state` (live or completed, by id or unique prefix);
//! its file is `/frameworks/<fw>/executors/<executor or task id>/runs/latest/<stdout|stderr>`.
//! The last N lines come from reading backwards in growing windows; `--follow` then reads new
//! bytes from the last offset until the task is terminal and nothing is left to read.

use super::cluster::find_task;
use super::{emit, Context};
use crate::discovery::Masters;
use crate::http::{status_error, transport_error};
use crate::output::cluster::is_terminal;
use crate::output::text;
use crate::CliError;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Most bytes one `files/read` returns (the agent's `READ_LENGTH_MAX`).
const READ_BYTES_MAX: u64 = 1024 * 1024;
/// First window read back from the end of the file for the last lines.
const TAIL_WINDOW_BYTES: u64 = 64 * 1024;
/// The largest window read back for the last lines (very long lines are cut there).
const TAIL_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Pause between reads while following.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// How often the task's state is checked while following.
const STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub struct LogOptions {
    pub follow: bool,
    pub stderr: bool,
    pub lines: usize,
}

/// Where a task's output file is read from.
struct LogFile {
    masters: Masters,
    agent_id: String,
    path: String,
}

pub async fn logs(ctx: &Context, id: &str, options: LogOptions) -> Result<(), CliError> {
    let masters = ctx.masters().await?;
    let state = ctx.http.get(&masters.url("/state")).await?;
    let task = find_task(&state, id.trim())?;
    let task_id = text(&task, "id");
    let executor = match text(&task, "executor_id") {
        e if e == "-" => task_id.clone(),
        e => e,
    };
    let file = if options.stderr { "stderr" } else { "stdout" };
    let path = format!(
        "/frameworks/{}/executors/{executor}/runs/latest/{file}",
        text(&task, "framework_id")
    );
    let log = LogFile {
        masters,
        agent_id: text(&task, "slave_id"),
        path,
    };

    let size = read(ctx, &log, None, 0).await?.1;
    let mut window = TAIL_WINDOW_BYTES;
    let (start, text) = loop {
        let start = size.saturating_sub(window);
        let text = read_range(ctx, &log, start, size).await?;
        if start == 0 || window >= TAIL_BYTES_MAX || text.matches('\n').count() > options.lines {
            break (start, text);
        }
        window *= 4;
    };
    let mut offset = start + text.len() as u64;
    print_chunk(ctx, &task_id, start, last_lines(&text, options.lines));
    if !options.follow {
        return Ok(());
    }
    let mut checked = Instant::now();
    let mut ending = is_terminal(&text_state(&task));
    loop {
        let (data, at) = read(ctx, &log, Some(offset), READ_BYTES_MAX).await?;
        if !data.is_empty() {
            print_chunk(ctx, &task_id, at, &data);
            offset = at + data.len() as u64;
            if data.len() as u64 >= READ_BYTES_MAX / 2 {
                continue; // more is probably waiting
            }
        } else if ending {
            // Terminal and everything printed.
            return Ok(());
        }
        if !ending && checked.elapsed() >= STATE_CHECK_INTERVAL {
            checked = Instant::now();
            let state = ctx.http.get(&log.masters.url("/state")).await?;
            // A task the master forgot is over too.
            ending = find_task(&state, &task_id)
                .map(|t| is_terminal(&text_state(&t)))
                .unwrap_or(true);
            if ending {
                continue; // one more read drains what was written before the end
            }
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

fn text_state(task: &Value) -> String {
    text(task, "state")
}

fn print_chunk(ctx: &Context, task_id: &str, offset: u64, data: &str) {
    if data.is_empty() {
        return;
    }
    if ctx.json() {
        ctx.print_json(&json!({"task": task_id, "offset": offset, "data": data}));
    } else {
        emit(data);
    }
}

/// Bytes `[start, end)` of the file (several reads when longer than one answer).
async fn read_range(
    ctx: &Context,
    log: &LogFile,
    start: u64,
    end: u64,
) -> Result<String, CliError> {
    let mut text = String::new();
    let mut offset = start;
    while offset < end {
        let (data, _) = read(ctx, log, Some(offset), (end - offset).min(READ_BYTES_MAX)).await?;
        if data.is_empty() {
            break;
        }
        offset += data.len() as u64;
        text.push_str(&data);
    }
    Ok(text)
}

/// One `files/read`: `(data, offset)`; without an offset, the answer's offset is the file's size.
async fn read(
    ctx: &Context,
    log: &LogFile,
    offset: Option<u64>,
    length: u64,
) -> Result<(String, u64), CliError> {
    let url = log
        .masters
        .url(&format!("/agents/{}/files/read", log.agent_id));
    let offset_param = offset
        .map(|o| o.to_string())
        .unwrap_or_else(|| "-1".to_string());
    let request = ctx.http.client().get(&url).query(&[
        ("path", log.path.as_str()),
        ("offset", &offset_param),
        ("length", &length.to_string()),
    ]);
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(&url, &e))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| transport_error(&url, &e))?;
    match status.as_u16() {
        200 => {}
        404 => {
            return Err(CliError::NotFound(format!(
                "{} on agent {}: {}",
                log.path,
                log.agent_id,
                crate::http::api_message(&body)
            )))
        }
        // The master answered for an agent that did not.
        502 => {
            return Err(CliError::Unreachable {
                address: format!("agent {}", log.agent_id),
                reason: crate::http::api_message(&body),
            })
        }
        _ => return Err(status_error("GET", &url, status, &body)),
    }
    let doc: Value = serde_json::from_str(&body).map_err(|e| CliError::BadAnswer {
        url: url.clone(),
        reason: format!("not JSON: {e}"),
    })?;
    let data = doc
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let at = doc
        .get("offset")
        .and_then(Value::as_u64)
        .ok_or_else(|| CliError::BadAnswer {
            url,
            reason: "no offset in the answer".into(),
        })?;
    Ok((data, at))
}

/// The suffix of `text` holding its last `n` lines (a final newline ends a line, it does not
/// start one).
pub fn last_lines(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(n - 1) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_like_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb\nc\n", 5), "a\nb\nc\n");
        assert_eq!(last_lines("a\nb\nc\n", 0), "");
        assert_eq!(last_lines("", 3), "");
        assert_eq!(last_lines("\n\n", 1), "\n");
    }
}
