//! The v1 executor API messages: `Call` (requests to the agent's `POST /api/v1/executor`) and
//! `Event` (records on the executor's subscription stream), mesos-http-api.md section 9.
//!
//! Like the scheduler API (`scheduler.rs`), `Call::kind` and `Event::kind` stay strings, so the
//! agent can answer an unknown call with a 400 naming it instead of failing in the deserializer,
//! and each payload sits under the lower-cased type name (`launch`, `kill`, `acknowledged`, ...)
//! as the JSON mapping of Mesos' protobufs has it.

use crate::agent_protocol::AgentInfo;
use crate::ids::*;
use crate::task::{ExecutorInfo, KillPolicy, TaskGroupInfo, TaskInfo, TaskStatus};
use crate::FrameworkInfo;
use serde::{Deserialize, Serialize};

/// How often the agent sends HEARTBEAT on an executor's stream.
pub const EXECUTOR_HEARTBEAT_SECS: u64 = 30;

/// `subscribe`: what an executor that reconnects still waits to hear about (section 9).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Subscribe {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_updates: Vec<Update>,
}

/// `update`: one status of a task, with the executor's own `uuid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// `message`: bytes for the framework (base64 in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub data: String,
}

/// One request to `POST /api/v1/executor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// `SUBSCRIBE`, `UPDATE`, `MESSAGE`, `HEARTBEAT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Required; optional here so that its absence is a 400 naming it, not a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub executor_info: ExecutorInfo,
    pub framework_info: FrameworkInfo,
    pub agent_info: AgentInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub task: TaskInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub task_group: TaskGroupInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub task_id: TaskId,
    /// Base64 of the acknowledged update's uuid, as the executor sent it.
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

/// One record on an executor's subscription stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledged>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
}

impl Event {
    fn bare(kind: &str) -> Self {
        Event {
            kind: kind.to_string(),
            subscribed: None,
            launch: None,
            launch_group: None,
            kill: None,
            acknowledged: None,
            message: None,
            error: None,
        }
    }
    pub fn subscribed(subscribed: Subscribed) -> Self {
        Event {
            subscribed: Some(subscribed),
            ..Event::bare("SUBSCRIBED")
        }
    }
    pub fn launch(task: TaskInfo) -> Self {
        Event {
            launch: Some(Launch { task }),
            ..Event::bare("LAUNCH")
        }
    }
    pub fn launch_group(tasks: Vec<TaskInfo>) -> Self {
        Event {
            launch_group: Some(LaunchGroup {
                task_group: TaskGroupInfo { tasks },
            }),
            ..Event::bare("LAUNCH_GROUP")
        }
    }
    pub fn kill(task_id: TaskId, kill_policy: Option<KillPolicy>) -> Self {
        Event {
            kill: Some(Kill {
                task_id,
                kill_policy,
            }),
            ..Event::bare("KILL")
        }
    }
    pub fn acknowledged(task_id: TaskId, uuid: String) -> Self {
        Event {
            acknowledged: Some(Acknowledged { task_id, uuid }),
            ..Event::bare("ACKNOWLEDGED")
        }
    }
    pub fn message(data: String) -> Self {
        Event {
            message: Some(Message { data }),
            ..Event::bare("MESSAGE")
        }
    }
    pub fn shutdown() -> Self {
        Event::bare("SHUTDOWN")
    }
    pub fn heartbeat() -> Self {
        Event::bare("HEARTBEAT")
    }
    pub fn error(message: impl Into<String>) -> Self {
        Event {
            error: Some(ErrorEvent {
                message: message.into(),
            }),
            ..Event::bare("ERROR")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_parse_as_pymesos_sends_them() {
        let call: Call = serde_json::from_str(
            r#"{"type":"SUBSCRIBE","framework_id":{"value":"F1"},"executor_id":{"value":"e1"},
                "subscribe":{"unacknowledged_tasks":[],"unacknowledged_updates":[]}}"#,
        )
        .unwrap();
        assert_eq!(call.kind, "SUBSCRIBE");
        assert_eq!(call.executor_id, Some(ExecutorId::new("e1")));
        let call: Call = serde_json::from_str(
            r#"{"type":"UPDATE","framework_id":{"value":"F1"},"executor_id":{"value":"e1"},
                "update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","timestamp":1700000000,
                "uuid":"AAAAAAAAAAAAAAAAAAAAAA==","source":"SOURCE_EXECUTOR"}}}"#,
        )
        .unwrap();
        let status = call.update.unwrap().status;
        assert_eq!(
            status.timestamp,
            Some(1_700_000_000.0),
            "integer timestamps are accepted"
        );
        let call: Call = serde_json::from_str(r#"{"type":"HEARTBEAT"}"#).unwrap();
        assert!(call.framework_id.is_none());
    }

    #[test]
    fn events_put_their_payload_under_the_lower_cased_type() {
        let json =
            serde_json::to_value(Event::acknowledged(TaskId::new("t"), "dXU=".into())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "ACKNOWLEDGED", "acknowledged": {"task_id": {"value": "t"}, "uuid": "dXU="}})
        );
        assert_eq!(
            serde_json::to_string(&Event::shutdown()).unwrap(),
            r#"{"type":"SHUTDOWN"}"#
        );
        let kill = serde_json::to_value(Event::kill(TaskId::new("t"), None)).unwrap();
        assert_eq!(kill["kill"]["task_id"]["value"], "t");
    }
}
