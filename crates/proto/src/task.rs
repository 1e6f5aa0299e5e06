//! Tasks: `TaskInfo` as frameworks send it, `TaskState` and `TaskStatus` as updates carry them
//! (mesos-http-api.md 8.4 and 8.5).

use crate::ids::*;
use crate::resources::Resource;
use crate::serde_util;
use crate::{DurationInfo, Labels};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    TaskStaging,
    TaskStarting,
    TaskRunning,
    TaskKilling,
    TaskFinished,
    TaskFailed,
    TaskKilled,
    TaskError,
    TaskLost,
    TaskDropped,
    TaskUnreachable,
    TaskGone,
    TaskGoneByOperator,
    TaskUnknown,
}

impl TaskState {
    /// Terminal states as the master treats them (mesos-http-api.md 8.5). `TASK_LOST` counts as
    /// terminal for bookkeeping, though a partition may later bring the task back.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }

    /// The name as JSON writes it, e.g. `TASK_RUNNING`.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskGoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
        }
    }

    /// The lower-case suffix used in metric names: `master/tasks_running`.
    pub fn metric_suffix(self) -> &'static str {
        &self.name()["TASK_".len()..]
    }

    pub const ALL: [TaskState; 14] = [
        TaskState::TaskStaging,
        TaskState::TaskStarting,
        TaskState::TaskRunning,
        TaskState::TaskKilling,
        TaskState::TaskFinished,
        TaskState::TaskFailed,
        TaskState::TaskKilled,
        TaskState::TaskError,
        TaskState::TaskLost,
        TaskState::TaskDropped,
        TaskState::TaskUnreachable,
        TaskState::TaskGone,
        TaskState::TaskGoneByOperator,
        TaskState::TaskUnknown,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusSource {
    SourceMaster,
    SourceAgent,
    SourceExecutor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<StatusSource>,
    /// `REASON_*`; kept as text because the set grows with every Mesos release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serde_util::lenient_opt_f64"
    )]
    pub timestamp: Option<f64>,
    /// Base64; present only on reliable updates, which must be acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_time: Option<DurationInfo>,
}

impl TaskStatus {
    pub fn new(task_id: TaskId, state: TaskState) -> Self {
        TaskStatus {
            task_id,
            state,
            message: None,
            source: None,
            reason: None,
            data: None,
            agent_id: None,
            executor_id: None,
            timestamp: None,
            uuid: None,
            healthy: None,
            labels: None,
            container_status: None,
            unreachable_time: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// `true` runs `value` through `/bin/sh -c`; `false` runs `value` with `arguments` as argv.
    #[serde(
        default = "default_true",
        deserialize_with = "serde_util::lenient_bool"
    )]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KillPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    pub executor_id: ExecutorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    /// A Mesos `HealthCheck`, kept as sent (read it with `TaskInfo::typed_health_check`, which
    /// validates it; see `crate::health_check` for why it stays raw JSON here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Value>,
}

impl TaskInfo {
    /// The task's health check, typed and validated; `None` when it has none.
    pub fn typed_health_check(
        &self,
    ) -> Option<Result<crate::HealthCheck, crate::HealthCheckError>> {
        self.health_check
            .as_ref()
            .map(crate::HealthCheck::from_json)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskGroupInfo {
    #[serde(default)]
    pub tasks: Vec<TaskInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_use_mesos_names() {
        assert_eq!(
            serde_json::to_string(&TaskState::TaskGoneByOperator).unwrap(),
            "\"TASK_GONE_BY_OPERATOR\""
        );
        assert_eq!(TaskState::TaskRunning.metric_suffix(), "RUNNING");
        for s in TaskState::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json.trim_matches('"'), s.name());
        }
    }

    #[test]
    fn command_info_defaults_to_shell() {
        let c: CommandInfo = serde_json::from_str(r#"{"value":"echo hello"}"#).unwrap();
        assert!(c.shell);
        let c: CommandInfo = serde_json::from_str(
            r#"{"value":"/bin/echo","shell":"false","arguments":["echo","x"]}"#,
        )
        .unwrap();
        assert!(!c.shell);
    }
}
