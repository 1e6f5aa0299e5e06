//! The content of checkpoint files: JSON, each with a `version`; `task.updates` is one JSON record
//! a line. A record of a newer version is refused (an error), never misread.

use crate::core::UpdateRecord;
use proto::agent_protocol::AgentInfo;
use proto::{ContainerId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskInfo};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const CHECKPOINT_VERSION: u32 = 1;

/// `slave.info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub version: u32,
    pub info: AgentInfo,
}

/// `framework.info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkRecord {
    pub version: u32,
    pub info: FrameworkInfo,
}

/// `task.info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub version: u32,
    pub framework_id: FrameworkId,
    pub task: TaskInfo,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
}

/// `executor.info` of a custom executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorRecord {
    pub version: u32,
    pub framework_id: FrameworkId,
    pub info: ExecutorInfo,
}

/// `executor.run`: one run (container) of a custom executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorRunRecord {
    pub version: u32,
    pub container_id: ContainerId,
    pub sandbox: PathBuf,
}

/// `forked.pid`: the process the launcher started for a custom executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkedRecord {
    pub version: u32,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

/// One line of `task.updates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateLine {
    pub version: u32,
    #[serde(flatten)]
    pub record: UpdateRecord,
}

/// `exit_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub version: u32,
    pub wait_status: i32,
}

/// Anything with a `version` field.
#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

/// Parses a checkpoint record, checking its version first.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let versioned: Versioned =
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable: {e}"))?;
    if versioned.version > CHECKPOINT_VERSION {
        return Err(format!(
            "written by a newer tepui (checkpoint version {}, this one reads up to {CHECKPOINT_VERSION})",
            versioned.version
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("unreadable: {e}"))
}

/// A record as bytes (these types hold only JSON-representable data: this cannot fail).
pub fn to_bytes<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

/// `/proc/<pid>/stat` field 22 (start time), if the process exists.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The host's boot id, if the kernel tells it.
pub fn host_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_content() {
        let ok: ExitRecord = parse(br#"{"version":1,"wait_status":256}"#).unwrap();
        assert_eq!(ok.wait_status, 256);
        let newer = parse::<ExitRecord>(br#"{"version":9,"wait_status":"?"}"#).unwrap_err();
        assert!(newer.contains("newer"), "{newer}");
        assert!(parse::<ExitRecord>(br#"{"version":1,"wait_sta"#).is_err());
    }

    #[test]
    fn update_lines_are_flat_and_round_trip() {
        let line = UpdateLine {
            version: CHECKPOINT_VERSION,
            record: UpdateRecord::Ack { uuid: "u1".into() },
        };
        let bytes = to_bytes(&line);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"version":1,"type":"ACK","uuid":"u1"}"#
        );
        assert_eq!(parse::<UpdateLine>(&bytes).unwrap(), line);
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some());
        assert!(host_boot_id().is_some());
    }
}
