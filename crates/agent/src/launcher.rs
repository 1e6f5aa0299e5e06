//! Task processes: spawn, supervise, kill.
//!
//! What: `spawn` creates the sandbox and spawns the command straight into it (its `stdout`/`stderr`
//! files are the child's output, no pipes through the agent); `supervise` then starts one small
//! tokio task per process that waits for it and carries out kills. Exits come back as
//! `ProcessEvent`s.
//!
//! Why this shape: launching must stay close to the host's raw spawn rate (a benchmark starts 1,000
//! `sleep 600` tasks), so there is no helper process, no extra exec and no thread per task; the
//! driver runs a few `spawn`s at once on the blocking pool (sandbox creation is file system work
//! that can be slow on a busy disk). With
//! no `pre_exec` hook, std spawns through `posix_spawn` (`process_group(0)` maps to
//! `POSIX_SPAWN_SETPGROUP`), the cheapest way the platform offers.
//!
//! Every task leads its own process group; a kill is SIGTERM to the group, then SIGKILL to the
//! group after the grace period. When the leader exits, the rest of its group is SIGKILLed too, so
//! nothing a task started outlives it (the Mesos launcher destroys the whole container likewise).

use crate::core::{Exit, LaunchSpec};
use crate::sandbox;
use proto::{FrameworkId, TaskId, ValueType};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most `PORTn` variables given to one task (a task holding a huge range gets the first ones).
pub const PORT_VARS_MAX: usize = 1024;

/// What every launch needs from the agent.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    /// `ip:port` of the agent (`MESOS_AGENT_ENDPOINT`).
    pub agent_endpoint: String,
    /// `HOST`.
    pub hostname: String,
    /// The agent's own environment without `MESOS_*` and `LIBPROCESS_*` (the agent's
    /// configuration is not the task's business).
    pub base_env: Vec<(OsString, OsString)>,
}

impl LaunchContext {
    pub fn new(agent_endpoint: String, hostname: String) -> Self {
        let base_env = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.to_string_lossy();
                !k.starts_with("MESOS_") && !k.starts_with("LIBPROCESS_")
            })
            .collect();
        LaunchContext {
            agent_endpoint,
            hostname,
            base_env,
        }
    }
}

#[derive(Debug)]
pub enum ProcessEvent {
    /// A launch finished: the process runs (not yet supervised), or it could not be started.
    Launched {
        framework_id: FrameworkId,
        task_id: TaskId,
        result: Result<Spawned, String>,
    },
    Exited {
        framework_id: FrameworkId,
        task_id: TaskId,
        exit: Exit,
    },
}

/// The agent's handle on a running task process.
#[derive(Debug)]
pub struct ProcessHandle {
    pub pid: u32,
    kill_tx: mpsc::UnboundedSender<Duration>,
}

impl ProcessHandle {
    /// SIGTERM the group now, SIGKILL it after `grace` (a later, shorter grace wins).
    pub fn kill(&self, grace: Duration) {
        // The supervisor is gone only after the process was reaped: nothing left to kill.
        let _ = self.kill_tx.send(grace);
    }
}

/// The task's environment (agent variables first, so the task's own variables override them).
pub fn environment(spec: &LaunchSpec, ctx: &LaunchContext) -> Vec<(String, String)> {
    let sandbox = spec.sandbox.display().to_string();
    let mut env = vec![
        ("MESOS_SANDBOX".to_string(), sandbox.clone()),
        ("MESOS_DIRECTORY".to_string(), sandbox),
        ("MESOS_TASK_ID".to_string(), spec.task.task_id.value.clone()),
        ("MESOS_FRAMEWORK_ID".to_string(), spec.framework_id.value.clone()),
        ("MESOS_EXECUTOR_ID".to_string(), spec.task.task_id.value.clone()),
        ("MESOS_AGENT_ENDPOINT".to_string(), ctx.agent_endpoint.clone()),
        ("MESOS_SLAVE_ID".to_string(), spec.agent_id.value.clone()),
        ("HOST".to_string(), ctx.hostname.clone()),
    ];
    let ports: Vec<u64> = spec
        .task
        .resources
        .iter()
        .filter(|r| r.name == "ports" && r.kind == ValueType::Ranges)
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|ranges| ranges.range.iter())
        .flat_map(|range| range.begin..=range.end)
        .take(PORT_VARS_MAX)
        .collect();
    if let Some(first) = ports.first() {
        env.push(("PORT".to_string(), first.to_string()));
        for (i, port) in ports.iter().enumerate() {
            env.push((format!("PORT{i}"), port.to_string()));
        }
        let all: Vec<String> = ports.iter().map(u64::to_string).collect();
        env.push(("PORTS".to_string(), all.join(",")));
    }
    let variables = spec.task.command.as_ref().and_then(|c| c.environment.as_ref());
    for variable in variables.map(|e| e.variables.as_slice()).unwrap_or_default() {
        match variable.kind.as_deref() {
            None | Some("VALUE") => {
                env.push((variable.name.clone(), variable.value.clone().unwrap_or_default()));
            }
            Some(other) => tracing::warn!(
                task = %spec.task.task_id, name = %variable.name, kind = other,
                "environment variable type not supported; left out"
            ),
        }
    }
    env
}

