//! The agent's `/state` document (mesos-http-api.md section 5) and `/metrics/snapshot` (section 6).
//!
//! Internal state converts to the legacy JSON here, at the edge: flattened resources and
//! attributes, `slave_*` names, float seconds for times. A command task is its own executor (the
//! executor id is the task id), as with Mesos' built-in command executor; a custom executor is one
//! entry with its tasks, the ones waiting for it to subscribe (`queued_tasks`) and its completed
//! ones.

use crate::core::{Core, Executor, Framework, Task};
use crate::resources_detect;
use crate::shared::Shared;
use proto::{ResourceBag, TaskState};
use serde_json::{json, Map, Value};

/// Build facts reported by `/state` and `/version`.
pub struct BuildInfo {
    pub build_date: String,
    pub build_time: f64,
    pub build_user: String,
}

/// The build time is the binary's modification time (no build script needed); the user is the one
/// who compiled it.
pub fn build_info() -> BuildInfo {
    let build_time = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0);
    BuildInfo {
        build_date: format_utc(build_time as i64),
        build_time,
        build_user: option_env!("USER").unwrap_or("tepui").to_string(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (civil-from-days, H. Hinnant's algorithm).
pub fn format_utc(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

fn flatten(resources: &[proto::Resource]) -> Value {
    Value::Object(
        ResourceBag::from_resources(resources)
            .unwrap_or_default()
            .flatten(),
    )
}

fn task_json(task: &Task, agent_id: &str) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("state".into(), json!(s.state));
            o.insert("timestamp".into(), json!(s.timestamp.unwrap_or(0.0)));
            if let Some(h) = s.healthy {
                o.insert("healthy".into(), json!(h));
            }
            if let Some(c) = &s.container_status {
                o.insert("container_status".into(), c.clone());
            }
            Value::Object(o)
        })
        .collect();
    let mut o = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id(),
        "slave_id": agent_id,
        "state": task.state,
        "resources": flatten(&task.info.resources),
        "statuses": statuses,
    });
    if let (Some(labels), Value::Object(map)) = (&task.info.labels, &mut o) {
        map.insert("labels".into(), json!(labels.labels));
    }
    o
}

fn executor_json(task: &Task, agent_id: &str, completed: bool) -> Value {
    let command = task
        .info
        .command
        .as_ref()
        .and_then(|c| c.value.clone())
        .unwrap_or_default();
    let task_json = task_json(task, agent_id);
    let (tasks, completed_tasks) = if completed {
        (vec![], vec![task_json])
    } else {
        (vec![task_json], vec![])
    };
    json!({
        "id": task.info.task_id.value,
        "name": format!("Command Executor (Task: {}) (Command: sh -c '{}')", task.info.task_id, command),
        "source": task.info.task_id.value,
        "container": task.container_id.value,
        "directory": task.sandbox.display().to_string(),
        "resources": flatten(&task.info.resources),
        "framework_id": task.framework_id.value,
        "type": "COMMAND",
        "tasks": tasks,
        "queued_tasks": [],
        "completed_tasks": completed_tasks,
    })
}

fn custom_executor_json(f: &Framework, executor: &Executor, agent_id: &str) -> Value {
    let ours = |t: &&Task| t.container_id == executor.container_id;
    let queued: Vec<Value> = executor
        .queued
        .iter()
        .filter_map(|id| f.tasks.get(id))
        .map(|t| task_json(t, agent_id))
        .collect();
    let tasks: Vec<Value> = f
        .tasks
        .values()
        .filter(ours)
        .filter(|t| !executor.queued.contains(&t.info.task_id))
        .map(|t| task_json(t, agent_id))
        .collect();
    let completed: Vec<Value> = f
        .completed
        .iter()
        .filter(ours)
        .map(|t| task_json(t, agent_id))
        .collect();
    let mut o = json!({
        "id": executor.info.executor_id.value,
        "name": executor.info.name.clone().unwrap_or_default(),
        "source": executor.info.source.clone().unwrap_or_default(),
        "container": executor.container_id.value,
        "directory": executor.sandbox.display().to_string(),
        "resources": flatten(&executor.info.resources),
        "framework_id": f.id.value,
        "type": executor.info.kind.clone().unwrap_or_else(|| "CUSTOM".to_string()),
        "tasks": tasks,
        "queued_tasks": queued,
        "completed_tasks": completed,
    });
    if let (Some(labels), Value::Object(map)) = (&executor.info.labels, &mut o) {
        map.insert("labels".into(), json!(labels.labels));
    }
    o
}

