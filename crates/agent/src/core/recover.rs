//! Rebuilding the core after an agent restart (replicated-log.md section 8), still without I/O.
//!
//! `recover` replays each checkpointed run's `task.updates` records: every produced update joins the
//! task's history and its queue, an acknowledgement pops the queue up to the update it names (only
//! the head is ever in flight, so acknowledging one implies those before it), a kill record restores
//! the kill's grace period. A run that is terminal with nothing left to acknowledge is history: it
//! goes to the completed list and its checkpoints are removed. What remains is returned for the
//! driver to settle with the launcher: `reattached` (the process runs), `exited` (its exit was
//! recorded), `lost` (nobody knows it: launcher gone, host rebooted).

use super::*;

/// One run as read back from its checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredRun {
    pub run_dir: PathBuf,
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
    /// `task.updates`, in order (unreadable records left out).
    pub records: Vec<UpdateRecord>,
}

/// A task whose process the launcher must account for.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredTask {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub container_id: ContainerId,
    pub state: TaskState,
    pub run_dir: PathBuf,
    /// The process the launcher started, as recorded.
    pub forked: Option<Forked>,
}

/// A run's records replayed.
struct Replayed {
    state: TaskState,
    statuses: Vec<TaskStatus>,
    pending: VecDeque<TaskStatus>,
    kill_grace: Option<Duration>,
    forked: Option<Forked>,
}

/// The process recorded last in a run's records.
pub fn forked_of(records: &[UpdateRecord]) -> Option<Forked> {
    records.iter().rev().find_map(|r| match r {
        UpdateRecord::Forked { pid, start_time } => Some(Forked {
            pid: *pid,
            start_time: *start_time,
        }),
        _ => None,
    })
}

fn replay(records: &[UpdateRecord]) -> Replayed {
    let mut replayed = Replayed {
        state: TaskState::TaskStaging,
        statuses: Vec::new(),
        pending: VecDeque::new(),
        kill_grace: None,
        forked: forked_of(records),
    };
    for record in records {
        match record {
            UpdateRecord::Update {
                status,
                reconciliation,
            } => {
                replayed.pending.push_back(status.clone());
                if !reconciliation {
                    replayed.state = status.state;
                    if replayed.statuses.len() >= TASK_STATUSES_MAX {
                        replayed.statuses.remove(0);
                    }
                    replayed.statuses.push(status.clone());
                }
            }
            UpdateRecord::Ack { uuid } => {
                if let Some(i) = replayed
                    .pending
                    .iter()
                    .position(|s| s.uuid.as_deref() == Some(uuid))
                {
                    replayed.pending.drain(..=i);
                }
            }
            UpdateRecord::Kill { grace_ms } => {
                let grace = Duration::from_millis(*grace_ms);
                replayed.kill_grace = Some(replayed.kill_grace.map_or(grace, |g| g.min(grace)));
            }
            UpdateRecord::Forked { .. } => {}
        }
    }
    replayed
}

