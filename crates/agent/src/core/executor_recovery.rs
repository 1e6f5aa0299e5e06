//! Custom executors after an agent restart (replicated-log.md 8, step 3), still without I/O.
//!
//! `recover_executors` rebuilds each checkpointed executor run (before `recover` rebuilds the
//! tasks, whose runs sit under it); the driver's recovery then settles each with the launcher like
//! a task: still running -> `executor_reattached` (it must subscribe again within
//! `--executor_reregistration_timeout`, or `tick` kills it and its tasks become TASK_LOST /
//! TASK_GONE with `REASON_EXECUTOR_REREGISTRATION_TIMEOUT`); its exit recorded ->
//! `executor_exited`; unknown -> `executor_lost` (its tasks TASK_LOST / TASK_GONE at once).
//!
//! When it subscribes again, `drop_tasks_unknown_to_executor` compares the tasks the agent
//! delivered to it with the `unacknowledged_tasks` it resends: a task the agent checkpointed and
//! meant to deliver, but that never reached the executor, is dropped instead of staying
//! TASK_STAGING forever.

use super::*;
use std::collections::BTreeSet;

/// One custom executor run as read back from its checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredExecutor {
    pub framework_id: FrameworkId,
    pub info: proto::ExecutorInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
    pub executor_dir: PathBuf,
    pub run_dir: PathBuf,
    pub forked: Option<Forked>,
}

/// An executor whose process the launcher must account for.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsettledExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub container_id: ContainerId,
    pub run_dir: PathBuf,
    pub forked: Option<Forked>,
}

impl Core {
    /// Rebuilds the checkpointed executors (call before `recover`, which rebuilds their tasks).
    pub fn recover_executors(
        &mut self,
        framework_infos: &BTreeMap<FrameworkId, FrameworkInfo>,
        executors: Vec<RecoveredExecutor>,
    ) {
        for recovered in executors {
            let framework_id = recovered.framework_id.clone();
            let executor_id = recovered.info.executor_id.clone();
            let framework = self.frameworks.entry(framework_id.clone()).or_insert_with(|| {
                let info = framework_infos.get(&framework_id).cloned().unwrap_or_else(|| {
                    tracing::error!(framework = %framework_id, "framework.info missing; recovering its executor with a placeholder");
                    FrameworkInfo {
                        id: Some(framework_id.clone()),
                        ..recover::placeholder_info()
                    }
                });
                Framework::new(framework_id.clone(), info)
            });
            if let Some(older) = framework.executors.get(&executor_id) {
                tracing::error!(framework = %framework_id, executor = %executor_id, older = %older.container_id,
                    newer = %recovered.container_id, "two runs of one executor checkpointed; settling both is not supported, keeping the later read");
            }
            framework.executors.insert(
                executor_id,
                Executor {
                    framework_id: framework_id.clone(),
                    info: recovered.info,
                    container_id: recovered.container_id,
                    sandbox: recovered.sandbox,
                    executor_dir: recovered.executor_dir,
                    checkpoint_dir: recovered.run_dir,
                    process: Process::Launching,
                    forked: recovered.forked,
                    subscription: None,
                    ever_subscribed: true,
                    queued: Vec::new(),
                    launched: BTreeSet::new(),
                    subscribe_by: None,
                    terminating: None,
                    kill_at: None,
                },
            );
        }
    }

    /// Executors whose process was not seen to end, for settling with a launcher.
    pub fn unsettled_executors(&self) -> Vec<UnsettledExecutor> {
        self.live_executors()
            .map(|e| UnsettledExecutor {
                framework_id: e.framework_id.clone(),
                executor_id: e.info.executor_id.clone(),
                container_id: e.container_id.clone(),
                run_dir: e.checkpoint_dir.clone(),
                forked: e.forked,
            })
            .collect()
    }

    /// The launcher still runs the executor: it gets `--executor_reregistration_timeout` to
    /// subscribe again (unless it is connected already).
    pub fn executor_reattached(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        pid: u32,
    ) {
        self.adopt_recovered_tasks(framework_id, executor_id);
        let timeout = self.executor_config.reregistration_timeout;
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        executor.process = Process::Running { pid };
        if executor.subscription.is_none() && executor.terminating.is_none() {
            executor.subscribe_by = Some(now.at + timeout);
        }
    }

