//! Read-only views of the core for `/state`, `/metrics/snapshot`, `/files` and reregistration.

use super::{Core, Framework, Process, Task};
use crate::sandbox;
use proto::agent_protocol::ReportedTask;
use proto::{AgentId, FrameworkId, FrameworkInfo, ResourceBag, TaskId, TaskState};
use std::path::Path;

impl Core {
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent_id.as_ref()
    }
    pub fn is_connected(&self) -> bool {
        self.connected
    }
    /// `--executor_shutdown_grace_period`.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        self.shutdown_grace
    }
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }
    pub fn completed_frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.completed_frameworks.iter()
    }
    pub fn live_tasks(&self) -> impl Iterator<Item = &Task> {
        self.frameworks.values().flat_map(|f| f.tasks.values())
    }
    pub fn task(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&Task> {
        self.frameworks.get(framework_id)?.tasks.get(task_id)
    }
    /// Updates not yet acknowledged, head first.
    #[cfg(test)]
    pub fn pending_updates(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Vec<proto::TaskStatus> {
        self.streams
            .get(&(framework_id.clone(), task_id.clone()))
            .map(|s| s.pending().cloned().collect())
            .unwrap_or_default()
    }
    /// How many tasks reached each terminal state since start.
    pub fn terminal_count(&self, state: TaskState) -> u64 {
        self.terminal_counts.get(&state).copied().unwrap_or(0)
    }
    /// Live tasks and custom executors whose process runs.
    pub fn processes_running(&self) -> usize {
        let tasks = self
            .live_tasks()
            .filter(|t| matches!(t.process, Process::Running { .. }))
            .count();
        let executors = self
            .live_executors()
            .filter(|e| matches!(e.process, Process::Running { .. }))
            .count();
        tasks + executors
    }
    /// Resources of the tasks that have not reached a terminal state.
    pub fn used_resources(&self) -> ResourceBag {
        let mut used = ResourceBag::new();
        for task in self.live_tasks().filter(|t| !t.state.is_terminal()) {
            if let Ok(bag) = ResourceBag::from_resources(&task.info.resources) {
                let _ = used.add(&bag);
            }
        }
        // A custom executor's own resources count while it runs.
        for executor in self.live_executors() {
            if let Ok(bag) = ResourceBag::from_resources(&executor.info.resources) {
                let _ = used.add(&bag);
            }
        }
        used
    }
    /// Every run still known (live or completed), for `/files`: newest last within an executor.
    pub fn runs(&self) -> impl Iterator<Item = &Task> {
        self.completed_frameworks
            .iter()
            .chain(self.frameworks.values())
            .flat_map(|f| f.completed.iter().chain(f.tasks.values()))
    }
    /// The sandbox of `executor_id`'s run `run` (a container id, or `latest`).
    pub fn find_run(&self, framework_id: &str, executor_id: &str, run: &str) -> Option<&Task> {
        let matches = |t: &&Task| {
            t.framework_id.value == framework_id
                && t.executor_id() == executor_id
                && (run == sandbox::LATEST || t.container_id.value == run)
        };
        // `runs()` yields older runs first, so the last match is the latest.
        self.runs().filter(matches).last()
    }

    /// What a reregistration reports: non-terminal tasks and the FrameworkInfo of their frameworks.
    pub fn reregistration_report(&self) -> (Vec<ReportedTask>, Vec<FrameworkInfo>) {
        let mut tasks = Vec::new();
        let mut frameworks = Vec::new();
        for framework in self.frameworks.values() {
            let before = tasks.len();
            for task in framework.tasks.values().filter(|t| !t.state.is_terminal()) {
                tasks.push(ReportedTask {
                    framework_id: framework.id.clone(),
                    task: task.info.clone(),
                    state: task.state,
                    latest_status: task.statuses.last().cloned(),
                });
            }
            if tasks.len() > before {
                frameworks.push(framework.info.clone());
            }
        }
        (tasks, frameworks)
    }
}
