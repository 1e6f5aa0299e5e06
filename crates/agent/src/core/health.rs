//! Health checks of command tasks (mesos-http-api.md 8.4 `health_check`, 8.5 `healthy`), as
//! Mesos' command executor runs them; the timing rules are in `health_rules.rs`.
//!
//! What: when a task with a `health_check` becomes RUNNING its `HealthTracker` starts; the driver
//! asks `next_health_check_due` when to call `health_tick`, which hands out due checks as
//! `Effect::CheckHealth` (the driver runs them: `health_checker.rs`) and fails those past their
//! timeout. `health_result` applies a result: a change of health is a TASK_RUNNING update with
//! `healthy` and `REASON_TASK_HEALTH_CHECK_STATUS_UPDATED` (through the task's reliable,
//! checkpointed stream, like any update); too many failures in a row kill the task with its kill
//! policy's grace, and its TASK_KILLED then carries `healthy: false` and says why.
//!
//! After an agent restart, tasks found running start checking again from scratch (the first
//! `health_tick` adopts them); the health last reported is remembered from their statuses.
//! Custom executors run their own checks (Mesos does the same), so only command tasks are checked.

use super::health_rules::{HealthPolicy, HealthTracker};
use super::{policy_grace, Core, Effect, Now, Process};
use crate::flags::DEFAULT_KILL_GRACE;
use proto::{ContainerId, FrameworkId, HealthCheck, StatusSource, TaskId, TaskState, TaskStatus};
use std::time::{Duration, Instant};

/// The reason of a TASK_RUNNING update that reports a change of health.
pub const REASON_TASK_HEALTH_CHECK_STATUS_UPDATED: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";
/// The message of the TASK_KILLED of a task its health checks gave up on.
pub const HEALTH_KILL_MESSAGE: &str = "Task killed because of failing health checks";

/// One check for the driver to run; its result comes back through `Core::health_result`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthProbe {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub container_id: ContainerId,
    /// The check's number: a result is applied only to the check it answers.
    pub seq: u64,
    pub check: HealthCheck,
    /// Give up on the check (and kill what it started) after this long.
    pub timeout: Duration,
}

/// A task's checking: which run of the task it belongs to, its check and its rules.
#[derive(Debug, Clone)]
pub struct HealthEntry {
    container_id: ContainerId,
    check: HealthCheck,
    tracker: HealthTracker,
}

impl Core {
    /// The task just became RUNNING: its checking (if it has a health check) starts now.
    pub(super) fn health_started(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) {
        let Some(task) = self.task(framework_id, task_id) else {
            return;
        };
        if task.custom_executor().is_some() {
            return;
        }
        // A check that does not parse was refused at launch (`validate`).
        let Some(Ok(check)) = task.info.typed_health_check() else {
            return;
        };
        let entry = HealthEntry {
            container_id: task.container_id.clone(),
            tracker: HealthTracker::new(HealthPolicy::of(&check), now.at, None),
            check,
        };
        self.health
            .insert((framework_id.clone(), task_id.clone()), entry);
    }

    /// When `health_tick` next has work (a check to start or to time out).
    pub fn next_health_check_due(&self) -> Option<Instant> {
        self.health
            .values()
            .filter_map(|e| e.tracker.next_due())
            .min()
    }

    /// Adopts running tasks after a restart, forgets tasks no longer running, fails checks past
    /// their timeout and starts the checks that are due.
    pub fn health_tick(&mut self, now: Now) -> Vec<Effect> {
        if std::mem::take(&mut self.health_rescan) {
            self.adopt_running(now);
        }
        let mut effects = Vec::new();
        let keys: Vec<(FrameworkId, TaskId)> = self.health.keys().cloned().collect();
        for key in keys {
            let (framework_id, task_id) = &key;
            let checked = self.task(framework_id, task_id).filter(|t| {
                self.health
                    .get(&key)
                    .is_some_and(|e| e.container_id == t.container_id)
                    && !t.state.is_terminal()
                    && t.process != Process::Exited
            });
            if checked.is_none() {
                self.health.remove(&key);
                continue;
            }
            let timed_out = self
                .health
                .get(&key)
                .and_then(|e| e.tracker.timed_out(now.at));
            if let Some(seq) = timed_out {
                tracing::info!(framework = %framework_id, task = %task_id, "health check timed out");
                effects.extend(self.health_result(now, framework_id, task_id, seq, false));
            }
            let Some(entry) = self.health.get_mut(&key) else {
                continue;
            };
            if let Some(seq) = entry.tracker.start_due(now.at) {
                effects.push(Effect::CheckHealth(Box::new(HealthProbe {
                    framework_id: framework_id.clone(),
                    task_id: task_id.clone(),
                    container_id: entry.container_id.clone(),
                    seq,
                    check: entry.check.clone(),
                    timeout: entry.tracker.timeout(),
                })));
            }
        }
        effects
    }

