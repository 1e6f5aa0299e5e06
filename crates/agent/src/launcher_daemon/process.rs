//! The daemon's side of one task process: spawn it, wait for it, carry out kills.
//!
//! `spawn` starts the command with std's spawn (`posix_spawn` with `POSIX_SPAWN_SETPGROUP`: no
//! `pre_exec` hook, so no fork of the daemon), into its own process group, with its output going
//! straight to the sandbox files. `supervise` starts one small tokio task per process that waits for
//! it (a pidfd, so the daemon never reaps anyone else's child) and carries out kills: the signal to
//! the group now, SIGKILL to the group when the grace period ends. When the leader exits, the rest
//! of its group is SIGKILLed too, so nothing a task started outlives it.

use super::SpawnHook;
use crate::checkpoint::{self, layout, records};
use crate::launcher::signal_group;
use crate::launcher_protocol::LaunchRequest;
use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A kill asked for: the signal now, SIGKILL after the grace period (if any).
#[derive(Debug, Clone, Copy)]
pub struct KillOrder {
    pub signal: i32,
    pub grace: Option<Duration>,
}

/// Starts the task (blocking: opens files and spawns; call it on the blocking pool, inside the
/// runtime). Returns the child and its pid.
pub fn spawn(
    request: &LaunchRequest,
    hook: &dyn SpawnHook,
) -> Result<(tokio::process::Child, u32), String> {
    let open = |path: &std::path::Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    let stdout = open(&request.stdout)?;
    let stderr = open(&request.stderr)?;
    let mut command = std::process::Command::new(&request.program);
    if let Some((argv0, rest)) = request.argv.split_first() {
        command.arg0(argv0).args(rest);
    }
    command
        .current_dir(&request.cwd)
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    hook.before_spawn(request, &mut command)?;
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(false);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run '{}': {e}", request.program))?;
    let Some(pid) = child.id() else {
        return Err("the process exited before its pid was read".to_string());
    };
    if let Err(e) = hook.after_spawn(request, pid) {
        signal_group(pid, libc::SIGKILL);
        tokio::spawn(reap(child));
        return Err(e);
    }
    Ok((child, pid))
}

async fn reap(mut child: tokio::process::Child) {
    let _ = child.wait().await;
}

/// SIGKILLs a process group when dropped.
struct GroupKiller(u32);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
    }
}

/// Waits for the process, carrying out kills meanwhile; returns its raw wait status once it and
/// its whole group are gone.
pub async fn wait_and_kill(
    mut child: tokio::process::Child,
    pid: u32,
    container_id: &str,
    mut kills: mpsc::UnboundedReceiver<KillOrder>,
) -> i32 {
    // Whatever ends this supervisor (the process exiting, or the runtime dropping it) takes the
    // whole process group down.
    let group = GroupKiller(pid);
    let mut escalate_at: Option<Instant> = None;
    let mut kills_open = true;
    let status = loop {
        let escalation = async {
            match escalate_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => break status,
            order = kills.recv(), if kills_open => match order {
                Some(order) => {
                    tracing::debug!(container = container_id, pid, signal = order.signal, grace = ?order.grace, "signal to the task's process group");
                    signal_group(pid, order.signal);
                    if let Some(grace) = order.grace {
                        let at = Instant::now() + grace;
                        escalate_at = Some(escalate_at.map_or(at, |old| old.min(at)));
                    }
                }
                None => kills_open = false,
            },
            _ = escalation => {
                tracing::info!(container = container_id, pid, "grace period over; SIGKILL to the task's process group");
                signal_group(pid, libc::SIGKILL);
                escalate_at = None;
            }
        }
    };
    // The leader is gone; whatever else it started goes with it.
    drop(group);
    match status {
        Ok(status) => status.into_raw(),
        Err(e) => {
            tracing::error!(container = container_id, pid, error = %e, "waiting for the task's process failed");
            // As if exited with status 255: the agent reports TASK_FAILED.
            255 << 8
        }
    }
}

/// One exit to record.
pub struct ExitRecord {
    pub container_id: String,
    pub checkpoint_dir: PathBuf,
    pub wait_status: i32,
}

/// Records exits durably, each in its run's checkpoint directory (`exit_status`), before anyone is
/// told of them: all files written, then synced together (files and directories a few at a time:
/// a mass teardown pays a few flushes, not two per task). Returns what failed.
pub fn record_exits(exits: &[ExitRecord]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut files = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for exit in exits {
        let record = records::ExitRecord {
            version: records::CHECKPOINT_VERSION,
            wait_status: exit.wait_status,
        };
        let path = layout::exit_status(&exit.checkpoint_dir);
        // The run's directory may still be on its way from the agent's checkpoint log.
        let written = std::fs::create_dir_all(&exit.checkpoint_dir).and_then(|()| {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)?;
            file.write_all(&records::to_bytes(&record))
        });
        match written {
            Ok(()) => {
                files.insert(path);
                dirs.insert(exit.checkpoint_dir.clone());
            }
            Err(e) => errors.push(format!("exit status of {}: {e}", exit.container_id)),
        }
    }
    errors.extend(checkpoint::sync_paths(&files, &dirs));
    errors
}
