//! How custom executors and their tasks end (mesos-http-api.md section 9; the rules are listed
//! in `executors.rs`): framework shutdown (SHUTDOWN, then the process group killed after the grace
//! period), the registration and reregistration timeouts checked by `executor_tick`, a task ending
//! with an update the agent makes, and the executor's checkpoints removed once nothing of it is
//! left. Still no I/O and no clock.

use super::executors::{kill_now, policy_grace_of, to_executor, COMPLETED_CUSTOM_EXECUTORS_MAX};
use super::*;
use proto::executor::Event;

impl Core {
    /// Ends an executor: queued tasks are TASK_KILLED at once; a subscribed executor gets SHUTDOWN
    /// and its process group is killed after its grace period; any other is killed now.
    pub fn shutdown_executor(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Vec<Effect> {
        let grace_default = self.shutdown_grace;
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        if executor.terminating.is_some() || executor.process == Process::Exited {
            return Vec::new();
        }
        executor.terminating = Some(Termination::Shutdown);
        executor.subscribe_by = None;
        let queued = std::mem::take(&mut executor.queued);
        let subscribed = executor.subscription.is_some();
        let running = matches!(executor.process, Process::Running { .. });
        let grace = policy_grace_of(executor.info.shutdown_grace_period).unwrap_or(grace_default);
        let mut effects = Vec::new();
        if subscribed {
            executor.kill_at = Some(now.at + grace);
            effects.push(to_executor(framework_id, executor_id, Event::shutdown()));
        } else if running {
            effects.push(kill_now(framework_id, executor_id));
        }
        // (Still launching: `executor_spawned` kills it.)
        for task_id in queued {
            effects.extend(self.end_task(
                now,
                framework_id,
                executor_id,
                &task_id,
                TaskState::TaskKilled,
                REASON_TASK_KILLED_DURING_LAUNCH,
                "Killed before delivery to the executor: the executor is shutting down",
            ));
        }
        effects
    }

    /// Every executor of the framework shuts down.
    pub(super) fn shutdown_executors(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
    ) -> Vec<Effect> {
        let ids: Vec<ExecutorId> = self
            .frameworks
            .get(framework_id)
            .map(|f| f.executors.keys().cloned().collect())
            .unwrap_or_default();
        ids.iter()
            .flat_map(|id| self.shutdown_executor(now, framework_id, id))
            .collect()
    }

    /// Registration deadlines and shutdown grace periods that passed.
    pub(super) fn executor_tick(&mut self, now: Now) -> Vec<Effect> {
        let mut late = Vec::new();
        let mut kill = Vec::new();
        for framework in self.frameworks.values_mut() {
            for (id, executor) in framework.executors.iter_mut() {
                if executor.process == Process::Exited {
                    continue;
                }
                let missed = executor.subscribe_by.is_some_and(|by| now.at >= by)
                    && executor.subscription.is_none();
                if missed && executor.terminating.is_none() {
                    executor.subscribe_by = None;
                    let why = if executor.ever_subscribed {
                        Termination::ReregistrationTimeout
                    } else {
                        Termination::RegistrationTimeout
                    };
                    executor.terminating = Some(why);
                    late.push((framework.id.clone(), id.clone(), why));
                    if matches!(executor.process, Process::Running { .. }) {
                        kill.push((framework.id.clone(), id.clone()));
                    }
                }
                if executor.kill_at.is_some_and(|at| now.at >= at) {
                    executor.kill_at = None;
                    tracing::warn!(framework = %framework.id, executor = %id, "executor still running after its shutdown grace period; killing it");
                    if matches!(executor.process, Process::Running { .. }) {
                        kill.push((framework.id.clone(), id.clone()));
                    }
                }
            }
        }
        let mut effects: Vec<Effect> = kill.iter().map(|(f, e)| kill_now(f, e)).collect();
        for (framework_id, executor_id, why) in late {
            let partition_aware = self
                .frameworks
                .get(&framework_id)
                .is_some_and(|f| f.info.is_partition_aware());
            let (state, reason, message) = match why {
                Termination::ReregistrationTimeout => (
                    if partition_aware {
                        TaskState::TaskGone
                    } else {
                        TaskState::TaskLost
                    },
                    REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
                    format!(
                        "Executor did not reregister within {:?} after the agent restarted",
                        self.executor_config.reregistration_timeout
                    ),
                ),
                _ => (
                    TaskState::TaskFailed,
                    REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                    format!(
                        "Executor did not register within {:?}",
                        self.executor_config.registration_timeout
                    ),
                ),
            };
            tracing::warn!(framework = %framework_id, executor = %executor_id, %message, "killing the executor");
            effects.extend(self.end_executor_tasks(
                now,
                &framework_id,
                &executor_id,
                state,
                reason,
                &message,
            ));
        }
        effects
    }

    /// One task of the executor ends with an update the agent makes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn end_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        task_id: &TaskId,
        state: TaskState,
        reason: &str,
        message: &str,
    ) -> Vec<Effect> {
        if self
            .task(framework_id, task_id)
            .is_none_or(|t| t.state.is_terminal())
        {
            return Vec::new();
        }
        let mut status = self.status(now, task_id, state, StatusSource::SourceAgent);
        status.executor_id = Some(executor_id.clone());
        status.reason = Some(reason.to_string());
        status.message = Some(message.to_string());
        let effects = self.update_task(now, framework_id, status);
        self.executor_task_ended(framework_id, executor_id, task_id);
        effects
    }

