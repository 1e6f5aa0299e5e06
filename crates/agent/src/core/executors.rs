//! Custom executors in the core: tasks whose TaskInfo names an `executor` (mesos-http-api.md 8.4)
//! run inside one executor process per (framework, executor id), which talks to the agent over
//! `POST /api/v1/executor` (section 9). Still no I/O and no clock.
//!
//! Rules:
//! - The first task for an executor starts it (`Effect::LaunchExecutor`, checkpointed as
//!   `executor.info` first) and is queued (TASK_STAGING, `queued_tasks` in `/state`); queued tasks
//!   go out as LAUNCH events when it subscribes, later tasks at once.
//! - It must subscribe within `--executor_registration_timeout`, or it is killed and its tasks
//!   become TASK_FAILED (`REASON_EXECUTOR_REGISTRATION_TIMEOUT`). After an agent restart a
//!   recovered executor must subscribe again within `--executor_reregistration_timeout`, or it is
//!   killed and its tasks become TASK_LOST / TASK_GONE (`REASON_EXECUTOR_REREGISTRATION_TIMEOUT`,
//!   replicated-log.md 8, step 3).
//! - A SUBSCRIBE that carries `unacknowledged_updates` replays them; a task delivered earlier that
//!   is still TASK_STAGING and missing from its `unacknowledged_tasks` never reached it and becomes
//!   TASK_LOST / TASK_DROPPED (`REASON_AGENT_RESTARTED`; `executor_recovery.rs`).
//! - Its UPDATEs join the task's reliable update stream unchanged (its own uuid), so they are
//!   checkpointed and resent like the agent's own; when the master acknowledges one, the executor
//!   gets ACKNOWLEDGED.
//! - KILL of a delivered task goes to the executor; of a queued one, the task is TASK_KILLED at once.
//! - Framework shutdown: SHUTDOWN to the executor, its process group killed after its shutdown
//!   grace period (`kill_at`, checked by `tick`). Shutdown, the timeouts and the end of tasks and
//!   executors are in `executor_endings.rs`.
//! - When its process ends, every unfinished task of it becomes TASK_FAILED
//!   (`REASON_EXECUTOR_TERMINATED`; TASK_KILLED if the agent was shutting it down) and the master
//!   hears of the exit (`Effect::ExecutorExited`, a FAILURE event for the framework).
//!
//! Tasks of an executor live in `Framework::tasks` like command tasks (their `process` stays
//! `Launching` until they are terminal, then `Exited`: the process is the executor's, tracked
//! here); their checkpoints sit under the executor's run (`runs/<container>/tasks/<task>/`).

use super::*;
use proto::agent_protocol::AgentInfo;
use proto::executor::{Event, Subscribe, Subscribed};
use proto::ExecutorInfo;
use std::collections::BTreeSet;

/// Ended executors kept per framework for `/state`.
pub(super) const COMPLETED_CUSTOM_EXECUTORS_MAX: usize = 50;
/// How long a checkpointing executor keeps trying to reach a restarted agent (Mesos' default).
const EXECUTOR_RECOVERY_TIMEOUT: &str = "15mins";
/// Longest backoff between its subscription attempts (Mesos' default).
const EXECUTOR_SUBSCRIPTION_BACKOFF_MAX: &str = "2secs";

/// Why an executor call was refused (the HTTP layer turns each into a status code).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecutorCallError {
    #[error("Framework '{0}' is not known on this agent")]
    UnknownFramework(FrameworkId),
    #[error("Executor '{executor_id}' of framework '{framework_id}' is not known on this agent")]
    UnknownExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
    },
    #[error("Executor '{0}' is not subscribed")]
    NotSubscribed(ExecutorId),
    #[error("Executor '{0}' is shutting down")]
    Terminating(ExecutorId),
    #[error("Task '{task_id}' is not a task of executor '{executor_id}' on this agent")]
    UnknownTask {
        task_id: TaskId,
        executor_id: ExecutorId,
    },
    #[error("{0}")]
    BadUpdate(String),
}