/// The program and argv of the task's command (`shell` as mesos-http-api.md 8.4 describes).
fn command(spec: &LaunchSpec) -> Result<std::process::Command, String> {
    let info = spec.task.command.as_ref().ok_or("the task has no 'command'")?;
    let value = info.value.as_deref().ok_or("the command has no 'value'")?;
    if info.shell {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(value);
        Ok(cmd)
    } else {
        let mut cmd = std::process::Command::new(value);
        if let Some((argv0, rest)) = info.arguments.split_first() {
            cmd.arg0(argv0).args(rest);
        }
        Ok(cmd)
    }
}

/// A spawned task process not yet supervised. Dropped unsupervised (the agent stopped before the
/// launch was reported), it kills its process group.
#[derive(Debug)]
pub struct Spawned {
    child: Option<tokio::process::Child>,
    pub pid: u32,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.child.is_some() {
            signal_group(self.pid, libc::SIGKILL);
        }
    }
}

/// Creates the sandbox and spawns the task (blocking: file system work and `posix_spawn`; run it
/// on the blocking pool, inside the runtime).
pub fn spawn(spec: &LaunchSpec, ctx: &LaunchContext) -> Result<Spawned, String> {
    let files =
        sandbox::create(&spec.sandbox).map_err(|e| format!("cannot create sandbox {}: {e}", spec.sandbox.display()))?;
    let mut cmd = command(spec)?;
    cmd.current_dir(&spec.sandbox)
        .env_clear()
        .envs(ctx.base_env.iter().map(|(k, v)| (k, v)))
        .envs(environment(spec, ctx))
        .stdin(Stdio::null())
        .stdout(Stdio::from(files.stdout))
        .stderr(Stdio::from(files.stderr))
        .process_group(0);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(false);
    let child = cmd.spawn().map_err(|e| {
        let program = spec
            .task
            .command
            .as_ref()
            .and_then(|c| c.value.clone())
            .unwrap_or_default();
        format!("cannot run '{program}': {e}")
    })?;
    let pid = child.id().ok_or("the process exited before its pid was read")?;
    Ok(Spawned {
        child: Some(child),
        pid,
    })
}

/// Starts the supervisor that waits for the process and carries out kills. Its `Exited` event is
/// sent only after this call, so the driver always learns of a launch before its exit.
pub fn supervise(
    mut spawned: Spawned,
    events: mpsc::UnboundedSender<ProcessEvent>,
    framework_id: FrameworkId,
    task_id: TaskId,
) -> ProcessHandle {
    let (kill_tx, kill_rx) = mpsc::unbounded_channel();
    let pid = spawned.pid;
    let Some(child) = spawned.child.take() else {
        // Cannot happen: only `spawn` builds a `Spawned`, and `supervise` consumes it.
        return ProcessHandle { pid, kill_tx };
    };
    tokio::spawn(wait_and_kill(child, pid, kill_rx, events, framework_id, task_id));
    ProcessHandle { pid, kill_tx }
}

/// SIGKILLs a process group when dropped.
struct GroupKiller(u32);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
    }
}

/// Sends `signal` to the process group `pgid`; a group already gone is not an error.
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return };
    if pgid <= 1 {
        return; // never the whole system
    }
    // SAFETY: killpg only sends a signal; no memory is involved.
    let rc = unsafe { libc::killpg(pgid, signal) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pgid, signal, error = %err, "killpg failed");
        }
    }
}

