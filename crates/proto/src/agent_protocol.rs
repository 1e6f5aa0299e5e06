//! The internal protocol between the leading master and agents (tepui's own, over HTTP).
//!
//! An agent opens `POST /internal/v1/agent` with a `REGISTER` or `REREGISTER` call; the answer is a
//! RecordIO stream of `MasterToAgent` messages that stays open while the master leads. Every other
//! agent call (status updates, pongs) is a separate `POST` to the same path carrying the agent id.
//! A broken stream tells the agent to detect the leader again; the master's pings tell the master
//! the agent is alive (mesos-ha.md, agent health).
//!
//! Every message carries `PROTOCOL_VERSION` so a later release can refuse an older peer with a
//! clear message instead of misreading it.

use crate::ids::*;
use crate::resources::{Attribute, Resource};
use crate::task::{ExecutorInfo, KillPolicy, TaskInfo, TaskStatus};
use crate::{FrameworkInfo, MasterInfo};
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;
pub const AGENT_PATH: &str = "/internal/v1/agent";
/// Header naming the agent on calls after registration.
pub const AGENT_ID_HEADER: &str = "tepui-agent-id";

/// What an agent tells the master about itself (Mesos `SlaveInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<AgentId>,
    pub hostname: String,
    pub port: u16,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

/// A task the agent reports when it re-registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedTask {
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_status: Option<TaskStatus>,
}

use crate::task::TaskState;

/// A status update as the agent forwards it, with the framework it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub framework_id: FrameworkId,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentCall {
    Register {
        protocol_version: u32,
        agent_info: AgentInfo,
        /// `ip:port` of the agent's HTTP server, as `pid` shows it (`slave(1)@ip:port`).
        endpoint: String,
        version: String,
    },
    Reregister {
        protocol_version: u32,
        agent_info: AgentInfo,
        endpoint: String,
        version: String,
        #[serde(default)]
        tasks: Vec<ReportedTask>,
        #[serde(default)]
        frameworks: Vec<FrameworkInfo>,
    },
    StatusUpdate {
        protocol_version: u32,
        update: StatusUpdate,
    },
    ExecutorExited {
        protocol_version: u32,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        status: i32,
    },
    Pong {
        protocol_version: u32,
    },
    /// A message from an executor to its framework (delivered as a MESSAGE event, best effort).
    ExecutorMessage {
        protocol_version: u32,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        /// Base64.
        data: String,
    },
}

impl AgentCall {
    pub fn protocol_version(&self) -> u32 {
        match self {
            AgentCall::Register {
                protocol_version, ..
            }
            | AgentCall::Reregister {
                protocol_version, ..
            }
            | AgentCall::StatusUpdate {
                protocol_version, ..
            }
            | AgentCall::ExecutorExited {
                protocol_version, ..
            }
            | AgentCall::Pong { protocol_version }
            | AgentCall::ExecutorMessage {
                protocol_version, ..
            } => *protocol_version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MasterToAgent {
    Registered {
        protocol_version: u32,
        agent_id: AgentId,
        master_info: MasterInfo,
        /// `agent_ping_timeout * max_agent_ping_timeouts`: an agent that hears nothing for this
        /// long re-detects and re-registers (mesos-ha.md 3.3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ping_timeout_total_secs: Option<f64>,
    },
    RunTask {
        framework: FrameworkInfo,
        task: TaskInfo,
    },
    RunTaskGroup {
        framework: FrameworkInfo,
        executor: ExecutorInfo,
        tasks: Vec<TaskInfo>,
    },
    KillTask {
        framework_id: FrameworkId,
        task_id: TaskId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kill_policy: Option<KillPolicy>,
    },
    AcknowledgeUpdate {
        framework_id: FrameworkId,
        task_id: TaskId,
        uuid: String,
    },
    ShutdownFramework {
        framework_id: FrameworkId,
    },
    /// Stop one executor (the scheduler's SHUTDOWN call): a custom executor gets SHUTDOWN and is
    /// killed after its grace period; a command task's executor (id = task id) kills its task.
    ShutdownExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
    },
    FrameworkMessage {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        data: String,
    },
    /// Ask the agent to resend the latest state of these tasks (empty: all of the framework's).
    ReconcileTasks {
        framework_id: FrameworkId,
        #[serde(default)]
        task_ids: Vec<TaskId>,
    },
    Ping,
    /// The agent is not welcome (removed, or refused); it must stop.
    Shutdown {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_by_type() {
        let json = serde_json::to_string(&MasterToAgent::Ping).unwrap();
        assert_eq!(json, r#"{"type":"PING"}"#);
        let call = AgentCall::Pong {
            protocol_version: PROTOCOL_VERSION,
        };
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(json, r#"{"type":"PONG","protocol_version":1}"#);
        let back: AgentCall = serde_json::from_str(&json).unwrap();
        assert_eq!(back.protocol_version(), 1);
    }
}
