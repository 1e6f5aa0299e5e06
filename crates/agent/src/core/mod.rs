//! The agent's task and status-update state machine, with no I/O.
//!
//! What: frameworks and their tasks (live and completed), the reliable update stream of every task
//! (`stream.rs`), and the rules that turn master messages and process events into status updates.
//! Each event is a method that takes `now` and returns `Effect`s (launch a process, kill one, send
//! an update); the driver performs them and reports back (`spawned`, `exited`, ...).
//!
//! Why: the rules about which update goes out when, and what survives a disconnection, are the part
//! most worth testing, and they are testable without processes, sockets or a clock.
//!
//! Checkpoints: every decision that must survive an agent restart (a task accepted, an update
//! produced, an acknowledgement, a kill asked for) is also recorded as a `CheckpointOp` in the
//! core's journal; the driver drains it after each step and makes it durable before performing the
//! step's effects. `recover.rs` rebuilds the core from what was checkpointed.
//!
//! Architecture invariant: this module reads no clock, spawns nothing and sends nothing; the only
//! outside input besides events is the uuid source given to `Core::new`.

mod executor_endings; // how custom executors and their tasks end
mod executor_recovery; // custom executors after a restart
#[cfg(test)]
mod executor_tests;
mod executors; // custom executors (mesos-http-api.md section 9)
mod health; // health checks of command tasks (`Core::health_*`)
mod health_rules;
mod limitation; // isolation: `Core::limited`
mod model;
mod queries;
mod recover;
pub mod stream;
#[cfg(test)]
mod tests;

use crate::checkpoint::layout;
use crate::flags::DEFAULT_KILL_GRACE;
use crate::sandbox;
use base64::Engine;
pub use executor_recovery::RecoveredExecutor;
pub use executors::{process_task, ExecutorCallError};
pub use health::HealthProbe;
pub use model::*;
use proto::agent_protocol::StatusUpdate;
use proto::{
    AgentId, ContainerId, ExecutorId, FrameworkId, FrameworkInfo, KillPolicy, MasterInfo,
    StatusSource, TaskId, TaskInfo, TaskState, TaskStatus,
};
pub use recover::{forked_of, RecoveredRun, RecoveredTask};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
pub use stream::{AckOutcome, UpdateStream};

pub struct Core {
    work_dir: PathBuf,
    /// `<work_dir>/meta`, where checkpoints go.
    meta: PathBuf,
    /// Checkpoints decided and not yet drained by the driver, in order.
    journal: Vec<CheckpointOp>,
    shutdown_grace: Duration,
    agent_id: Option<AgentId>,
    connected: bool,
    master: Option<MasterInfo>,
    frameworks: BTreeMap<FrameworkId, Framework>,
    completed_frameworks: VecDeque<Framework>,
    streams: BTreeMap<(FrameworkId, TaskId), UpdateStream>,
    terminal_counts: BTreeMap<TaskState, u64>,
    new_uuid: Box<dyn FnMut() -> uuid::Uuid + Send>,
    /// Custom executors: their timeouts, and the AgentInfo they receive in SUBSCRIBED.
    executor_config: ExecutorConfig,
    agent_info: Option<proto::agent_protocol::AgentInfo>,
    /// Health checking of running command tasks (`health.rs`); `health_rescan` until the first
    /// `health_tick` has adopted the tasks recovered running.
    health: BTreeMap<(FrameworkId, TaskId), health::HealthEntry>,
    health_rescan: bool,
}

impl Core {
    pub fn new(
        work_dir: PathBuf,
        shutdown_grace: Duration,
        new_uuid: Box<dyn FnMut() -> uuid::Uuid + Send>,
    ) -> Self {
        Core {
            meta: layout::meta_dir(&work_dir),
            journal: Vec::new(),
            work_dir,
            shutdown_grace,
            agent_id: None,
            connected: false,
            master: None,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            streams: BTreeMap::new(),
            terminal_counts: BTreeMap::new(),
            new_uuid,
            executor_config: ExecutorConfig::default(),
            agent_info: None,
            health: BTreeMap::new(),
            health_rescan: true,
        }
    }

    /// Checkpoints recorded since the last call, oldest first; they must be durable before the
    /// effects returned alongside them are performed.
    pub fn drain_checkpoints(&mut self) -> Vec<CheckpointOp> {
        std::mem::take(&mut self.journal)
    }