    /// Its exit was recorded while the agent was away.
    pub fn recovered_executor_exited(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        exit: Exit,
    ) -> Vec<Effect> {
        self.adopt_recovered_tasks(framework_id, executor_id);
        self.executor_exited(now, framework_id, executor_id, exit)
    }

    /// Nobody knows what became of the executor's process: its tasks are TASK_GONE
    /// (partition-aware frameworks) or TASK_LOST, `REASON_EXECUTOR_REREGISTRATION_TIMEOUT`.
    pub fn executor_lost(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        why: &str,
    ) -> Vec<Effect> {
        self.adopt_recovered_tasks(framework_id, executor_id);
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.is_partition_aware());
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        executor.process = Process::Exited;
        let state = if partition_aware {
            TaskState::TaskGone
        } else {
            TaskState::TaskLost
        };
        let message =
            format!("The executor's process was not recovered after the agent restarted: {why}");
        let mut effects = self.end_executor_tasks(
            now,
            framework_id,
            executor_id,
            state,
            REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
            &message,
        );
        effects.extend(self.finish_executor(framework_id, executor_id));
        effects
    }

    /// The executor subscribes again and resends `unacknowledged_tasks`: the tasks it received
    /// and has sent no update for yet (mesos-http-api.md 9, SUBSCRIBE). What the agent does with
    /// them is Mesos' agent's rule, which the spec leaves implicit: of the tasks `delivered` before
    /// this subscription, one still TASK_STAGING (no update from the executor, checkpointed or in
    /// `unacknowledged_updates`, which are replayed first) that it does not list never reached it.
    /// Such a task becomes TASK_DROPPED for partition-aware frameworks, TASK_LOST for others
    /// (`REASON_AGENT_RESTARTED`, from the agent); it is not delivered again. A listed task stays
    /// launched: the agent neither ends nor re-delivers it and waits for the executor's update.
    /// Listed tasks the agent does not know as this executor's are ignored.
    pub(super) fn drop_tasks_unknown_to_executor(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        delivered: &BTreeSet<TaskId>,
        unacknowledged_tasks: &[TaskInfo],
    ) -> Vec<Effect> {
        let listed: BTreeSet<&TaskId> = unacknowledged_tasks.iter().map(|t| &t.task_id).collect();
        for task_id in &listed {
            let mine = self
                .task(framework_id, task_id)
                .is_some_and(|t| t.custom_executor() == Some(executor_id));
            if !mine {
                tracing::warn!(framework = %framework_id, executor = %executor_id, task = %task_id,
                    "the executor lists an unacknowledged task that is not its own on this agent; ignored");
            }
        }
        let unknown: Vec<TaskId> = delivered
            .iter()
            .filter(|task_id| !listed.contains(task_id))
            .filter(|task_id| {
                self.task(framework_id, task_id)
                    .is_some_and(|t| t.state == TaskState::TaskStaging)
            })
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Vec::new();
        }
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.is_partition_aware());
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        let message = format!(
            "Executor '{executor_id}' subscribed again without this task: it never received it \
             (the agent restarted or its connection broke first)"
        );
        let mut effects = Vec::new();
        for task_id in &unknown {
            tracing::warn!(framework = %framework_id, executor = %executor_id, task = %task_id,
                state = state.name(), "task unknown to the resubscribing executor");
            effects.extend(self.end_task(
                now,
                framework_id,
                executor_id,
                task_id,
                state,
                REASON_AGENT_RESTARTED,
                &message,
            ));
        }
        effects
    }

    /// The recovered non-terminal tasks of the executor's run count as delivered to it.
    fn adopt_recovered_tasks(&mut self, framework_id: &FrameworkId, executor_id: &ExecutorId) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(executor) = framework.executors.get_mut(executor_id) else {
            return;
        };
        let mine = framework
            .tasks
            .values()
            .filter(|t| t.container_id == executor.container_id && !t.state.is_terminal())
            .map(|t| t.info.task_id.clone());
        executor.launched.extend(mine);
    }
}
