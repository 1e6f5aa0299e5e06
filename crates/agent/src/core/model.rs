//! The core's data: events' payloads, effects, and what it knows about tasks and frameworks.

use crate::sandbox;
use proto::agent_protocol::StatusUpdate;
use proto::{
    AgentId, ContainerId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, KillPolicy, TaskId,
    TaskInfo, TaskState, TaskStatus,
};
use serde::{Deserialize, Serialize};
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
/// A task whose process was not found again when the agent restarted (replicated-log.md 8, step 3).
pub const REASON_EXECUTOR_REREGISTRATION_TIMEOUT: &str = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT";
/// A custom executor that did not subscribe within `--executor_registration_timeout`.
pub const REASON_EXECUTOR_REGISTRATION_TIMEOUT: &str = "REASON_EXECUTOR_REGISTRATION_TIMEOUT";
/// A custom executor's process ended while it still had tasks.
pub const REASON_EXECUTOR_TERMINATED: &str = "REASON_EXECUTOR_TERMINATED";
/// A task delivered to a custom executor that, subscribing again, did not know it (the agent
/// restarted, or the connection broke, before the executor received it).
pub const REASON_AGENT_RESTARTED: &str = "REASON_AGENT_RESTARTED";
/// A task killed before its executor ever got it.
pub const REASON_TASK_KILLED_DURING_LAUNCH: &str = "REASON_TASK_KILLED_DURING_LAUNCH";

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
    /// The run's checkpoint directory (the launcher records the pid and the exit there).
    pub checkpoint_dir: PathBuf,
}

impl LaunchSpec {
    /// The command's `uris`, for the fetcher (none without a command).
    pub fn command_uris(&self) -> Vec<serde_json::Value> {
        self.task
            .command
            .as_ref()
            .map(|c| c.uris.clone())
            .unwrap_or_default()
    }
}

/// A custom executor's process to start: `spec` describes it as if it were a command task whose
/// id is the executor id (so sandbox, launcher request and isolation work unchanged); `env` is
/// the executor's own environment (mesos-http-api.md section 9), which the driver completes with
/// the agent's address and which the CommandInfo's environment overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorLaunch {
    pub spec: LaunchSpec,
    pub executor_id: ExecutorId,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // effects live for one event
pub enum Effect {
    Launch(Box<LaunchSpec>),
    /// Start a custom executor's process (`executors.rs`).
    LaunchExecutor(Box<ExecutorLaunch>),
    /// Put this event on the executor's subscription stream (dropped if it has none).
    SendToExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        event: Box<proto::executor::Event>,
    },
    /// SIGTERM the executor's process group now, SIGKILL it after `grace` (zero: SIGKILL now).
    KillExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        grace: Duration,
    },
    /// Tell the master the executor's process ended (`status`: the raw wait status).
    ExecutorExited {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        status: i32,
    },
    /// SIGTERM the task's process group now, SIGKILL it after `grace`.
    Kill {
        framework_id: FrameworkId,
        task_id: TaskId,
        grace: Duration,
    },
    /// The task was killed while its launch is being prepared: stop fetching its URIs, so the
    /// launch fails at once instead of after the download (harmless when the fetch is over: the
    /// kill then follows `spawned`).
    AbortLaunch {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    /// Send this update to the master.
    Send(StatusUpdate),
    /// Run one health check of a task (`health.rs`); its result goes to `Core::health_result`.
    CheckHealth(Box<super::HealthProbe>),
}

/// What must be durable before the effects returned with it are carried out. The core records these
/// in order as it decides; the driver drains them (`Core::drain_checkpoints`), writes and fsyncs
/// them, and only then performs the effects of the same step.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived
pub enum CheckpointOp {
    /// This agent's id (and the AgentInfo the driver holds); `slaves/latest` points at it.
    Agent { agent_id: AgentId },
    Framework {
        agent_id: AgentId,
        framework_id: FrameworkId,
        info: FrameworkInfo,
    },
    /// A task about to be launched: `task.info` in its run directory.
    Task {
        run_dir: PathBuf,
        framework_id: FrameworkId,
        task: TaskInfo,
        container_id: ContainerId,
        sandbox: PathBuf,
    },
    /// One record appended to the task's `task.updates`.
    Update {
        run_dir: PathBuf,
        task_id: TaskId,
        record: UpdateRecord,
    },
    /// A completed run (terminal, process gone, every update acknowledged): nothing left to recover.
    RemoveRun { run_dir: PathBuf },
    /// A custom executor about to be launched: `executor.info` in `executor_dir`, its run
    /// (container, sandbox) in `run_dir` (replicated-log.md 8).
    Executor {
        executor_dir: PathBuf,
        run_dir: PathBuf,
        framework_id: FrameworkId,
        info: ExecutorInfo,
        container_id: ContainerId,
        sandbox: PathBuf,
    },
    /// The launcher started the executor's process (`runs/<container>/forked.pid`).
    ExecutorForked { run_dir: PathBuf, forked: Forked },
    /// An executor that ended, whose tasks are all archived: nothing left to recover.
    RemoveExecutor { executor_dir: PathBuf },
    /// A framework with no task left here.
    RemoveFramework {
        agent_id: AgentId,
        framework_id: FrameworkId,
    },
}