    // ---- connection ----

    /// The master accepted this agent: every task's head update goes out now.
    pub fn registered(&mut self, now: Now, agent_id: AgentId, master: MasterInfo) -> Vec<Effect> {
        match &self.agent_id {
            Some(old) if *old == agent_id => {}
            Some(old) => {
                tracing::warn!(%old, new = %agent_id, "the master gave this agent a new id");
                self.journal.push(CheckpointOp::Agent {
                    agent_id: agent_id.clone(),
                });
            }
            None => self.journal.push(CheckpointOp::Agent {
                agent_id: agent_id.clone(),
            }),
        }
        self.agent_id = Some(agent_id);
        self.master = Some(master);
        self.connected = true;
        let mut effects = Vec::new();
        for ((framework_id, _), stream) in self.streams.iter_mut() {
            if let Some(status) = stream.flush(now.at) {
                effects.push(send(framework_id, status));
            }
        }
        effects
    }

    /// The stream to the master broke: updates queue until the next registration.
    pub fn disconnected(&mut self) {
        self.connected = false;
        for stream in self.streams.values_mut() {
            stream.pause();
        }
    }

    /// Resends heads whose retry time has come; ends executors whose deadlines passed; runs the
    /// health checks that are due.
    pub fn tick(&mut self, now: Now) -> Vec<Effect> {
        let mut effects = self.executor_tick(now);
        // Health checks run whether or not the master is reachable (their updates queue).
        effects.extend(self.health_tick(now));
        if !self.connected {
            return effects;
        }
        for ((framework_id, _), stream) in self.streams.iter_mut() {
            if let Some(status) = stream.resend_due(now.at) {
                effects.push(send(framework_id, status));
            }
        }
        effects
    }

    /// Earliest pending resend, if any.
    #[cfg(test)]
    pub fn next_retry(&self) -> Option<std::time::Instant> {
        self.streams
            .values()
            .filter_map(UpdateStream::next_due)
            .min()
    }

    // ---- master messages ----

    pub fn run_task(&mut self, now: Now, framework: FrameworkInfo, task: TaskInfo) -> Vec<Effect> {
        let Some(framework_id) = framework.id.clone() else {
            tracing::error!(task = %task.task_id, "RUN_TASK without a framework id; dropped");
            return Vec::new();
        };
        let Some(agent_id) = self.agent_id.clone() else {
            tracing::error!(task = %task.task_id, "RUN_TASK before registration; dropped");
            return Vec::new();
        };
        let task_id = task.task_id.clone();
        if !sandbox::is_safe_component(&framework_id.value) {
            let message =
                format!("Framework ID '{framework_id}' cannot be used as a directory name");
            return self.reject(now, &framework_id, &task_id, message);
        }
        self.ensure_framework(&framework_id, framework);
        let running = self
            .task(&framework_id, &task_id)
            .map(|t| !t.state.is_terminal());
        if running == Some(true) {
            let message = format!("Task '{task_id}' is already running on this agent");
            return self.reject(now, &framework_id, &task_id, message);
        }
        if let Err(message) = validate(&task) {
            let effects = self.reject(now, &framework_id, &task_id, message);
            self.complete_framework_if_idle(&framework_id);
            return effects;
        }
        if running == Some(false) {
            // An earlier run of the same id ended; it becomes history even if updates are pending.
            self.archive(&framework_id, &task_id);
        }
        if task.executor.is_some() {
            return self.run_executor_task(now, &framework_id, &agent_id, task);
        }
        let container_id = ContainerId::new((self.new_uuid)().to_string());
        let sandbox = sandbox::run_dir(
            &self.work_dir,
            &agent_id.value,
            &framework_id.value,
            &task_id.value,
            &container_id.value,
        );
        let checkpoint_dir = layout::run_dir(
            &self.meta,
            &agent_id.value,
            &framework_id.value,
            &task_id.value,
            &container_id.value,
        );
        self.admit_task(
            &framework_id,
            &task,
            &container_id,
            &sandbox,
            &checkpoint_dir,
        );
        let mut effects = Vec::new();
        let starting = self.status(
            now,
            &task_id,
            TaskState::TaskStarting,
            StatusSource::SourceExecutor,
        );
        effects.extend(self.update_task(now, &framework_id, starting));
        effects.push(Effect::Launch(Box::new(LaunchSpec {
            framework_id,
            agent_id,
            task,
            container_id,
            sandbox,
            checkpoint_dir,
        })));
        effects
    }