async fn wait_and_kill(
    mut child: tokio::process::Child,
    pid: u32,
    mut kill_rx: mpsc::UnboundedReceiver<Duration>,
    events: mpsc::UnboundedSender<ProcessEvent>,
    framework_id: FrameworkId,
    task_id: TaskId,
) {
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
            grace = kill_rx.recv(), if kills_open => match grace {
                Some(grace) => {
                    tracing::debug!(%task_id, pid, ?grace, "SIGTERM to the task's process group");
                    signal_group(pid, libc::SIGTERM);
                    let at = Instant::now() + grace;
                    escalate_at = Some(escalate_at.map_or(at, |old| old.min(at)));
                }
                None => kills_open = false,
            },
            _ = escalation => {
                tracing::info!(%task_id, pid, "grace period over; SIGKILL to the task's process group");
                signal_group(pid, libc::SIGKILL);
                escalate_at = None;
            }
        }
    };
    // The leader is gone; whatever else it started goes with it.
    drop(group);
    let exit = match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        },
        Err(e) => {
            tracing::error!(%task_id, pid, error = %e, "waiting for the task's process failed");
            Exit::Code(-1)
        }
    };
    let _ = events.send(ProcessEvent::Exited {
        framework_id,
        task_id,
        exit,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{AgentId, ContainerId, TaskInfo};

    fn spec(command: serde_json::Value, resources: serde_json::Value) -> LaunchSpec {
        let task: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "S1"},
            "resources": resources, "command": command
        }))
        .unwrap();
        LaunchSpec {
            framework_id: FrameworkId::new("F1"),
            agent_id: AgentId::new("S1"),
            task,
            container_id: ContainerId::new("c1"),
            sandbox: std::env::temp_dir().join(format!("tepui-launch-{}", uuid::Uuid::new_v4())),
        }
    }

    #[test]
    fn environment_has_mesos_and_port_variables() {
        let spec = spec(
            serde_json::json!({"value": "true", "environment": {"variables": [{"name": "PORT0", "value": "1"}, {"name": "MODE", "value": "prod"}]}}),
            serde_json::json!([{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31005, "end": 31006}, {"begin": 31000, "end": 31000}]}}]),
        );
        let ctx = LaunchContext {
            agent_endpoint: "127.0.0.1:5051".into(),
            hostname: "h".into(),
            base_env: vec![],
        };
        let env = environment(&spec, &ctx);
        let get = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MESOS_TASK_ID"), Some("t"));
        assert_eq!(get("MESOS_SLAVE_ID"), Some("S1"));
        assert_eq!(get("MESOS_AGENT_ENDPOINT"), Some("127.0.0.1:5051"));
        assert_eq!(get("HOST"), Some("h"));
        assert_eq!(get("PORT"), Some("31005"));
        assert_eq!(get("PORT1"), Some("31006"));
        assert_eq!(get("PORT2"), Some("31000"));
        assert_eq!(get("PORTS"), Some("31005,31006,31000"));
        assert_eq!(get("MODE"), Some("prod"));
        // The task's own variable wins over the agent's.
        assert_eq!(get("PORT0"), Some("1"));
    }

    fn launch(
        spec: &LaunchSpec,
        ctx: &LaunchContext,
        events: mpsc::UnboundedSender<ProcessEvent>,
    ) -> Result<ProcessHandle, String> {
        let spawned = spawn(spec, ctx)?;
        Ok(supervise(
            spawned,
            events,
            spec.framework_id.clone(),
            spec.task.task_id.clone(),
        ))
    }

    #[tokio::test]
    async fn exits_and_kills_are_reported() {
        let ctx = LaunchContext::new("127.0.0.1:5051".into(), "h".into());
        let (tx, mut rx) = mpsc::unbounded_channel();

        let ok = spec(
            serde_json::json!({"value": "echo out; echo err >&2; echo $MESOS_TASK_ID"}),
            serde_json::json!([]),
        );
        launch(&ok, &ctx, tx.clone()).unwrap();
        let Some(ProcessEvent::Exited { exit, .. }) = rx.recv().await else {
            panic!()
        };
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(std::fs::read_to_string(ok.sandbox.join("stdout")).unwrap(), "out\nt\n");
        assert_eq!(std::fs::read_to_string(ok.sandbox.join("stderr")).unwrap(), "err\n");

        let argv = spec(
            serde_json::json!({"shell": false, "value": "/bin/sh", "arguments": ["sh", "-c", "exit 7"]}),
            serde_json::json!([]),
        );
        launch(&argv, &ctx, tx.clone()).unwrap();
        let Some(ProcessEvent::Exited { exit, .. }) = rx.recv().await else {
            panic!()
        };
        assert_eq!(exit, Exit::Code(7));

        // A shell that ignores SIGTERM is SIGKILLed after the grace period.
        let stubborn = spec(
            serde_json::json!({"value": "trap '' TERM; echo ready; sleep 600"}),
            serde_json::json!([]),
        );
        let handle = launch(&stubborn, &ctx, tx.clone()).unwrap();
        // Kill only once the trap is in place.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(stubborn.sandbox.join("stdout")).unwrap_or_default() != "ready\n" {
            assert!(std::time::Instant::now() < deadline, "the shell never got ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.kill(Duration::from_millis(200));
        let Some(ProcessEvent::Exited { exit, .. }) = rx.recv().await else {
            panic!()
        };
        assert_eq!(exit, Exit::Signal(libc::SIGKILL));

        let missing = spec(
            serde_json::json!({"shell": false, "value": "/nonexistent/program"}),
            serde_json::json!([]),
        );
        let err = launch(&missing, &ctx, tx.clone()).unwrap_err();
        assert!(err.contains("/nonexistent/program"), "{err}");

        for s in [ok, argv, stubborn, missing] {
            let _ = std::fs::remove_dir_all(&s.sandbox);
        }
    }
}