impl Core {
    /// Rebuilds frameworks, tasks and their unacknowledged updates from checkpoints; returns the
    /// non-terminal tasks, whose processes are unknown (`Process::Launching`) until the driver
    /// settles each with `reattached`, `exited` or `lost`.
    pub fn recover(
        &mut self,
        agent_id: Option<AgentId>,
        framework_infos: BTreeMap<FrameworkId, FrameworkInfo>,
        mut runs: Vec<RecoveredRun>,
    ) -> Vec<RecoveredTask> {
        self.agent_id = agent_id;
        // Oldest first (by their first update), so that of two runs of one task id the newer wins.
        runs.sort_by(|a, b| first_timestamp(a).total_cmp(&first_timestamp(b)));
        let mut live = Vec::new();
        for run in runs {
            let replayed = replay(&run.records);
            let task_id = run.task.task_id.clone();
            let custom_executor = run.task.executor.is_some();
            let framework_id = run.framework_id.clone();
            if !self.frameworks.contains_key(&framework_id) {
                let info = framework_infos.get(&framework_id).cloned().unwrap_or_else(|| {
                    tracing::error!(framework = %framework_id, "framework.info missing; recovering its tasks with a placeholder");
                    FrameworkInfo {
                        id: Some(framework_id.clone()),
                        ..placeholder_info()
                    }
                });
                self.frameworks.insert(
                    framework_id.clone(),
                    Framework::new(framework_id.clone(), info),
                );
            }
            let terminal = replayed.state.is_terminal();
            let task = Task {
                framework_id: framework_id.clone(),
                info: run.task,
                container_id: run.container_id.clone(),
                sandbox: run.sandbox,
                checkpoint_dir: run.run_dir.clone(),
                state: replayed.state,
                statuses: replayed.statuses,
                process: if terminal {
                    Process::Exited
                } else {
                    Process::Launching
                },
                forked: replayed.forked,
                kill_grace: replayed.kill_grace,
            };
            if terminal && replayed.pending.is_empty() {
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    push_completed(framework, task);
                }
                self.journal.push(CheckpointOp::RemoveRun {
                    run_dir: run.run_dir,
                });
                continue;
            }
            let key = (framework_id.clone(), task_id.clone());
            if let Some(older) = self.task(&framework_id, &task_id).cloned() {
                tracing::error!(framework = %framework_id, task = %task_id, older = %older.container_id,
                    newer = %run.container_id, "two live runs of one task checkpointed; keeping the newer");
                live.retain(|t: &RecoveredTask| t.container_id != older.container_id);
                self.journal.push(CheckpointOp::RemoveRun {
                    run_dir: older.checkpoint_dir.clone(),
                });
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    framework.tasks.remove(&task_id);
                    push_completed(framework, older);
                }
            }
            if !replayed.pending.is_empty() {
                self.streams
                    .insert(key, UpdateStream::recovered(replayed.pending));
            } else {
                self.streams.remove(&key);
            }
            // A custom executor's task has no process of its own: its executor is settled instead.
            if !terminal && !custom_executor {
                live.push(RecoveredTask {
                    framework_id: framework_id.clone(),
                    task_id: task_id.clone(),
                    container_id: run.container_id,
                    state: replayed.state,
                    run_dir: run.run_dir,
                    forked: replayed.forked,
                });
            }
            if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                framework.tasks.insert(task_id, task);
            }
        }
        let idle: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.tasks.is_empty())
            .map(|f| f.id.clone())
            .collect();
        for framework_id in idle {
            self.complete_framework_if_idle(&framework_id);
        }
        live
    }

    /// Tasks whose process was not seen to end (launching or running), for settling with a launcher
    /// the agent reconnected to.
    pub fn unsettled_tasks(&self) -> Vec<RecoveredTask> {
        self.live_tasks()
            .filter(|t| t.process != Process::Exited && t.custom_executor().is_none())
            .map(|t| RecoveredTask {
                framework_id: t.framework_id.clone(),
                task_id: t.info.task_id.clone(),
                container_id: t.container_id.clone(),
                state: t.state,
                run_dir: t.checkpoint_dir.clone(),
                forked: t.forked,
            })
            .collect()
    }

    /// The launcher started the task's process: recorded (before `spawned` reports it), so that a
    /// restarted agent can tell the process apart from a later one with the same pid.
    pub fn forked(&mut self, framework_id: &FrameworkId, task_id: &TaskId, forked: Forked) {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return;
        };
        task.forked = Some(forked);
        let run_dir = task.checkpoint_dir.clone();
        self.journal.push(CheckpointOp::Update {
            run_dir,
            task_id: task_id.clone(),
            record: UpdateRecord::Forked {
                pid: forked.pid,
                start_time: forked.start_time,
            },
        });
    }

    /// The launcher still runs the task's process: attach to it. A task that never reported
    /// TASK_RUNNING does so now (as on a first spawn).
    pub fn reattached(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        pid: u32,
    ) -> Vec<Effect> {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        match task.state {
            TaskState::TaskStaging | TaskState::TaskStarting => {
                self.spawned(now, framework_id, task_id, pid)
            }
            _ => {
                task.process = Process::Running { pid };
                Vec::new()
            }
        }
    }

    /// Nobody knows what became of the task's process (the launcher is gone, the host rebooted):
    /// TASK_GONE for partition-aware frameworks, TASK_LOST for others (replicated-log.md 8, step 3).
    pub fn lost(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        why: &str,
    ) -> Vec<Effect> {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.is_partition_aware());
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        task.process = Process::Exited;
        if task.state.is_terminal() {
            return Vec::new();
        }
        let state = if partition_aware {
            TaskState::TaskGone
        } else {
            TaskState::TaskLost
        };
        let mut status = self.status(now, task_id, state, StatusSource::SourceAgent);
        status.message = Some(format!(
            "The task's process was not recovered after the agent restarted: {why}"
        ));
        status.reason = Some(REASON_EXECUTOR_REREGISTRATION_TIMEOUT.to_string());
        let effects = self.update_task(now, framework_id, status);
        self.complete_if_done(framework_id, task_id);
        effects
    }
}

fn push_completed(framework: &mut Framework, task: Task) {
    if framework.completed.len() >= COMPLETED_EXECUTORS_PER_FRAMEWORK_MAX {
        framework.completed.pop_front();
    }
    framework.completed.push_back(task);
}

fn first_timestamp(run: &RecoveredRun) -> f64 {
    run.records
        .iter()
        .find_map(|r| match r {
            UpdateRecord::Update { status, .. } => status.timestamp,
            _ => None,
        })
        .unwrap_or(0.0)
}

pub(super) fn placeholder_info() -> FrameworkInfo {
    FrameworkInfo {
        user: String::new(),
        name: String::new(),
        id: None,
        failover_timeout: 0.0,
        checkpoint: true,
        role: None,
        roles: Vec::new(),
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: Vec::new(),
        labels: None,
    }
}