    /// A task accepted here, for a command task or a custom executor alike: its `task.info` is
    /// journaled (durable before any effect of the step) and it joins its framework as STAGING.
    pub(crate) fn admit_task(
        &mut self,
        framework_id: &FrameworkId,
        task: &TaskInfo,
        container_id: &ContainerId,
        sandbox: &std::path::Path,
        checkpoint_dir: &std::path::Path,
    ) {
        self.journal.push(CheckpointOp::Task {
            run_dir: checkpoint_dir.to_path_buf(),
            framework_id: framework_id.clone(),
            task: task.clone(),
            container_id: container_id.clone(),
            sandbox: sandbox.to_path_buf(),
        });
        let entry = Task {
            framework_id: framework_id.clone(),
            info: task.clone(),
            container_id: container_id.clone(),
            sandbox: sandbox.to_path_buf(),
            checkpoint_dir: checkpoint_dir.to_path_buf(),
            state: TaskState::TaskStaging,
            statuses: Vec::new(),
            process: Process::Launching,
            forked: None,
            kill_grace: None,
        };
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.tasks.insert(task.task_id.clone(), entry);
        }
    }

    pub fn kill_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        policy: Option<&KillPolicy>,
    ) -> Vec<Effect> {
        let Some(task) = self.task(framework_id, task_id) else {
            tracing::warn!(%framework_id, %task_id, "KILL_TASK for a task this agent does not run; ignored");
            return Vec::new();
        };
        if task.custom_executor().is_some() {
            return self.kill_executor_task(now, framework_id, task_id, policy);
        }
        // The kill call's policy overrides the task's (Mesos KillPolicy semantics).
        let grace = policy_grace(policy)
            .or_else(|| policy_grace(task.info.kill_policy.as_ref()))
            .unwrap_or(DEFAULT_KILL_GRACE);
        self.kill(now, framework_id, task_id, grace)
    }

    /// Kills every task of the framework; it moves to the completed frameworks once they are done.
    pub fn shutdown_framework(&mut self, now: Now, framework_id: &FrameworkId) -> Vec<Effect> {
        let Some(framework) = self.frameworks.get(framework_id) else {
            tracing::info!(%framework_id, "SHUTDOWN_FRAMEWORK for a framework without tasks here");
            return Vec::new();
        };
        let task_ids: Vec<TaskId> = framework
            .tasks
            .values()
            .filter(|t| t.custom_executor().is_none())
            .map(|t| t.info.task_id.clone())
            .collect();
        let mut effects = Vec::new();
        for task_id in task_ids {
            effects.extend(self.kill_for_shutdown(now, framework_id, &task_id));
        }
        effects.extend(self.shutdown_executors(now, framework_id));
        self.complete_framework_if_idle(framework_id);
        effects
    }

    /// Kills every task (the master's SHUTDOWN), each with its own grace bounded by
    /// `--executor_shutdown_grace_period`.
    pub fn shutdown_all(&mut self, now: Now) -> Vec<Effect> {
        let keys: Vec<(FrameworkId, TaskId)> = self
            .frameworks
            .values()
            .flat_map(|f| {
                f.tasks
                    .values()
                    .filter(|t| t.custom_executor().is_none())
                    .map(|t| (f.id.clone(), t.info.task_id.clone()))
            })
            .collect();
        let mut effects: Vec<Effect> = keys
            .into_iter()
            .flat_map(|(f, t)| self.kill_for_shutdown(now, &f, &t))
            .collect();
        let framework_ids: Vec<FrameworkId> = self.frameworks.keys().cloned().collect();
        for framework_id in framework_ids {
            effects.extend(self.shutdown_executors(now, &framework_id));
        }
        effects
    }

    pub fn acknowledge(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        uuid: &str,
    ) -> Vec<Effect> {
        let key = (framework_id.clone(), task_id.clone());
        let connected = self.connected;
        let Some(stream) = self.streams.get_mut(&key) else {
            tracing::debug!(%framework_id, %task_id, uuid, "acknowledgement for a task with no pending updates");
            return Vec::new();
        };
        let mut effects = Vec::new();
        let head_source = stream
            .head()
            .filter(|s| s.uuid.as_deref() == Some(uuid))
            .and_then(|s| s.source);
        let outcome = stream.acknowledge(uuid, now.at, connected);
        let drained = stream.is_empty();
        match outcome {
            AckOutcome::Ignored => {
                tracing::debug!(%framework_id, %task_id, uuid, "acknowledgement of an update not in flight; ignored");
            }
            AckOutcome::Acked { send: next } => {
                if let Some(task) = self
                    .frameworks
                    .get(framework_id)
                    .and_then(|f| f.tasks.get(task_id))
                {
                    self.journal.push(CheckpointOp::Update {
                        run_dir: task.checkpoint_dir.clone(),
                        task_id: task_id.clone(),
                        record: UpdateRecord::Ack {
                            uuid: uuid.to_string(),
                        },
                    });
                }
                if let Some(status) = next {
                    effects.push(send(framework_id, status));
                }
                // The executor may forget an update of its own once the master has it.
                if head_source == Some(StatusSource::SourceExecutor) {
                    effects.extend(self.executor_acknowledged(framework_id, task_id, uuid));
                }
            }
        }
        if drained {
            self.streams.remove(&key);
            self.complete_if_done(framework_id, task_id);
        }
        effects
    }

    /// Resends the latest status of the given tasks (all of the framework's when empty). A task
    /// with updates in flight gets its head resent; otherwise its latest status goes out again as
    /// a new reliable update.
    pub fn reconcile(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_ids: &[TaskId],
    ) -> Vec<Effect> {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Vec::new();
        };
        let selected: Vec<TaskId> = framework
            .tasks
            .keys()
            .filter(|id| task_ids.is_empty() || task_ids.contains(id))
            .cloned()
            .collect();
        let mut effects = Vec::new();
        for task_id in selected {
            let key = (framework_id.clone(), task_id.clone());
            if let Some(stream) = self.streams.get_mut(&key) {
                if self.connected {
                    if let Some(status) = stream.flush(now.at) {
                        effects.push(send(framework_id, status));
                    }
                }
                continue;
            }
            let Some(latest) = self
                .task(framework_id, &task_id)
                .and_then(|t| t.statuses.last().cloned())
            else {
                continue;
            };
            let mut again = latest;
            again.uuid = Some(self.encoded_uuid());
            again.timestamp = Some(now.wall);
            effects.extend(self.enqueue(now, framework_id, again, true));
        }
        effects
    }

    // ---- process events ----

    pub fn spawned(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        pid: u32,
    ) -> Vec<Effect> {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        task.process = Process::Running { pid };
        if let Some(grace) = task.kill_grace {
            return vec![Effect::Kill {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                grace,
            }];
        }
        let container_id = task.container_id.clone();
        let mut running = self.status(
            now,
            task_id,
            TaskState::TaskRunning,
            StatusSource::SourceExecutor,
        );
        running.container_status = Some(serde_json::json!({
            "container_id": {"value": container_id.value},
            "executor_pid": pid,
        }));
        let effects = self.update_task(now, framework_id, running);
        self.health_started(now, framework_id, task_id);
        effects
    }

    pub fn spawn_failed(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        error: &str,
    ) -> Vec<Effect> {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        task.process = Process::Exited;
        // Killed while its launch was prepared (its fetch aborted, or failing anyway): what the
        // framework asked for happened, as Mesos reports a kill during launch.
        let killed = task.kill_grace.is_some();
        let (state, message, reason) = if killed {
            (
                TaskState::TaskKilled,
                format!("Killed before its command started: {error}"),
                REASON_TASK_KILLED_DURING_LAUNCH,
            )
        } else {
            (
                TaskState::TaskFailed,
                format!("Failed to launch container: {error}"),
                REASON_CONTAINER_LAUNCH_FAILED,
            )
        };
        let mut failed = self.status(now, task_id, state, StatusSource::SourceAgent);
        failed.message = Some(message);
        failed.reason = Some(reason.to_string());
        let effects = self.update_task(now, framework_id, failed);
        self.complete_if_done(framework_id, task_id);
        effects
    }

    pub fn exited(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        exit: Exit,
    ) -> Vec<Effect> {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        task.process = Process::Exited;
        if task.state.is_terminal() {
            return Vec::new();
        }
        let killed = task.kill_grace.is_some();
        let message = match exit {
            Exit::Code(code) => format!("Command exited with status {code}"),
            Exit::Signal(signal) => {
                format!("Command terminated with signal {}", signal_name(signal))
            }
        };
        let (state, reason) = match exit {
            _ if killed => (TaskState::TaskKilled, None),
            Exit::Code(0) => (TaskState::TaskFinished, None),
            _ => (TaskState::TaskFailed, Some(REASON_COMMAND_EXECUTOR_FAILED)),
        };
        let mut status = self.status(now, task_id, state, StatusSource::SourceExecutor);
        status.message = Some(message);
        status.reason = reason.map(str::to_string);
        self.health_terminal(framework_id, &mut status);
        let effects = self.update_task(now, framework_id, status);
        self.complete_if_done(framework_id, task_id);
        effects
    }

    // ---- internals ----

    fn task_mut(&mut self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&mut Task> {
        self.frameworks
            .get_mut(framework_id)?
            .tasks
            .get_mut(task_id)
    }

    fn encoded_uuid(&mut self) -> String {
        base64::engine::general_purpose::STANDARD.encode((self.new_uuid)().as_bytes())
    }

    fn status(
        &mut self,
        now: Now,
        task_id: &TaskId,
        state: TaskState,
        source: StatusSource,
    ) -> TaskStatus {
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.source = Some(source);
        status.agent_id = self.agent_id.clone();
        status.executor_id = Some(ExecutorId::new(task_id.value.clone()));
        status.timestamp = Some(now.wall);
        status.uuid = Some(self.encoded_uuid());
        status
    }

    /// Records `status` as the task's new state and queues it.
    fn update_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        status: TaskStatus,
    ) -> Vec<Effect> {
        if let Some(task) = self.task_mut(framework_id, &status.task_id) {
            task.state = status.state;
            if task.statuses.len() >= TASK_STATUSES_MAX {
                task.statuses.remove(0);
            }
            task.statuses.push(status.clone());
            if status.state.is_terminal() {
                *self.terminal_counts.entry(status.state).or_insert(0) += 1;
            }
        }
        self.enqueue(now, framework_id, status, false)
    }

    /// Queues a reliable update; for a tracked task it is checkpointed first.
    fn enqueue(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        status: TaskStatus,
        reconciliation: bool,
    ) -> Vec<Effect> {
        if let Some(run_dir) = self
            .task(framework_id, &status.task_id)
            .map(|t| t.checkpoint_dir.clone())
        {
            self.journal.push(CheckpointOp::Update {
                run_dir,
                task_id: status.task_id.clone(),
                record: UpdateRecord::Update {
                    status: status.clone(),
                    reconciliation,
                },
            });
        }
        let key = (framework_id.clone(), status.task_id.clone());
        let connected = self.connected;
        let stream = self.streams.entry(key).or_default();
        stream
            .push(status, now.at, connected)
            .map(|s| send(framework_id, s))
            .into_iter()
            .collect()
    }

    /// TASK_ERROR for a task that will not run; the task itself is not tracked.
    fn reject(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        message: String,
    ) -> Vec<Effect> {
        tracing::warn!(%framework_id, %task_id, %message, "task refused");
        let mut error = self.status(
            now,
            task_id,
            TaskState::TaskError,
            StatusSource::SourceAgent,
        );
        error.message = Some(message);
        error.reason = Some(REASON_TASK_INVALID.to_string());
        *self
            .terminal_counts
            .entry(TaskState::TaskError)
            .or_insert(0) += 1;
        self.enqueue(now, framework_id, error, false)
    }

    fn kill(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        grace: Duration,
    ) -> Vec<Effect> {
        let killing_capable = self
            .frameworks
            .get(framework_id)
            .map(|f| f.info.has_capability("TASK_KILLING_STATE"))
            .unwrap_or(false);
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        if task.state.is_terminal() || task.process == Process::Exited {
            return Vec::new();
        }
        let first_kill = task.kill_grace.is_none();
        let grace = task.kill_grace.map_or(grace, |g| g.min(grace));
        let changed = task.kill_grace != Some(grace);
        task.kill_grace = Some(grace);
        let process = task.process;
        let state = task.state;
        let run_dir = task.checkpoint_dir.clone();
        if changed {
            let record = UpdateRecord::Kill {
                grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            };
            self.journal.push(CheckpointOp::Update {
                run_dir,
                task_id: task_id.clone(),
                record,
            });
        }
        let mut effects = Vec::new();
        if first_kill
            && killing_capable
            && matches!(state, TaskState::TaskStarting | TaskState::TaskRunning)
        {
            let killing = self.status(
                now,
                task_id,
                TaskState::TaskKilling,
                StatusSource::SourceExecutor,
            );
            effects.extend(self.update_task(now, framework_id, killing));
        }
        match process {
            Process::Running { .. } => effects.push(Effect::Kill {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                grace,
            }),
            // A task still launching is killed as soon as `spawned` reports it; a fetch in
            // progress is stopped now (`spawn_failed` then reports the task killed).
            Process::Launching if first_kill => effects.push(Effect::AbortLaunch {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
            }),
            Process::Launching | Process::Exited => {}
        }
        effects
    }

    fn kill_for_shutdown(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Vec<Effect> {
        let Some(task) = self.task(framework_id, task_id) else {
            return Vec::new();
        };
        let grace = policy_grace(task.info.kill_policy.as_ref())
            .unwrap_or(DEFAULT_KILL_GRACE)
            .min(self.shutdown_grace);
        self.kill(now, framework_id, task_id, grace)
    }

    fn ensure_framework(&mut self, framework_id: &FrameworkId, info: FrameworkInfo) {
        if let Some(f) = self.frameworks.get_mut(framework_id) {
            if f.info != info {
                f.info = info.clone();
                self.checkpoint_framework(framework_id, info);
            }
            return;
        }
        self.checkpoint_framework(framework_id, info.clone());
        // A framework that had completed comes back with its history.
        let revived = self
            .completed_frameworks
            .iter()
            .position(|f| f.id == *framework_id)
            .and_then(|i| self.completed_frameworks.remove(i));
        let mut framework =
            revived.unwrap_or_else(|| Framework::new(framework_id.clone(), info.clone()));
        framework.info = info;
        self.frameworks.insert(framework_id.clone(), framework);
    }

    /// Moves a task to the completed list once it is terminal, its process is gone and every update
    /// was acknowledged; a framework with no live task left moves to the completed frameworks.
    fn complete_if_done(&mut self, framework_id: &FrameworkId, task_id: &TaskId) {
        let key = (framework_id.clone(), task_id.clone());
        if self.streams.get(&key).is_some_and(|s| !s.is_empty()) {
            return;
        }
        let done = self
            .task(framework_id, task_id)
            .is_some_and(|t| t.state.is_terminal() && t.process == Process::Exited);
        if done {
            self.archive(framework_id, task_id);
            self.complete_framework_if_idle(framework_id);
        }
    }

    fn checkpoint_framework(&mut self, framework_id: &FrameworkId, info: FrameworkInfo) {
        if let Some(agent_id) = self.agent_id.clone() {
            self.journal.push(CheckpointOp::Framework {
                agent_id,
                framework_id: framework_id.clone(),
                info,
            });
        }
    }

    /// Moves a task to its framework's history; its checkpoints go (a run archived with updates
    /// still pending, replaced by a new run of the same id, keeps them in memory only).
    fn archive(&mut self, framework_id: &FrameworkId, task_id: &TaskId) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(task) = framework.tasks.remove(task_id) {
            self.journal.push(CheckpointOp::RemoveRun {
                run_dir: task.checkpoint_dir.clone(),
            });
            if framework.completed.len() >= COMPLETED_EXECUTORS_PER_FRAMEWORK_MAX {
                framework.completed.pop_front();
            }
            framework.completed.push_back(task.clone());
            self.executor_task_archived(framework_id, &task);
        }
    }

    fn complete_framework_if_idle(&mut self, framework_id: &FrameworkId) {
        let idle = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.is_empty() && f.executors.is_empty());
        if !idle {
            return;
        }
        if let Some(framework) = self.frameworks.remove(framework_id) {
            if let Some(agent_id) = self.agent_id.clone() {
                self.journal.push(CheckpointOp::RemoveFramework {
                    agent_id,
                    framework_id: framework_id.clone(),
                });
            }
            if self.completed_frameworks.len() >= COMPLETED_FRAMEWORKS_MAX {
                self.completed_frameworks.pop_front();
            }
            self.completed_frameworks.push_back(framework);
        }
    }
}

fn send(framework_id: &FrameworkId, status: TaskStatus) -> Effect {
    Effect::Send(StatusUpdate {
        framework_id: framework_id.clone(),
        status,
    })
}