/// Why a task's `executor` cannot run here, as the TASK_ERROR message says it.
pub(super) fn validate_executor(task_id: &str, executor: &ExecutorInfo) -> Result<(), String> {
    let id = &executor.executor_id.value;
    if !sandbox::is_safe_component(id) {
        return Err(format!(
            "Executor ID '{id}' cannot be used as a directory name"
        ));
    }
    if executor.kind.as_deref() == Some("DEFAULT") {
        return Err(format!(
            "Task '{task_id}' names the DEFAULT executor '{id}', which runs only task groups here"
        ));
    }
    match executor
        .command
        .as_ref()
        .and_then(|c| c.value.as_deref())
        .map(str::trim)
    {
        None | Some("") => Err(format!(
            "The executor '{id}' of task '{task_id}' has no 'command' with a 'value'"
        )),
        Some(_) => Ok(()),
    }
}

/// The raw wait status of an exit, as Mesos reports executor exits (FAILURE `status`).
pub fn wait_status(exit: Exit) -> i32 {
    match exit {
        Exit::Code(code) => (code & 0xff) << 8,
        Exit::Signal(signal) => signal & 0x7f,
    }
}

impl Core {
    pub fn set_executor_config(&mut self, config: ExecutorConfig) {
        self.executor_config = config;
    }

    /// The AgentInfo executors receive in SUBSCRIBED (the id is filled in from registration).
    pub fn set_agent_info(&mut self, info: AgentInfo) {
        self.agent_info = Some(info);
    }

    pub fn executor(
        &self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Option<&Executor> {
        self.frameworks
            .get(framework_id)?
            .executors
            .get(executor_id)
    }

    pub(super) fn executor_mut(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(framework_id)?
            .executors
            .get_mut(executor_id)
    }

    /// Live executors (their process not seen to end).
    pub fn live_executors(&self) -> impl Iterator<Item = &Executor> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter(|e| e.process != Process::Exited)
    }

