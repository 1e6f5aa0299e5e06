//! Task JSON (marathon-api.md §5) and `lastTaskFailure` (§3) as plain structs with
//! serializers. The caller fills them from its runtime state.
//!
//! **\[compat\]** no `checkResult`: the Python client rejects unknown task keys.
//! Absent optionals are omitted (`startedAt` until the task runs, `region`/`zone`
//! when unknown); health-result timestamps are written as `null` when unset, as §5
//! allows.

use serde::{Deserialize, Serialize};

use crate::id::PathId;
use crate::time::Timestamp;

/// One entry of a task's `ipAddresses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub ip_address: String,
    /// `IPv4` or `IPv6`.
    pub protocol: String,
}

impl IpAddress {
    /// `IPv6` when the address contains `:`, else `IPv4`.
    pub fn new(ip: &str) -> IpAddress {
        let protocol = if ip.contains(':') { "IPv6" } else { "IPv4" };
        IpAddress {
            ip_address: ip.to_string(),
            protocol: protocol.to_string(),
        }
    }
}

/// One entry of `healthCheckResults` (one per health check of the app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    pub first_success: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    pub last_failure_cause: Option<String>,
    pub instance_id: String,
}

/// A task as `/v2/tasks`, `/v2/apps/{id}/tasks` and `app.tasks` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub app_id: PathId,
    pub host: String,
    /// `TASK_STAGING`, `TASK_RUNNING`, …
    pub state: String,
    pub slave_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged_at: Option<Timestamp>,
    /// Absent until the task runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// The app version the task runs.
    pub version: Timestamp,
    /// Host ports.
    pub ports: Vec<u32>,
    /// At least as long as `ports` (§9).
    pub service_ports: Vec<u32>,
    pub ip_addresses: Vec<IpAddress>,
    pub health_check_results: Vec<HealthCheckResult>,
    pub local_volumes: Vec<serde_json::Value>,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// `lastTaskFailure` of an app. Also its stored form (the leader keeps one per app in the store,
/// so it survives a failover), hence `Deserialize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastTaskFailure {
    pub app_id: PathId,
    pub host: String,
    pub message: String,
    pub state: String,
    pub task_id: String,
    pub timestamp: Timestamp,
    pub version: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> Task {
        Task {
            id: "hello2.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1".into(),
            app_id: PathId::parse("/hello2").unwrap(),
            host: "agent-1".into(),
            state: "TASK_STAGING".into(),
            slave_id: "S0".into(),
            staged_at: Some(Timestamp(1_714_564_800_512)),
            started_at: None,
            version: Timestamp(1_714_564_800_123),
            ports: vec![31742],
            service_ports: vec![10000],
            ip_addresses: vec![IpAddress::new("10.0.0.11")],
            health_check_results: vec![],
            local_volumes: vec![],
            role: "*".into(),
            region: None,
            zone: None,
        }
    }

    #[test]
    fn staging_task_has_no_started_at_nor_check_result() {
        let v = serde_json::to_value(task()).unwrap();
        assert_eq!(
            v,
            json!({"id":"hello2.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1","appId":"/hello2",
                   "host":"agent-1","state":"TASK_STAGING","slaveId":"S0","stagedAt":"2024-05-01T12:00:00.512Z",
                   "version":"2024-05-01T12:00:00.123Z","ports":[31742],"servicePorts":[10000],
                   "ipAddresses":[{"ipAddress":"10.0.0.11","protocol":"IPv4"}],"healthCheckResults":[],
                   "localVolumes":[],"role":"*"})
        );
        assert_eq!(IpAddress::new("::1").protocol, "IPv6");
    }

    #[test]
    fn health_results_write_null_timestamps() {
        let r = HealthCheckResult {
            alive: true,
            consecutive_failures: 0,
            first_success: Some(Timestamp(0)),
            last_success: Some(Timestamp(0)),
            last_failure: None,
            last_failure_cause: None,
            instance_id: "x.instance-y".into(),
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["lastFailure"], json!(null));
        assert_eq!(v["firstSuccess"], json!("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn last_task_failure_shape() {
        let f = LastTaskFailure {
            app_id: PathId::parse("/a").unwrap(),
            host: "h".into(),
            message: "boom".into(),
            state: "TASK_FAILED".into(),
            task_id: "a.instance-x._app.1".into(),
            timestamp: Timestamp(1000),
            version: Timestamp(0),
            slave_id: None,
        };
        let v = serde_json::to_value(f).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 7);
        assert_eq!(v["timestamp"], json!("1970-01-01T00:00:01.000Z"));
    }
}
