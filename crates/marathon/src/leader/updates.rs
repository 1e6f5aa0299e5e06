//! Mesos status updates (mesos-http-api.md §8.5; marathon-api.md §6, §7, §8.2).
//!
//! Each UPDATE refreshes the task record (state, start time, addresses), records
//! `lastTaskFailure` for failed tasks (in the books and, so that a new leader shows it too, in the
//! store: in the same commit), feeds the planner, commits what the planner decided, and
//! only then acknowledges it (when it carries a `uuid`): an update is never acknowledged before
//! its consequence is durable. Tasks Mesos reports that the books do not know are killed (the
//! planner decides; the kill names the reported task id).

use super::state::{now_ms, put_failure_op};
use super::{events, Leader, UnknownTasks};
use crate::error::MarathonError;
use marathon_model::{LastTaskFailure, PathId, Timestamp};
use marathon_planner::TaskState as P;
use marathon_store::StoreOp;
use proto::{TaskState, TaskStatus};

/// Bytes of a status message kept in `lastTaskFailure`: a task failure record must stay far under
/// `marathon_store::RECORD_BYTES_MAX` whatever an executor reports, or storing it would stop the
/// leader.
const FAILURE_MESSAGE_BYTES_MAX: usize = 4096;

/// `message` cut to at most `FAILURE_MESSAGE_BYTES_MAX` bytes, on a character boundary.
fn failure_message(message: &str) -> String {
    let mut end = message.len().min(FAILURE_MESSAGE_BYTES_MAX);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

pub fn planner_state(state: TaskState) -> P {
    match state {
        TaskState::TaskStaging => P::Staging,
        TaskState::TaskStarting => P::Starting,
        TaskState::TaskRunning => P::Running,
        TaskState::TaskKilling => P::Killing,
        TaskState::TaskFinished => P::Finished,
        TaskState::TaskFailed => P::Failed,
        TaskState::TaskKilled => P::Killed,
        TaskState::TaskError => P::Error,
        TaskState::TaskLost => P::Lost,
        TaskState::TaskDropped => P::Dropped,
        TaskState::TaskUnreachable => P::Unreachable,
        TaskState::TaskGone => P::Gone,
        TaskState::TaskGoneByOperator => P::GoneByOperator,
        TaskState::TaskUnknown => P::Unknown,
    }
}

/// States recorded as an app's `lastTaskFailure`.
fn is_failure(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFailed
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
    )
}

/// Addresses from `container_status.network_infos[].ip_addresses[].ip_address`.
fn status_ips(status: &TaskStatus) -> Vec<String> {
    let Some(cs) = &status.container_status else {
        return vec![];
    };
    cs.get("network_infos")
        .and_then(|n| n.as_array())
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("ip_addresses").and_then(|a| a.as_array()))
        .flatten()
        .filter_map(|a| {
            a.get("ip_address")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        })
        .collect()
}

/// What a batch of updates leaves to do once the planner saw them all.
#[derive(Default)]
pub(crate) struct Absorbed {
    cmds: Vec<marathon_planner::Command>,
    unknown: UnknownTasks,
    first: Vec<marathon_api::service::MarathonEvent>,
    /// Store ops of the batch besides the planner's (task failures).
    ops: Vec<StoreOp>,
    /// (agent, task, uuid) to acknowledge after the commit.
    acks: Vec<(String, String, String)>,
}

impl Leader {
    /// A batch of status updates (those waiting together on the Mesos stream): each feeds the
    /// planner in order, then everything they decided is committed in one store commit, and only
    /// then are they acknowledged. One commit per batch rather than per update is what keeps a mass
    /// launch from waiting on ZooKeeper round trips.
    pub(crate) async fn on_statuses(
        &mut self,
        statuses: Vec<TaskStatus>,
    ) -> Result<(), MarathonError> {
        let mut absorbed = Absorbed::default();
        for status in statuses {
            self.absorb_status(status, &mut absorbed);
        }
        let Absorbed {
            cmds,
            unknown,
            first,
            ops,
            acks,
        } = absorbed;
        self.execute_with(cmds, ops, &unknown, first).await?;
        // Acknowledge only now that the consequences are stored.
        for (agent, task_id, uuid) in acks {
            let client = self.client.clone();
            tokio::spawn(async move {
                if let Err(e) = client
                    .acknowledge(
                        proto::AgentId::new(agent),
                        proto::TaskId::new(task_id.clone()),
                        uuid,
                    )
                    .await
                {
                    tracing::debug!(%task_id, error = %e, "ACKNOWLEDGE not sent; Mesos resends the update");
                }
            });
        }
        Ok(())
    }

