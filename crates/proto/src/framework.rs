//! `FrameworkInfo` as schedulers send it in SUBSCRIBE (mesos-http-api.md 8.1).

use crate::ids::FrameworkId;
use crate::serde_util;
use crate::Labels;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkCapability {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    /// Seconds; protobuf default 0.0 is always written (mesos-http-api.md section 1).
    #[serde(
        default,
        deserialize_with = "serde_util::lenient_f64",
        serialize_with = "serde_util::ser_f64"
    )]
    pub failover_timeout: f64,
    #[serde(default, deserialize_with = "serde_util::lenient_bool")]
    pub checkpoint: bool,
    /// Deprecated single role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<FrameworkCapability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

impl FrameworkInfo {
    /// The roles this framework subscribes with: `roles` for MULTI_ROLE frameworks, otherwise the
    /// single `role`, defaulting to `*`.
    pub fn effective_roles(&self) -> Vec<String> {
        if self.has_capability("MULTI_ROLE") && !self.roles.is_empty() {
            self.roles.clone()
        } else if let Some(role) = &self.role {
            vec![role.clone()]
        } else if !self.roles.is_empty() {
            self.roles.clone()
        } else {
            vec!["*".to_string()]
        }
    }

    pub fn has_capability(&self, kind: &str) -> bool {
        self.capabilities.iter().any(|c| c.kind == kind)
    }

    pub fn is_partition_aware(&self) -> bool {
        self.has_capability("PARTITION_AWARE")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_roles() {
        let f: FrameworkInfo = serde_json::from_str(r#"{"user":"u","name":"n"}"#).unwrap();
        assert_eq!(f.effective_roles(), vec!["*"]);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["failover_timeout"], 0.0);
        assert_eq!(json["checkpoint"], false);
        let f: FrameworkInfo = serde_json::from_str(
            r#"{"user":"u","name":"n","roles":["dev"],"capabilities":[{"type":"MULTI_ROLE"}],"failover_timeout":"100"}"#,
        )
        .unwrap();
        assert_eq!(f.effective_roles(), vec!["dev"]);
        assert_eq!(f.failover_timeout, 100.0);
    }
}
