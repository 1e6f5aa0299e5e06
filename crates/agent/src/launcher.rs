//! What a task's process is, as the agent describes it to its launcher daemon.
//!
//! What: `request` turns a `LaunchSpec` into a `LaunchRequest` (program, argv, the complete
//! environment, working directory, output files, checkpoint directory) after creating the sandbox;
//! the daemon (`launcher_daemon`) spawns it. `signal_group` is the one way anything signals a task.
//!
//! Why this shape: launching must stay close to the host's raw spawn rate (a benchmark starts 1,000
//! `sleep 600` tasks), so there is no executor process: the daemon spawns the command itself, with
//! `posix_spawn` (std's spawn with `process_group(0)` and no `pre_exec` hook), and the agent does
//! the file system work (sandbox directories) a few at a time on its blocking pool.
//!
//! Every task leads its own process group; a kill is SIGTERM to the group, then SIGKILL to the
//! group after the grace period. When the leader exits, the rest of its group is SIGKILLed too, so
//! nothing a task started outlives it (the Mesos launcher destroys the whole container likewise).

use crate::core::LaunchSpec;
use crate::launcher_protocol::LaunchRequest;
use crate::sandbox;
use proto::ValueType;
use std::ffi::OsString;

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

/// The task's environment (agent variables first, so the task's own variables override them).
pub fn environment(spec: &LaunchSpec, ctx: &LaunchContext) -> Vec<(String, String)> {
    let sandbox = spec.sandbox.display().to_string();
    let mut env = vec![
        ("MESOS_SANDBOX".to_string(), sandbox.clone()),
        ("MESOS_DIRECTORY".to_string(), sandbox),
        ("MESOS_TASK_ID".to_string(), spec.task.task_id.value.clone()),
        (
            "MESOS_FRAMEWORK_ID".to_string(),
            spec.framework_id.value.clone(),
        ),
        (
            "MESOS_EXECUTOR_ID".to_string(),
            spec.task.task_id.value.clone(),
        ),
        (
            "MESOS_AGENT_ENDPOINT".to_string(),
            ctx.agent_endpoint.clone(),
        ),
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
    let variables = spec
        .task
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref());
    for variable in variables
        .map(|e| e.variables.as_slice())
        .unwrap_or_default()
    {
        match variable.kind.as_deref() {
            None | Some("VALUE") => {
                env.push((
                    variable.name.clone(),
                    variable.value.clone().unwrap_or_default(),
                ));
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
fn command(spec: &LaunchSpec) -> Result<(String, Vec<String>), String> {
    let info = spec
        .task
        .command
        .as_ref()
        .ok_or("the task has no 'command'")?;
    let value = info.value.as_deref().ok_or("the command has no 'value'")?;
    if info.shell {
        Ok((
            "/bin/sh".to_string(),
            vec!["sh".to_string(), "-c".to_string(), value.to_string()],
        ))
    } else if info.arguments.is_empty() {
        Ok((value.to_string(), vec![value.to_string()]))
    } else {
        Ok((value.to_string(), info.arguments.clone()))
    }
}

/// Creates the sandbox and describes the process for the daemon (blocking: file system work; run
/// it on the blocking pool).
pub fn request(spec: &LaunchSpec, ctx: &LaunchContext) -> Result<LaunchRequest, String> {
    let (program, argv) = command(spec)?;
    sandbox::prepare(&spec.sandbox)
        .map_err(|e| format!("cannot create sandbox {}: {e}", spec.sandbox.display()))?;
    let mut env: Vec<(String, String)> = ctx
        .base_env
        .iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    env.extend(environment(spec, ctx));
    // Later entries win, as with repeated `Command::env`.
    let mut seen = std::collections::HashSet::new();
    let mut deduped: Vec<(String, String)> = env
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    deduped.reverse();
    Ok(LaunchRequest {
        container_id: spec.container_id.value.clone(),
        program,
        argv,
        env: deduped,
        cwd: spec.sandbox.clone(),
        stdout: spec.sandbox.join("stdout"),
        stderr: spec.sandbox.join("stderr"),
        checkpoint_dir: spec.checkpoint_dir.clone(),
        isolation: serde_json::Value::Null,
    })
}

/// Sends `signal` to the process group `pgid`; a group already gone is not an error.
pub fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{AgentId, ContainerId, FrameworkId, TaskInfo};

    fn spec(command: serde_json::Value, resources: serde_json::Value) -> LaunchSpec {
        let task: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "S1"},
            "resources": resources, "command": command
        }))
        .unwrap();
        let base = std::env::temp_dir().join(format!("tepui-launch-{}", uuid::Uuid::new_v4()));
        LaunchSpec {
            framework_id: FrameworkId::new("F1"),
            agent_id: AgentId::new("S1"),
            task,
            container_id: ContainerId::new("c1"),
            sandbox: base.join("sandbox"),
            checkpoint_dir: base.join("meta/runs/c1"),
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
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
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

    #[test]
    fn requests_carry_argv_environment_and_paths() {
        let shell = spec(
            serde_json::json!({"value": "echo hi"}),
            serde_json::json!([]),
        );
        let ctx = LaunchContext {
            agent_endpoint: "127.0.0.1:5051".into(),
            hostname: "h".into(),
            base_env: vec![
                ("PATH".into(), "/bin".into()),
                ("HOST".into(), "agent-env".into()),
            ],
        };
        let request = request(&shell, &ctx).unwrap();
        assert_eq!(request.program, "/bin/sh");
        assert_eq!(request.argv, vec!["sh", "-c", "echo hi"]);
        assert_eq!(request.cwd, shell.sandbox);
        assert_eq!(request.stdout, shell.sandbox.join("stdout"));
        assert_eq!(request.checkpoint_dir, shell.checkpoint_dir);
        assert!(shell.sandbox.is_dir(), "the sandbox is created");
        let hosts: Vec<&str> = request
            .env
            .iter()
            .filter(|(k, _)| k == "HOST")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            hosts,
            vec!["h"],
            "one value per name, the agent's variable over the inherited one"
        );
        assert!(request.env.iter().any(|(k, v)| k == "PATH" && v == "/bin"));

        let argv = spec(
            serde_json::json!({"shell": false, "value": "/bin/sh", "arguments": ["sh", "-c", "exit 7"]}),
            serde_json::json!([]),
        );
        let request = super::request(&argv, &ctx).unwrap();
        assert_eq!(
            (request.program.as_str(), request.argv.len()),
            ("/bin/sh", 3)
        );
        let bare = spec(
            serde_json::json!({"shell": false, "value": "/bin/true"}),
            serde_json::json!([]),
        );
        assert_eq!(super::request(&bare, &ctx).unwrap().argv, vec!["/bin/true"]);
        for s in [shell, argv, bare] {
            let _ = std::fs::remove_dir_all(s.sandbox.parent().unwrap());
        }
    }
}