    fn absorb_status(&mut self, status: TaskStatus, absorbed: &mut Absorbed) {
        let now = now_ms();
        let task_id = status.task_id.value.clone();
        let state_name = status.state.name();
        let agent = status.agent_id.as_ref().map(|a| a.value.clone());
        let instance_id = marathon_model::TaskId::parse(&task_id)
            .map(|t| t.instance.to_string())
            .unwrap_or_else(|_| task_id.clone());
        let known = self.state.planner.instance(&instance_id).is_some();
        if !known {
            absorbed
                .unknown
                .insert(instance_id.clone(), (task_id.clone(), agent.clone()));
        }
        let app_id = self
            .state
            .planner
            .instance(&instance_id)
            .map(|i| i.app_id.clone());
        let current = self
            .state
            .tasks
            .get(&instance_id)
            .is_some_and(|r| r.task_id == task_id);
        if let Some(rec) = self.state.tasks.get_mut(&instance_id).filter(|_| current) {
            rec.state = state_name.to_string();
            if status.state == TaskState::TaskRunning {
                rec.started_at_ms.get_or_insert(now);
            }
            if let Some(a) = &agent {
                rec.agent_id = a.clone();
            }
            let ips = status_ips(&status);
            if !ips.is_empty() {
                rec.ip_addresses = ips;
            }
        }
        let rec = self
            .state
            .tasks
            .get(&instance_id)
            .filter(|_| current)
            .cloned();
        let host = rec.as_ref().map(|r| r.host.clone()).unwrap_or_default();
        let agent_id = agent
            .clone()
            .or(rec.as_ref().map(|r| r.agent_id.clone()))
            .unwrap_or_default();
        if let (true, Some(app), Some(rec)) = (is_failure(status.state), &app_id, &rec) {
            // Only for an app that still exists: the store keeps a failure no longer than its app.
            if let Some(id) = PathId::parse(app)
                .ok()
                .filter(|id| self.state.apps.contains_key(id))
            {
                let failure = LastTaskFailure {
                    app_id: id.clone(),
                    host: host.clone(),
                    message: failure_message(status.message.as_deref().unwrap_or_default()),
                    state: state_name.to_string(),
                    task_id: task_id.clone(),
                    timestamp: Timestamp(now),
                    version: Timestamp(rec.app_version_ms),
                    slave_id: Some(agent_id.clone()),
                };
                absorbed.ops.extend(put_failure_op(&failure));
                self.state.last_failures.insert(id, failure);
            }
        }
        let event = marathon_planner::Event::StatusUpdate {
            instance_id: instance_id.clone(),
            state: planner_state(status.state),
            healthy: status.healthy,
            agent: agent.clone(),
        };
        let cmds = if current || !known {
            self.state.planner.handle(now.max(0) as u64, event)
        } else {
            Vec::new()
        };
        let app = app_id.clone().unwrap_or_else(|| {
            marathon_model::TaskId::parse(&task_id)
                .map(|t| t.app_id().to_string())
                .unwrap_or_default()
        });
        let version = rec.as_ref().map(|r| r.app_version_ms);
        let ports = rec
            .as_ref()
            .map(|r| r.host_ports.clone())
            .unwrap_or_default();
        let ips = rec
            .as_ref()
            .map(|r| r.ip_addresses.clone())
            .unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        let mut first = vec![events::status_update(
            &agent_id, &task_id, state_name, &message, &app, &host, &ips, &ports, version,
        )];
        if known && current {
            first.push(events::instance_changed(
                &instance_id,
                state_name,
                &app,
                &agent_id,
                &host,
                version,
            ));
        } else if !known && status.state.is_terminal() {
            let fields = serde_json::json!({"instanceId": instance_id, "runSpecId": app, "condition": events::condition(state_name)});
            first.push(events::simple("unknown_instance_terminated_event", fields));
        }
        absorbed.cmds.extend(cmds);
        absorbed.first.extend(first);
        if let (Some(uuid), Some(agent)) = (status.uuid.clone(), agent) {
            absorbed.acks.push((agent, task_id, uuid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_message_is_cut_on_a_character_boundary() {
        assert_eq!(failure_message("exit 1"), "exit 1");
        let long = "é".repeat(FAILURE_MESSAGE_BYTES_MAX);
        let cut = failure_message(&long);
        assert!(
            cut.len() <= FAILURE_MESSAGE_BYTES_MAX && cut.len() >= FAILURE_MESSAGE_BYTES_MAX - 1
        );
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