    /// A task for a custom executor (validated, framework known): starts the executor if needed,
    /// then queues the task or delivers it.
    pub(super) fn run_executor_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task: TaskInfo,
    ) -> Vec<Effect> {
        let Some(info) = task.executor.clone() else {
            return Vec::new();
        };
        let executor_id = info.executor_id.clone();
        let task_id = task.task_id.clone();
        let mut effects = Vec::new();
        match self.executor(framework_id, &executor_id) {
            Some(executor)
                if executor.terminating.is_some() || executor.process == Process::Exited =>
            {
                let message = format!(
                    "Executor '{executor_id}' is shutting down; task '{task_id}' was not launched"
                );
                return self.reject(now, framework_id, &task_id, message);
            }
            Some(_) => {}
            None => effects.extend(self.start_executor(now, framework_id, agent_id, info)),
        }
        let Some(executor) = self.executor(framework_id, &executor_id) else {
            return effects;
        };
        let container_id = executor.container_id.clone();
        let sandbox = executor.sandbox.clone();
        let checkpoint_dir = executor
            .checkpoint_dir
            .join(layout::TASKS)
            .join(&task_id.value);
        let subscribed = executor.subscription.is_some();
        self.admit_task(
            framework_id,
            &task,
            &container_id,
            &sandbox,
            &checkpoint_dir,
        );
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return effects;
        };
        let Some(executor) = framework.executors.get_mut(&executor_id) else {
            return effects;
        };
        if subscribed {
            executor.launched.insert(task_id);
            effects.push(to_executor(framework_id, &executor_id, Event::launch(task)));
        } else {
            tracing::info!(framework = %framework_id, executor = %executor_id, task = %task_id, "task queued until its executor subscribes");
            executor.queued.push(task_id);
        }
        effects
    }

    fn start_executor(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        info: ExecutorInfo,
    ) -> Vec<Effect> {
        let executor_id = info.executor_id.clone();
        let container_id = ContainerId::new((self.new_uuid)().to_string());
        let sandbox = sandbox::run_dir(
            &self.work_dir,
            &agent_id.value,
            &framework_id.value,
            &executor_id.value,
            &container_id.value,
        );
        let executor_dir = layout::executor_dir(
            &self.meta,
            &agent_id.value,
            &framework_id.value,
            &executor_id.value,
        );
        let checkpoint_dir = layout::run_dir(
            &self.meta,
            &agent_id.value,
            &framework_id.value,
            &executor_id.value,
            &container_id.value,
        );
        let checkpoint = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.checkpoint);
        self.journal.push(CheckpointOp::Executor {
            executor_dir: executor_dir.clone(),
            run_dir: checkpoint_dir.clone(),
            framework_id: framework_id.clone(),
            info: info.clone(),
            container_id: container_id.clone(),
            sandbox: sandbox.clone(),
        });
        let grace = policy_grace_of(info.shutdown_grace_period).unwrap_or(self.shutdown_grace);
        let sandbox_text = sandbox.display().to_string();
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID".to_string(), framework_id.value.clone()),
            ("MESOS_EXECUTOR_ID".to_string(), executor_id.value.clone()),
            ("MESOS_SLAVE_ID".to_string(), agent_id.value.clone()),
            ("MESOS_DIRECTORY".to_string(), sandbox_text.clone()),
            ("MESOS_SANDBOX".to_string(), sandbox_text),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".to_string(),
                proto::format_duration_secs(grace.as_secs_f64()),
            ),
        ];
        // pymesos reads `bool(env.get('MESOS_CHECKPOINT'))`: "0" would mean yes, so unset means no.
        if checkpoint {
            env.push(("MESOS_CHECKPOINT".to_string(), "1".to_string()));
            env.push((
                "MESOS_RECOVERY_TIMEOUT".to_string(),
                EXECUTOR_RECOVERY_TIMEOUT.to_string(),
            ));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".to_string(),
                EXECUTOR_SUBSCRIPTION_BACKOFF_MAX.to_string(),
            ));
        }
        let spec = LaunchSpec {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            task: process_task(&info, agent_id),
            container_id: container_id.clone(),
            sandbox: sandbox.clone(),
            checkpoint_dir: checkpoint_dir.clone(),
        };
        let executor = Executor {
            framework_id: framework_id.clone(),
            info,
            container_id,
            sandbox,
            executor_dir,
            checkpoint_dir,
            process: Process::Launching,
            forked: None,
            subscription: None,
            ever_subscribed: false,
            queued: Vec::new(),
            launched: BTreeSet::new(),
            subscribe_by: Some(now.at + self.executor_config.registration_timeout),
            terminating: None,
            kill_at: None,
        };
        tracing::info!(framework = %framework_id, executor = %executor_id, container = %executor.container_id, "starting a custom executor");
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.executors.insert(executor_id.clone(), executor);
        }
        vec![Effect::LaunchExecutor(Box::new(ExecutorLaunch {
            spec,
            executor_id,
            env,
        }))]
    }

    // ---- the executor's process ----

    /// The launcher started the executor's process: recorded (`forked.pid`).
    pub fn executor_forked(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        forked: Forked,
    ) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        executor.forked = Some(forked);
        let run_dir = executor.checkpoint_dir.clone();
        self.journal
            .push(CheckpointOp::ExecutorForked { run_dir, forked });
    }

    /// Its process runs; one the agent already decided to end is killed now.
    pub fn executor_spawned(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        pid: u32,
    ) -> Vec<Effect> {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        executor.process = Process::Running { pid };
        match executor.terminating {
            Some(_) if executor.kill_at.is_none() || executor.subscription.is_none() => {
                vec![kill_now(framework_id, executor_id)]
            }
            _ => Vec::new(),
        }
    }

    /// Its process could not be started: its tasks fail.
    pub fn executor_spawn_failed(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        error: &str,
    ) -> Vec<Effect> {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        executor.process = Process::Exited;
        let message = format!("Failed to launch the executor's container: {error}");
        let mut effects = self.end_executor_tasks(
            now,
            framework_id,
            executor_id,
            TaskState::TaskFailed,
            REASON_CONTAINER_LAUNCH_FAILED,
            &message,
        );
        effects.extend(self.finish_executor(framework_id, executor_id));
        effects
    }

    /// Its process ended: unfinished tasks fail (or are killed, if the agent was ending it) and
    /// the master is told.
    pub fn executor_exited(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        exit: Exit,
    ) -> Vec<Effect> {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        executor.process = Process::Exited;
        executor.subscription = None;
        let state = match executor.terminating {
            Some(Termination::Shutdown) => TaskState::TaskKilled,
            _ => TaskState::TaskFailed,
        };
        let message = match exit {
            Exit::Code(code) => format!("Executor terminated: exited with status {code}"),
            Exit::Signal(signal) => format!("Executor terminated: {}", signal_name(signal)),
        };
        tracing::info!(framework = %framework_id, executor = %executor_id, %message, "custom executor ended");
        let mut effects = self.end_executor_tasks(
            now,
            framework_id,
            executor_id,
            state,
            REASON_EXECUTOR_TERMINATED,
            &message,
        );
        effects.push(Effect::ExecutorExited {
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            status: wait_status(exit),
        });
        effects.extend(self.finish_executor(framework_id, executor_id));
        effects
    }

    // ---- executor API calls ----

    /// SUBSCRIBE on connection `connection`: SUBSCRIBED, its unacknowledged updates, tasks it
    /// does not know dropped (`drop_tasks_unknown_to_executor`), then the queued tasks as LAUNCH
    /// (and KILLs asked for while it was away).
    pub fn executor_subscribe(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        connection: u64,
        subscribe: Subscribe,
    ) -> Result<Vec<Effect>, ExecutorCallError> {
        let agent_info = self.subscribed_agent_info();
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .ok_or_else(|| ExecutorCallError::UnknownFramework(framework_id.clone()))?;
        let framework_info = framework.info.clone();
        let executor = framework
            .executors
            .get_mut(executor_id)
            .filter(|e| e.process != Process::Exited)
            .ok_or_else(|| ExecutorCallError::UnknownExecutor {
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
            })?;
        if executor.terminating.is_some() {
            return Err(ExecutorCallError::Terminating(executor_id.clone()));
        }
        let resubscribed = executor.ever_subscribed;
        executor.subscription = Some(connection);
        executor.ever_subscribed = true;
        executor.subscribe_by = None;
        let queued = std::mem::take(&mut executor.queued);
        // Delivered over an earlier subscription (or before an agent restart), not by this one.
        let delivered = executor.launched.clone();
        executor.launched.extend(queued.iter().cloned());
        let subscribed = Subscribed {
            executor_info: executor.info.clone(),
            framework_info,
            agent_info,
            container_id: Some(executor.container_id.clone()),
        };
        tracing::info!(framework = %framework_id, executor = %executor_id, connection, resubscribed,
            queued = queued.len(), "executor subscribed");
        let mut effects = vec![to_executor(
            framework_id,
            executor_id,
            Event::subscribed(subscribed),
        )];
        // Updates it sent that never reached a checkpoint (the agent restarted first). Replayed
        // before the delivered tasks are checked: a task with an update here is known to it.
        for update in subscribe.unacknowledged_updates {
            let known = self.knows_update(framework_id, &update.status);
            if !known {
                match self.executor_update(now, framework_id, executor_id, update.status) {
                    Ok(more) => effects.extend(more),
                    Err(e) => {
                        tracing::warn!(error = %e, "unacknowledged update from a resubscribing executor dropped")
                    }
                }
            }
        }
        effects.extend(self.drop_tasks_unknown_to_executor(
            now,
            framework_id,
            executor_id,
            &delivered,
            &subscribe.unacknowledged_tasks,
        ));
        for task_id in &queued {
            if let Some(task) = self.task(framework_id, task_id) {
                effects.push(to_executor(
                    framework_id,
                    executor_id,
                    Event::launch(task.info.clone()),
                ));
            }
        }
        // Kills asked for while it was not connected (of tasks still its own: not ended above).
        let still_delivered = self
            .executor(framework_id, executor_id)
            .map(|e| {
                e.launched
                    .intersection(&delivered)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for task_id in &still_delivered {
            if let Some(task) = self
                .task(framework_id, task_id)
                .filter(|t| t.kill_grace.is_some() && !t.state.is_terminal())
            {
                let policy = task.info.kill_policy.clone();
                effects.push(to_executor(
                    framework_id,
                    executor_id,
                    Event::kill(task_id.clone(), policy),
                ));
            }
        }
        Ok(effects)
    }

    /// The subscription on `connection` ended (the executor's connection closed).
    pub fn executor_unsubscribed(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        connection: u64,
    ) {
        if let Some(executor) = self.executor_mut(framework_id, executor_id) {
            if executor.subscription == Some(connection) {
                tracing::info!(framework = %framework_id, executor = %executor_id, "executor disconnected");
                executor.subscription = None;
            }
        }
    }

    /// Whether MESSAGE from this executor may go to the master.
    pub fn executor_may_send(
        &self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Result<(), ExecutorCallError> {
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| ExecutorCallError::UnknownFramework(framework_id.clone()))?;
        match framework.executors.get(executor_id) {
            Some(e) if e.subscription.is_some() => Ok(()),
            Some(_) => Err(ExecutorCallError::NotSubscribed(executor_id.clone())),
            None => Err(ExecutorCallError::UnknownExecutor {
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
            }),
        }
    }

    /// UPDATE: the executor's status joins the task's reliable stream with its own uuid.
    pub fn executor_update(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        mut status: TaskStatus,
    ) -> Result<Vec<Effect>, ExecutorCallError> {
        self.executor_may_send(framework_id, executor_id)?;
        let task_id = status.task_id.clone();
        let task = self
            .task(framework_id, &task_id)
            .filter(|t| t.custom_executor() == Some(executor_id))
            .ok_or_else(|| ExecutorCallError::UnknownTask {
                task_id: task_id.clone(),
                executor_id: executor_id.clone(),
            })?;
        let uuid_ok = status
            .uuid
            .as_deref()
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
            .is_some_and(|bytes| bytes.len() == 16);
        if !uuid_ok {
            return Err(ExecutorCallError::BadUpdate(
                "Expecting 'update.status.uuid' to be the base64 of a 16-byte UUID".to_string(),
            ));
        }
        if status.state == TaskState::TaskStaging {
            return Err(ExecutorCallError::BadUpdate(
                "An executor may not send TASK_STAGING (mesos-http-api.md 8.5)".to_string(),
            ));
        }
        if task.state.is_terminal() {
            tracing::warn!(framework = %framework_id, task = %task_id, state = status.state.name(),
                "update for a task already terminal; ignored");
            return Ok(Vec::new());
        }
        if self.knows_update(framework_id, &status) {
            return Ok(Vec::new());
        }
        status.source = Some(StatusSource::SourceExecutor);
        status.agent_id = self.agent_id.clone();
        status.executor_id = Some(executor_id.clone());
        status.timestamp = status.timestamp.or(Some(now.wall));
        if let Some(executor) = self.executor_mut(framework_id, executor_id) {
            if let Some(i) = executor.queued.iter().position(|t| *t == task_id) {
                executor.queued.remove(i);
                executor.launched.insert(task_id.clone());
            }
        }
        let terminal = status.state.is_terminal();
        let effects = self.update_task(now, framework_id, status);
        if terminal {
            self.executor_task_ended(framework_id, executor_id, &task_id);
        }
        Ok(effects)
    }

    /// ACKNOWLEDGED to the task's executor, if it is subscribed.
    pub(super) fn executor_acknowledged(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        uuid: &str,
    ) -> Vec<Effect> {
        let Some(executor_id) = self
            .task(framework_id, task_id)
            .and_then(|t| t.custom_executor())
        else {
            return Vec::new();
        };
        match self.executor(framework_id, executor_id) {
            Some(e) if e.subscription.is_some() => vec![to_executor(
                framework_id,
                executor_id,
                Event::acknowledged(task_id.clone(), uuid.to_string()),
            )],
            _ => Vec::new(),
        }
    }

    /// A framework's message for its executor (best effort: dropped if it is not subscribed).
    pub fn framework_message(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        data: String,
    ) -> Vec<Effect> {
        match self.executor(framework_id, executor_id) {
            Some(e) if e.subscription.is_some() => {
                vec![to_executor(framework_id, executor_id, Event::message(data))]
            }
            _ => {
                tracing::info!(framework = %framework_id, executor = %executor_id, "framework message for an executor not subscribed here; dropped");
                Vec::new()
            }
        }
    }

    // ---- master messages and timers ----

    /// KILL of an executor's task: a queued one is TASK_KILLED at once, a delivered one is the
    /// executor's to kill.
    pub(super) fn kill_executor_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        policy: Option<&KillPolicy>,
    ) -> Vec<Effect> {
        let Some(task) = self.task(framework_id, task_id) else {
            return Vec::new();
        };
        let Some(executor_id) = task.custom_executor().cloned() else {
            return Vec::new();
        };
        if task.state.is_terminal() {
            return Vec::new();
        }
        let policy = policy.cloned().or_else(|| task.info.kill_policy.clone());
        let Some(executor) = self.executor_mut(framework_id, &executor_id) else {
            return Vec::new();
        };
        if let Some(i) = executor.queued.iter().position(|t| t == task_id) {
            executor.queued.remove(i);
            let message = "Killed before delivery to the executor".to_string();
            return self.end_task(
                now,
                framework_id,
                &executor_id,
                task_id,
                TaskState::TaskKilled,
                REASON_TASK_KILLED_DURING_LAUNCH,
                &message,
            );
        }
        let subscribed = executor.subscription.is_some();
        let grace = policy_grace(policy.as_ref()).unwrap_or(DEFAULT_KILL_GRACE);
        if let Some(task) = self.task_mut(framework_id, task_id) {
            if task.kill_grace.is_none() {
                task.kill_grace = Some(grace);
                let run_dir = task.checkpoint_dir.clone();
                self.journal.push(CheckpointOp::Update {
                    run_dir,
                    task_id: task_id.clone(),
                    record: UpdateRecord::Kill {
                        grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    },
                });
            }
        }
        if subscribed {
            vec![to_executor(
                framework_id,
                &executor_id,
                Event::kill(task_id.clone(), policy),
            )]
        } else {
            // Sent again when it subscribes (`executor_subscribe`).
            Vec::new()
        }
    }

    // ---- internals ----

    fn subscribed_agent_info(&self) -> AgentInfo {
        let mut info = self.agent_info.clone().unwrap_or_else(|| AgentInfo {
            id: None,
            hostname: String::new(),
            port: 0,
            resources: Vec::new(),
            attributes: Vec::new(),
        });
        info.id = self.agent_id.clone();
        info
    }

    /// Whether the agent already has this update (same uuid) for the task.
    fn knows_update(&self, framework_id: &FrameworkId, status: &TaskStatus) -> bool {
        let Some(uuid) = status.uuid.as_deref() else {
            return false;
        };
        let in_history = self
            .task(framework_id, &status.task_id)
            .is_some_and(|t| t.statuses.iter().any(|s| s.uuid.as_deref() == Some(uuid)));
        let pending = self
            .streams
            .get(&(framework_id.clone(), status.task_id.clone()))
            .is_some_and(|s| s.contains(uuid));
        in_history || pending
    }
}