    /// Every unfinished task of the executor ends with `state`.
    pub(super) fn end_executor_tasks(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        state: TaskState,
        reason: &str,
        message: &str,
    ) -> Vec<Effect> {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Vec::new();
        };
        let mut task_ids = std::mem::take(&mut executor.queued);
        task_ids.extend(std::mem::take(&mut executor.launched));
        task_ids
            .iter()
            .flat_map(|t| self.end_task(now, framework_id, executor_id, t, state, reason, message))
            .collect::<Vec<_>>()
    }

    /// A task of the executor is terminal: it no longer counts as the executor's, and it is
    /// archived once every update is acknowledged.
    pub(super) fn executor_task_ended(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        task_id: &TaskId,
    ) {
        if let Some(executor) = self.executor_mut(framework_id, executor_id) {
            executor.launched.remove(task_id);
            executor.queued.retain(|t| t != task_id);
        }
        if let Some(task) = self.task_mut(framework_id, task_id) {
            task.process = Process::Exited;
        }
        self.complete_if_done(framework_id, task_id);
    }

    /// The executor's process is gone: it moves to the completed executors; its checkpoints go
    /// once no task of its run is left.
    pub(super) fn finish_executor(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Vec<Effect> {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Vec::new();
        };
        if let Some(executor) = framework.executors.remove(executor_id) {
            let (executor_dir, run_dir, container_id) = (
                executor.executor_dir.clone(),
                executor.checkpoint_dir.clone(),
                executor.container_id.clone(),
            );
            if framework.completed_executors.len() >= COMPLETED_CUSTOM_EXECUTORS_MAX {
                framework.completed_executors.pop_front();
            }
            framework.completed_executors.push_back(executor);
            self.remove_executor_checkpoints_if_done(
                framework_id,
                executor_id,
                &container_id,
                executor_dir,
                run_dir,
            );
        }
        self.complete_framework_if_idle(framework_id);
        Vec::new()
    }

    /// Called when a task of a custom executor is archived: the executor's run checkpoints go
    /// once the executor ended and none of its tasks is left.
    pub(super) fn executor_task_archived(&mut self, framework_id: &FrameworkId, task: &Task) {
        let Some(executor_id) = task.custom_executor() else {
            return;
        };
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if framework
            .executors
            .get(executor_id)
            .is_some_and(|e| e.container_id == task.container_id)
        {
            return; // still running
        }
        let Some(ended) = framework
            .completed_executors
            .iter()
            .rev()
            .find(|e| e.container_id == task.container_id)
        else {
            return;
        };
        let (executor_dir, run_dir) = (ended.executor_dir.clone(), ended.checkpoint_dir.clone());
        self.remove_executor_checkpoints_if_done(
            framework_id,
            executor_id,
            &task.container_id,
            executor_dir,
            run_dir,
        );
    }

    fn remove_executor_checkpoints_if_done(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        container_id: &ContainerId,
        executor_dir: PathBuf,
        run_dir: PathBuf,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if framework
            .tasks
            .values()
            .any(|t| t.container_id == *container_id)
        {
            return;
        }
        if framework.executors.contains_key(executor_id) {
            // A newer run of the same executor id keeps `executor.info`.
            self.journal.push(CheckpointOp::RemoveRun { run_dir });
        } else {
            self.journal
                .push(CheckpointOp::RemoveExecutor { executor_dir });
        }
    }
}
