//! `MasterInfo`, exactly as Mesos writes it into ZooKeeper's `json.info_<seq>` nodes and into
//! SUBSCRIBED events (mesos-ha.md section 2.3).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterCapability {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: String,
    /// Deprecated but always written: the IPv4 address in network byte order read as a little-endian
    /// `u32` (mesos-ha.md 2.3: `127.0.0.1` is `16777343`).
    pub ip: u32,
    pub port: u16,
    pub pid: String,
    pub hostname: String,
    pub version: String,
    pub address: Address,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<MasterCapability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
}

/// mesos-ha.md 2.3: `a.b.c.d` -> `d*2^24 + c*2^16 + b*2^8 + a`.
pub fn encode_ip(ip: Ipv4Addr) -> u32 {
    u32::from_le_bytes(ip.octets())
}

impl MasterInfo {
    pub fn new(id: String, ip: Ipv4Addr, port: u16, hostname: String) -> Self {
        MasterInfo {
            id,
            ip: encode_ip(ip),
            port,
            pid: format!("master@{ip}:{port}"),
            hostname: hostname.clone(),
            version: crate::MESOS_VERSION.to_string(),
            address: Address {
                hostname: Some(hostname),
                ip: Some(ip.to_string()),
                port,
            },
            capabilities: ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"]
                .iter()
                .map(|k| MasterCapability {
                    kind: k.to_string(),
                })
                .collect(),
            domain: None,
        }
    }

    /// `host:port` a client should connect to.
    pub fn endpoint(&self) -> String {
        let host = self
            .address
            .hostname
            .clone()
            .or_else(|| self.address.ip.clone())
            .unwrap_or_else(|| self.hostname.clone());
        format!("{host}:{}", self.address.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_encoding_matches_the_spec_examples() {
        assert_eq!(encode_ip("127.0.0.1".parse().unwrap()), 16777343);
        assert_eq!(encode_ip("10.0.0.11".parse().unwrap()), 184549386);
        assert_eq!(encode_ip("10.0.0.12".parse().unwrap()), 201326602);
    }

    #[test]
    fn master_info_has_pid_and_address() {
        let info = MasterInfo::new("m".into(), "10.0.0.11".parse().unwrap(), 5050, "m1".into());
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["pid"], "master@10.0.0.11:5050");
        assert_eq!(json["address"]["ip"], "10.0.0.11");
        assert_eq!(json["address"]["port"], 5050);
        assert_eq!(json["capabilities"][0]["type"], "AGENT_UPDATE");
    }
}