/// The executor's process described as a command task whose id is the executor id (what the
/// launcher request and isolation limits are made from).
pub fn process_task(info: &ExecutorInfo, agent_id: &AgentId) -> TaskInfo {
    TaskInfo {
        name: info
            .name
            .clone()
            .unwrap_or_else(|| info.executor_id.value.clone()),
        task_id: TaskId::new(info.executor_id.value.clone()),
        agent_id: agent_id.clone(),
        resources: info.resources.clone(),
        command: info.command.clone(),
        executor: None,
        kill_policy: None,
        labels: info.labels.clone(),
        data: None,
        container: info.container.clone(),
        health_check: None,
        check: None,
        discovery: None,
        max_completion_time: None,
        limits: None,
    }
}

pub(super) fn to_executor(
    framework_id: &FrameworkId,
    executor_id: &ExecutorId,
    event: Event,
) -> Effect {
    Effect::SendToExecutor {
        framework_id: framework_id.clone(),
        executor_id: executor_id.clone(),
        event: Box::new(event),
    }
}

pub(super) fn kill_now(framework_id: &FrameworkId, executor_id: &ExecutorId) -> Effect {
    Effect::KillExecutor {
        framework_id: framework_id.clone(),
        executor_id: executor_id.clone(),
        grace: Duration::ZERO,
    }
}

pub(super) fn policy_grace_of(duration: Option<proto::DurationInfo>) -> Option<Duration> {
    duration.map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
}
