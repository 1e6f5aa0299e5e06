//! (isolation) A task whose container went over a resource limit: its isolator killed it, and its
//! terminal update says why (mesos-http-api.md 8.5: `TASK_FAILED`, `REASON_CONTAINER_LIMITATION_*`,
//! `source: SOURCE_AGENT`, as the Mesos agent reports a container limitation).
//!
//! Called by the driver instead of `exited` when `Isolator::limitation` names the container.

use super::{Core, Effect, Now, Process};
use proto::{FrameworkId, StatusSource, TaskId, TaskState};

impl Core {
    /// The task's process ended because its container hit a limit: `TASK_FAILED` with `reason`
    /// and `message` (even if a kill was under way: the limit is what ended it).
    pub fn limited(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        reason: &str,
        message: &str,
    ) -> Vec<Effect> {
        let Some(task) = self.task_mut(framework_id, task_id) else {
            return Vec::new();
        };
        task.process = Process::Exited;
        if task.state.is_terminal() {
            return Vec::new();
        }
        let mut status = self.status(
            now,
            task_id,
            TaskState::TaskFailed,
            StatusSource::SourceAgent,
        );
        status.message = Some(message.to_string());
        status.reason = Some(reason.to_string());
        let effects = self.update_task(now, framework_id, status);
        self.complete_if_done(framework_id, task_id);
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{AgentId, FrameworkInfo, MasterInfo, TaskInfo};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    #[test]
    fn a_limited_task_fails_with_the_limitation_reason() {
        let mut counter = 0u128;
        let uuids = Box::new(move || {
            counter += 1;
            uuid::Uuid::from_u128(counter)
        });
        let mut core = Core::new(PathBuf::from("/w"), Duration::from_secs(5), uuids);
        let now = Now {
            at: Instant::now(),
            wall: 1_700_000_000.0,
        };
        let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m1".into());
        core.registered(now, AgentId::new("S1"), master);
        let framework: FrameworkInfo = serde_json::from_value(
            serde_json::json!({"user": "u", "name": "fw", "id": {"value": "F1"}}),
        )
        .unwrap();
        let task: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "hog", "task_id": {"value": "hog"}, "agent_id": {"value": "S1"},
            "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}}],
            "command": {"value": "hog"}
        }))
        .unwrap();
        let (fw, tid) = (FrameworkId::new("F1"), TaskId::new("hog"));
        core.run_task(now, framework, task);
        core.spawned(now, &fw, &tid, 4242);
        core.limited(
            now,
            &fw,
            &tid,
            crate::isolation::REASON_CONTAINER_LIMITATION_MEMORY,
            "Memory limit exceeded: Requested: 64MB",
        );
        // Queued behind the unacknowledged STARTING and RUNNING.
        let pending = core.pending_updates(&fw, &tid);
        let failed = pending.last().expect("queued updates").clone();
        assert_eq!(failed.state, TaskState::TaskFailed);
        assert_eq!(
            failed.reason.as_deref(),
            Some("REASON_CONTAINER_LIMITATION_MEMORY")
        );
        assert_eq!(failed.source, Some(StatusSource::SourceAgent));
        assert!(failed.message.unwrap().contains("64MB"));
        // A later exit report changes nothing.
        assert!(core
            .exited(now, &fw, &tid, super::super::Exit::Signal(9))
            .is_empty());
        assert!(core.limited(now, &fw, &tid, "R", "m").is_empty());
    }
}
