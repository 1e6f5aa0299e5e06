//! The v1 scheduler API messages: `Call` (requests to `POST /api/v1/scheduler`) and `Event` (records
//! on the subscription stream), mesos-http-api.md section 8.
//!
//! `Call::kind` stays a string so the master can tell an unknown call (400, naming it) from the
//! explicit `UNKNOWN` (501) instead of failing in the deserializer.

use crate::ids::*;
use crate::resources::{AllocationInfo, Attribute, Resource};
use crate::serde_util;
use crate::task::{ExecutorInfo, KillPolicy, TaskGroupInfo, TaskInfo, TaskStatus};
use crate::{FrameworkInfo, MasterInfo};
use serde::{Deserialize, Serialize};

/// Default and cap of `Filters.refuse_seconds` (mesos-http-api.md 8.3).
pub const REFUSE_SECONDS_DEFAULT: f64 = 5.0;
pub const REFUSE_SECONDS_MAX: f64 = 31_536_000.0;

/// Heartbeat interval announced in SUBSCRIBED.
pub const HEARTBEAT_INTERVAL_SECS: f64 = 15.0;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Filters {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "serde_util::lenient_opt_f64"
    )]
    pub refuse_seconds: Option<f64>,
}

impl Filters {
    /// `refuse_seconds` with the default applied and clamped to the spec's range.
    pub fn refuse_seconds(filters: Option<&Filters>) -> f64 {
        let value = filters
            .and_then(|f| f.refuse_seconds)
            .unwrap_or(REFUSE_SECONDS_DEFAULT);
        if value.is_nan() || value < 0.0 {
            REFUSE_SECONDS_DEFAULT
        } else {
            value.min(REFUSE_SECONDS_MAX)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Launch {
    #[serde(default)]
    pub task_infos: Vec<TaskInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// `LAUNCH`, `LAUNCH_GROUP`, `RESERVE`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Accept {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decline {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Roles {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shutdown {
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    #[serde(default)]
    pub tasks: Vec<ReconcileTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    /// Base64.
    #[serde(default)]
    pub data: String,
}

/// A request to `POST /api/v1/scheduler`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<Shutdown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

impl Call {
    pub fn new(kind: &str, framework_id: Option<FrameworkId>) -> Self {
        Call {
            kind: kind.to_string(),
            framework_id,
            subscribe: None,
            accept: None,
            decline: None,
            revive: None,
            suppress: None,
            kill: None,
            shutdown: None,
            acknowledge: None,
            reconcile: None,
            message: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Url {
    pub scheme: String,
    pub address: crate::Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    #[serde(
        serialize_with = "serde_util::ser_f64",
        deserialize_with = "serde_util::lenient_f64"
    )]
    pub heartbeat_interval_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default)]
    pub offers: Vec<Offer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescind {
    pub offer_id: OfferId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

/// One record on a scheduler subscription stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
}

impl Event {
    fn bare(kind: &str) -> Self {
        Event {
            kind: kind.to_string(),
            subscribed: None,
            offers: None,
            rescind: None,
            update: None,
            message: None,
            failure: None,
            error: None,
        }
    }
    pub fn heartbeat() -> Self {
        Event::bare("HEARTBEAT")
    }
    pub fn subscribed(subscribed: Subscribed) -> Self {
        Event {
            subscribed: Some(subscribed),
            ..Event::bare("SUBSCRIBED")
        }
    }
    pub fn offers(offers: Vec<Offer>) -> Self {
        Event {
            offers: Some(Offers { offers }),
            ..Event::bare("OFFERS")
        }
    }
    pub fn rescind(offer_id: OfferId) -> Self {
        Event {
            rescind: Some(Rescind { offer_id }),
            ..Event::bare("RESCIND")
        }
    }
    pub fn update(status: TaskStatus) -> Self {
        Event {
            update: Some(Update { status }),
            ..Event::bare("UPDATE")
        }
    }
    pub fn message(message: Message) -> Self {
        Event {
            message: Some(message),
            ..Event::bare("MESSAGE")
        }
    }
    pub fn failure(failure: Failure) -> Self {
        Event {
            failure: Some(failure),
            ..Event::bare("FAILURE")
        }
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
    fn subscribe_call_parses_the_spec_example() {
        let call: Call = serde_json::from_str(
            r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"svc","name":"batch",
             "roles":["dev"],"failover_timeout":604800.0,"checkpoint":true,
             "capabilities":[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"}]}},"credentials":{}}"#,
        )
        .unwrap();
        assert_eq!(call.kind, "SUBSCRIBE");
        let info = call.subscribe.unwrap().framework_info;
        assert!(info.is_partition_aware());
        assert_eq!(info.failover_timeout, 604800.0);
    }

    #[test]
    fn events_serialize_single_line_with_lowercase_payload_keys() {
        let json = serde_json::to_string(&Event::heartbeat()).unwrap();
        assert_eq!(json, r#"{"type":"HEARTBEAT"}"#);
        let json = serde_json::to_string(&Event::error("x")).unwrap();
        assert_eq!(json, r#"{"type":"ERROR","error":{"message":"x"}}"#);
    }

    #[test]
    fn refuse_seconds_default_and_cap() {
        assert_eq!(Filters::refuse_seconds(None), 5.0);
        let f = Filters {
            refuse_seconds: Some(1e12),
        };
        assert_eq!(Filters::refuse_seconds(Some(&f)), REFUSE_SECONDS_MAX);
    }
}
