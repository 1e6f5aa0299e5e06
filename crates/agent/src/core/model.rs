//! The core's data: events' payloads, effects, and what it knows about tasks and frameworks.

use crate::sandbox;
use proto::agent_protocol::StatusUpdate;
use proto::{AgentId, ContainerId, FrameworkId, FrameworkInfo, KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Completed executors (here: tasks) kept per framework for `/state` and `/files` (Mesos'
/// `--max_completed_executors_per_framework` default).
pub const COMPLETED_EXECUTORS_PER_FRAMEWORK_MAX: usize = 150;
/// Completed frameworks kept (Mesos' `MAX_COMPLETED_FRAMEWORKS`).
pub const COMPLETED_FRAMEWORKS_MAX: usize = 50;
/// Statuses kept per task for `/state`'s `statuses[]`.
pub const TASK_STATUSES_MAX: usize = 32;

pub const REASON_TASK_INVALID: &str = "REASON_TASK_INVALID";
pub const REASON_COMMAND_EXECUTOR_FAILED: &str = "REASON_COMMAND_EXECUTOR_FAILED";
pub const REASON_CONTAINER_LAUNCH_FAILED: &str = "REASON_CONTAINER_LAUNCH_FAILED";

/// The present, as the driver reads it: a monotonic instant for timers, wall seconds for timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub wall: f64,
}

/// Everything needed to start one task's process.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub task: TaskInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // effects live for one event
pub enum Effect {
    Launch(Box<LaunchSpec>),
    /// SIGTERM the task's process group now, SIGKILL it after `grace`.
    Kill {
        framework_id: FrameworkId,
        task_id: TaskId,
        grace: Duration,
    },
    /// Send this update to the master.
    Send(StatusUpdate),
}

/// How a task's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Launching,
    Running { pid: u32 },
    Exited,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub framework_id: FrameworkId,
    pub info: TaskInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
    pub state: TaskState,
    pub statuses: Vec<TaskStatus>,
    pub process: Process,
    /// Set once a kill was asked for: the grace period to use.
    pub kill_grace: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Framework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub tasks: BTreeMap<TaskId, Task>,
    pub completed: VecDeque<Task>,
}

/// Why a task cannot run here, as the TASK_ERROR message says it.
pub(super) fn validate(task: &TaskInfo) -> Result<(), String> {
    let id = &task.task_id.value;
    if !sandbox::is_safe_component(id) {
        return Err(format!("Task ID '{id}' cannot be used as a directory name"));
    }
    match (&task.command, &task.executor) {
        (None, Some(_)) => Err(format!(
            "Task '{id}' has an 'executor' but no 'command'; this agent runs only command tasks so far"
        )),
        (None, None) => Err(format!("Task '{id}' has neither 'command' nor 'executor'")),
        (Some(_), Some(_)) => Err(format!(
            "Task '{id}' has both 'command' and 'executor'; exactly one is allowed"
        )),
        (Some(command), None) => match command.value.as_deref().map(str::trim) {
            None | Some("") => Err(format!("The 'command' of task '{id}' has no 'value'")),
            Some(_) => Ok(()),
        },
    }
}

/// Text of a signal as the command executor reports it (`strsignal` wording).
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        other => return format!("signal {other}"),
    };
    name.to_string()
}

pub(super) fn policy_grace(policy: Option<&KillPolicy>) -> Option<Duration> {
    let nanos = policy?.grace_period?.nanoseconds;
    Some(Duration::from_nanos(nanos.max(0) as u64))
}
