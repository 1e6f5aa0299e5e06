//! RECONCILE (mesos-http-api.md 8.3, mesos-ha.md 3.5-3.6): what the master answers for each task a
//! framework asks about, explicitly or implicitly, after a failover as in steady state.

use super::*;
use proto::scheduler::*;

impl Core {
    /// Explicit reconciliation answers each named task; implicit (no tasks) answers every task the
    /// master knows for the framework. Answers carry REASON_RECONCILIATION and no uuid
    /// (mesos-ha.md 3.6).
    pub(super) fn reconcile(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        reconcile: Reconcile,
        effects: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.info.is_partition_aware();
        let answer = |task: &Task| {
            let mut status = task
                .latest_status
                .clone()
                .unwrap_or_else(|| TaskStatus::new(task.info.task_id.clone(), task.state));
            status.state = task.state;
            status.uuid = None;
            status.source = Some(StatusSource::SourceMaster);
            status.reason = Some("REASON_RECONCILIATION".to_string());
            status.message = Some("Reconciliation: Latest task state".to_string());
            status.agent_id = Some(task.agent_id.clone());
            status.timestamp = Some(now);
            Event::update(status)
        };
        if reconcile.tasks.is_empty() {
            for task in framework.tasks.values() {
                effects.push(Effect::ToFramework(framework_id.clone(), answer(task)));
            }
            return;
        }
        for request in reconcile.tasks {
            if let Some(task) = framework
                .tasks
                .get(&request.task_id)
                .or_else(|| framework.unreachable_tasks.get(&request.task_id))
            {
                effects.push(Effect::ToFramework(framework_id.clone(), answer(task)));
                continue;
            }
            // After a failover, a task on an agent of the registry that has not re-registered yet
            // may well be running: answer nothing, the scheduler retries (mesos-ha.md 3.5). Without
            // an agent id any recovered agent could hold it.
            let on_recovered_agent = match &request.agent_id {
                Some(agent_id) => self.recovered_agents.contains_key(agent_id),
                None => !self.recovered_agents.is_empty(),
            };
            if on_recovered_agent {
                continue;
            }
            if request
                .agent_id
                .as_ref()
                .is_some_and(|a| self.unreachable_agents.contains_key(a))
            {
                let state = if partition_aware {
                    TaskState::TaskUnreachable
                } else {
                    TaskState::TaskLost
                };
                let status = master_status(
                    request.task_id,
                    state,
                    request.agent_id,
                    "REASON_RECONCILIATION",
                    "Reconciliation: Agent is unreachable",
                    now,
                );
                effects.push(Effect::ToFramework(
                    framework_id.clone(),
                    Event::update(status),
                ));
                continue;
            }
            let agent_known = request
                .agent_id
                .as_ref()
                .is_some_and(|a| self.agents.contains_key(a));
            let (state, message) = match (agent_known, partition_aware) {
                (true, true) => (
                    TaskState::TaskGone,
                    "Reconciliation: Task is unknown to the agent",
                ),
                (false, true) => (TaskState::TaskUnknown, "Reconciliation: Task is unknown"),
                (_, false) => (TaskState::TaskLost, "Reconciliation: Task is unknown"),
            };
            let status = master_status(
                request.task_id,
                state,
                request.agent_id,
                "REASON_RECONCILIATION",
                message,
                now,
            );
            effects.push(Effect::ToFramework(
                framework_id.clone(),
                Event::update(status),
            ));
        }
    }
}