/// One record of a task's status-update stream file (`task.updates`), in the order they happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(clippy::large_enum_variant)] // most records are updates
pub enum UpdateRecord {
    /// An update the agent produced. `reconciliation`: the latest state again under a new uuid (an
    /// answer to reconciliation), not a new state of the task.
    Update {
        status: TaskStatus,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reconciliation: bool,
    },
    /// The master acknowledged the update with this uuid.
    Ack { uuid: String },
    /// A kill was asked for with this grace period (so a restarted agent reports the exit as
    /// TASK_KILLED).
    Kill { grace_ms: u64 },
    /// The launcher started the task's process (replicated-log.md 8: `forked.pid`, kept here).
    Forked {
        pid: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<u64>,
    },
}

/// A task's process as the launcher started it: its pid, and its start time (clock ticks after
/// boot, `/proc/<pid>/stat` field 22), so that a reused pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forked {
    pub pid: u32,
    pub start_time: Option<u64>,
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
    /// The run's checkpoint directory (`meta/.../runs/<container>`).
    pub checkpoint_dir: PathBuf,
    pub state: TaskState,
    pub statuses: Vec<TaskStatus>,
    pub process: Process,
    /// The process the launcher started for it, once it did.
    pub forked: Option<Forked>,
    /// Set once a kill was asked for: the grace period to use.
    pub kill_grace: Option<Duration>,
}

impl Task {
    /// The custom executor that runs this task, if it is not a command task.
    pub fn custom_executor(&self) -> Option<&ExecutorId> {
        self.info.executor.as_ref().map(|e| &e.executor_id)
    }
    /// The executor id `/state` and `/files` know the task's run by (a command task is its own).
    pub fn executor_id(&self) -> &str {
        self.custom_executor()
            .map_or(&self.info.task_id.value, |e| &e.value)
    }
}

#[derive(Debug, Clone)]
pub struct Framework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub tasks: BTreeMap<TaskId, Task>,
    pub completed: VecDeque<Task>,
    /// Custom executors (`executors.rs`), live and ended.
    pub executors: BTreeMap<ExecutorId, Executor>,
    pub completed_executors: VecDeque<Executor>,
}

impl Framework {
    pub fn new(id: FrameworkId, info: FrameworkInfo) -> Self {
        Framework {
            id,
            info,
            tasks: BTreeMap::new(),
            completed: VecDeque::new(),
            executors: BTreeMap::new(),
            completed_executors: VecDeque::new(),
        }
    }
}

/// Timeouts of custom executors (`--executor_registration_timeout`,
/// `--executor_reregistration_timeout`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutorConfig {
    pub registration_timeout: Duration,
    pub reregistration_timeout: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            registration_timeout: Duration::from_secs(60),
            reregistration_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the agent is ending an executor (decides what its unfinished tasks become).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// Framework shutdown or teardown, or the agent's SHUTDOWN: SHUTDOWN sent, kill after grace.
    Shutdown,
    /// It did not subscribe within `--executor_registration_timeout`.
    RegistrationTimeout,
    /// After an agent restart it did not subscribe again within
    /// `--executor_reregistration_timeout`.
    ReregistrationTimeout,
}

/// A custom executor: one process per (framework, executor id) running tasks it receives over its
/// `/api/v1/executor` subscription (mesos-http-api.md section 9).
#[derive(Debug, Clone)]
pub struct Executor {
    pub framework_id: FrameworkId,
    pub info: ExecutorInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
    /// `meta/.../executors/<ex>` (holds `executor.info`).
    pub executor_dir: PathBuf,
    /// `meta/.../executors/<ex>/runs/<container>` (the launcher records the exit there).
    pub checkpoint_dir: PathBuf,
    pub process: Process,
    pub forked: Option<Forked>,
    /// The connection number of its current subscription, if subscribed.
    pub subscription: Option<u64>,
    /// Whether it ever subscribed (in this agent's life or, recovered, before).
    pub ever_subscribed: bool,
    /// Tasks waiting for it to subscribe (delivered as LAUNCH then), in arrival order.
    pub queued: Vec<TaskId>,
    /// Tasks delivered to it that are not terminal yet.
    pub launched: std::collections::BTreeSet<TaskId>,
    /// When it must have subscribed by (registration, or reregistration after a restart).
    pub subscribe_by: Option<Instant>,
    /// Set once the agent decided to end it.
    pub terminating: Option<Termination>,
    /// After SHUTDOWN: when its process group is killed.
    pub kill_at: Option<Instant>,
}

/// Why a task cannot run here, as the TASK_ERROR message says it.
pub(super) fn validate(task: &TaskInfo) -> Result<(), String> {
    let id = &task.task_id.value;
    if !sandbox::is_safe_component(id) {
        return Err(format!("Task ID '{id}' cannot be used as a directory name"));
    }
    if let Some(Err(e)) = task.typed_health_check() {
        return Err(format!("Task '{id}' has an invalid health check: {e}"));
    }
    match (&task.command, &task.executor) {
        (None, Some(executor)) => super::executors::validate_executor(id, executor),
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