fn framework_json(f: &Framework, agent_id: &str) -> Value {
    let command = |t: &&Task| t.custom_executor().is_none();
    let mut executors: Vec<Value> = f
        .tasks
        .values()
        .filter(command)
        .map(|t| executor_json(t, agent_id, false))
        .collect();
    executors.extend(
        f.executors
            .values()
            .map(|e| custom_executor_json(f, e, agent_id)),
    );
    let mut completed: Vec<Value> = f
        .completed
        .iter()
        .filter(command)
        .map(|t| executor_json(t, agent_id, true))
        .collect();
    completed.extend(
        f.completed_executors
            .iter()
            .map(|e| custom_executor_json(f, e, agent_id)),
    );
    let roles = f.info.effective_roles();
    let mut o = json!({
        "id": f.id.value,
        "name": f.info.name,
        "user": f.info.user,
        "hostname": f.info.hostname.clone().unwrap_or_default(),
        "role": roles.first().cloned().unwrap_or_else(|| "*".into()),
        "roles": roles,
        "checkpoint": f.info.checkpoint,
        "failover_timeout": f.info.failover_timeout,
        "executors": executors,
        "completed_executors": completed,
    });
    if let (Some(principal), Value::Object(map)) = (&f.info.principal, &mut o) {
        map.insert("principal".into(), json!(principal));
    }
    o
}

pub fn state(shared: &Shared, build: &BuildInfo) -> Value {
    let info = &shared.info;
    let leader = shared.leader();
    let core = shared.core();
    let agent_id = core.agent_id().map(|a| a.value.clone()).unwrap_or_default();
    let resources = Value::Object(info.resources.flatten());
    let mut o = json!({
        "id": agent_id,
        "pid": info.pid(),
        "hostname": info.hostname,
        "port": info.port,
        "version": proto::MESOS_VERSION,
        "build_date": build.build_date,
        "build_time": build.build_time,
        "build_user": build.build_user,
        "start_time": info.start_time,
        "capabilities": [],
        "resources": resources.clone(),
        "reserved_resources": {},
        "unreserved_resources": resources,
        "attributes": Value::Object(proto::flatten_attributes(&info.attributes)),
        "flags": info.flags,
        "frameworks": core.frameworks().map(|f| framework_json(f, &agent_id)).collect::<Vec<_>>(),
        "completed_frameworks": core.completed_frameworks().map(|f| framework_json(f, &agent_id)).collect::<Vec<_>>(),
    });
    if let (Some(leader), Value::Object(map)) = (leader, &mut o) {
        map.insert("master_hostname".into(), json!(leader));
    }
    o
}

fn count_live(core: &Core, state: TaskState) -> f64 {
    core.live_tasks().filter(|t| t.state == state).count() as f64
}

pub fn metrics(shared: &Shared) -> Value {
    let info = &shared.info;
    let mem = resources_detect::mem_info().unwrap_or_default();
    let core = shared.core();
    let used = core.used_resources();
    json!({
        "slave/registered": if core.is_connected() { 1.0 } else { 0.0 },
        "slave/uptime_secs": info.started.elapsed().as_secs_f64(),
        "slave/tasks_staging": count_live(&core, TaskState::TaskStaging),
        "slave/tasks_starting": count_live(&core, TaskState::TaskStarting),
        "slave/tasks_running": count_live(&core, TaskState::TaskRunning),
        "slave/tasks_killing": count_live(&core, TaskState::TaskKilling),
        "slave/tasks_finished": core.terminal_count(TaskState::TaskFinished) as f64,
        "slave/tasks_failed": core.terminal_count(TaskState::TaskFailed) as f64,
        "slave/tasks_killed": core.terminal_count(TaskState::TaskKilled) as f64,
        "slave/tasks_lost": core.terminal_count(TaskState::TaskLost) as f64,
        "slave/tasks_error": core.terminal_count(TaskState::TaskError) as f64,
        "slave/executors_running": core.processes_running() as f64,
        "slave/recovery_errors": shared.recovery_errors.load(std::sync::atomic::Ordering::Relaxed) as f64,
        "slave/cpus_total": info.resources.scalar("cpus"),
        "slave/mem_total": info.resources.scalar("mem"),
        "slave/disk_total": info.resources.scalar("disk"),
        "slave/cpus_used": used.scalar("cpus"),
        "slave/mem_used": used.scalar("mem"),
        "slave/disk_used": used.scalar("disk"),
        "system/cpus_total": resources_detect::cpu_count() as f64,
        "system/mem_total_bytes": mem.total_bytes as f64,
        "system/mem_free_bytes": mem.free_bytes as f64,
        "system/load_1min": resources_detect::load_1min(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
    }
}