    /// The result of check `seq` of the task: reports a change of health, kills the task after
    /// too many failures in a row. Late or stale results change nothing.
    pub fn health_result(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        seq: u64,
        healthy: bool,
    ) -> Vec<Effect> {
        let key = (framework_id.clone(), task_id.clone());
        let Some(task) = self.task(framework_id, task_id) else {
            return Vec::new();
        };
        // A task being killed (or no longer running) gets no more health updates (Mesos' command
        // executor ignores health results once it kills).
        if task.state != TaskState::TaskRunning
            || task.kill_grace.is_some()
            || task.process == Process::Exited
        {
            return Vec::new();
        }
        let kill_grace = policy_grace(task.info.kill_policy.as_ref()).unwrap_or(DEFAULT_KILL_GRACE);
        let container_status = task
            .statuses
            .last()
            .and_then(|s| s.container_status.clone());
        let container_id = task.container_id.clone();
        let Some(entry) = self
            .health
            .get_mut(&key)
            .filter(|e| e.container_id == container_id)
        else {
            return Vec::new();
        };
        let Some(verdict) = entry.tracker.result(now.at, seq, healthy) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        if let Some(healthy) = verdict.report {
            tracing::info!(framework = %framework_id, task = %task_id, healthy, "task health changed");
            let mut status = self.status(
                now,
                task_id,
                TaskState::TaskRunning,
                StatusSource::SourceExecutor,
            );
            status.reason = Some(REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.to_string());
            status.healthy = Some(healthy);
            status.container_status = container_status;
            effects.extend(self.update_task(now, framework_id, status));
        }
        if verdict.kill {
            tracing::warn!(framework = %framework_id, task = %task_id, "health checks failed too often; killing the task");
            effects.extend(self.kill(now, framework_id, task_id, kill_grace));
        }
        effects
    }

    /// Marks the terminal update of a task its health checks killed (`healthy: false`, with why),
    /// and ends its checking.
    pub(super) fn health_terminal(&mut self, framework_id: &FrameworkId, status: &mut TaskStatus) {
        let key = (framework_id.clone(), status.task_id.clone());
        let Some(entry) = self.health.remove(&key) else {
            return;
        };
        if entry.tracker.gave_up() && status.state == TaskState::TaskKilled {
            status.healthy = Some(false);
            status.message = Some(HEALTH_KILL_MESSAGE.to_string());
        }
    }

    /// Running command tasks with a health check and no checking (recovered after a restart)
    /// start checking now.
    fn adopt_running(&mut self, now: Now) {
        let adopt: Vec<(FrameworkId, TaskId, Option<bool>)> = self
            .live_tasks()
            .filter(|t| t.info.health_check.is_some() && t.custom_executor().is_none())
            .filter(|t| t.state == TaskState::TaskRunning && t.kill_grace.is_none())
            .filter(|t| matches!(t.process, Process::Running { .. }))
            .filter(|t| {
                !self
                    .health
                    .contains_key(&(t.framework_id.clone(), t.info.task_id.clone()))
            })
            .map(|t| {
                let known = t.statuses.iter().rev().find_map(|s| s.healthy);
                (t.framework_id.clone(), t.info.task_id.clone(), known)
            })
            .collect();
        for (framework_id, task_id, known) in adopt {
            self.health_started(now, &framework_id, &task_id);
            if let Some(entry) = self.health.get_mut(&(framework_id, task_id)) {
                entry.tracker = HealthTracker::new(*entry.tracker.policy(), now.at, known);
            }
        }
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
