//! What the client is told at start: where the master is, who the framework is, and the timing
//! knobs (backoff, heartbeat tolerance, request deadlines).
//!
//! The master address takes the two forms schedulers use (mesos-ha.md 2.1): a ZooKeeper URL
//! (`zk://[user:pass@]host:port[,...]/path` or `file:///path` holding one) whose leader is detected
//! and followed, or a fixed `host:port` whose 307 redirects are followed to the leader
//! (mesos-http-api.md section 2).

use crate::backoff::{BACKOFF_INITIAL_DEFAULT, BACKOFF_MAX_DEFAULT};
use crate::error::ClientError;
use proto::{FrameworkId, FrameworkInfo};
use std::time::Duration;

/// Heartbeats that may go missing before the connection is declared dead (mesos-http-api.md 8.6:
/// "about 5 missed heartbeats").
pub const HEARTBEATS_MISSED_MAX: u32 = 5;
/// ZooKeeper session timeout of the detector (Mesos' `--zk_session_timeout` default, mesos-ha.md 2.4).
pub const ZK_SESSION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Deadline for the SUBSCRIBE response headers and its first record.
pub const SUBSCRIBE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Deadline of one non-streaming call.
pub const CALL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// TCP connect deadline of every request.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Where the leading master is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterAddress {
    /// Leader detection through ZooKeeper (`zk://` or `file://`).
    ZooKeeper(election::ZkUrl),
    /// One fixed `host:port`; a standby there redirects to the leader.
    Fixed(String),
}

impl MasterAddress {
    /// Parses `zk://...`, `file://...` or `host:port` (an `http://` prefix and trailing `/` are
    /// tolerated on the fixed form).
    pub fn parse(text: &str) -> Result<MasterAddress, ClientError> {
        let text = text.trim();
        if election::is_zk(text) {
            let url =
                election::ZkUrl::parse(text).map_err(|e| ClientError::BadMaster(e.to_string()))?;
            return Ok(MasterAddress::ZooKeeper(url));
        }
        let bare = text
            .strip_prefix("http://")
            .unwrap_or(text)
            .trim_end_matches('/');
        let valid = bare.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(ClientError::BadMaster(format!(
                "'{text}': expected host:port, zk://host:port[,host:port...]/path or file:///path"
            )));
        }
        Ok(MasterAddress::Fixed(bare.to_string()))
    }
}

/// Everything `SchedulerClient::start` needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `zk://.../mesos`, `file:///...` or `host:port`.
    pub master: String,
    /// Sent in every SUBSCRIBE. Its `id` is managed by the client (see `failover`).
    pub framework_info: FrameworkInfo,
    /// `true`: this process takes over an existing framework, so the first SUBSCRIBE carries
    /// `framework_id` (or, if that is unset, `framework_info.id`) and the master keeps its tasks.
    /// `false`: register a new framework (any stored id is ignored). Either way, re-subscriptions
    /// after a broken stream or a new leader always carry the id the master assigned.
    pub failover: bool,
    /// A framework id stored by the caller from an earlier run (used when `failover`).
    pub framework_id: Option<FrameworkId>,
    /// First backoff bound and its cap (mesos-http-api.md 8.6).
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Heartbeats that may go missing before the stream counts as dead.
    pub heartbeats_missed_max: u32,
    pub zk_session_timeout: Duration,
    pub subscribe_timeout: Duration,
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Forward `HEARTBEAT` events to the caller (off by default: the client watches them itself).
    pub forward_heartbeats: bool,
    /// Capacity of the events channel.
    pub events_capacity: usize,
}

impl ClientConfig {
    /// A configuration with the defaults above.
    pub fn new(master: impl Into<String>, framework_info: FrameworkInfo, failover: bool) -> Self {
        ClientConfig {
            master: master.into(),
            framework_info,
            failover,
            framework_id: None,
            backoff_initial: BACKOFF_INITIAL_DEFAULT,
            backoff_max: BACKOFF_MAX_DEFAULT,
            heartbeats_missed_max: HEARTBEATS_MISSED_MAX,
            zk_session_timeout: ZK_SESSION_TIMEOUT_DEFAULT,
            subscribe_timeout: SUBSCRIBE_TIMEOUT_DEFAULT,
            call_timeout: CALL_TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            forward_heartbeats: false,
            events_capacity: 1024,
        }
    }

    /// The id the first SUBSCRIBE carries.
    pub(crate) fn initial_framework_id(&self) -> Option<FrameworkId> {
        if !self.failover {
            return None;
        }
        self.framework_id
            .clone()
            .or_else(|| self.framework_info.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> FrameworkInfo {
        serde_json::from_str(r#"{"user":"u","name":"n","id":{"value":"F1"}}"#).unwrap()
    }

    #[test]
    fn parses_both_address_forms() {
        assert_eq!(
            MasterAddress::parse("10.0.0.1:5050").unwrap(),
            MasterAddress::Fixed("10.0.0.1:5050".into())
        );
        assert_eq!(
            MasterAddress::parse("http://m1:5050/").unwrap(),
            MasterAddress::Fixed("m1:5050".into())
        );
        match MasterAddress::parse("zk://h1:2181,h2:2181/mesos").unwrap() {
            MasterAddress::ZooKeeper(url) => assert_eq!(url.path, "/mesos"),
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "m1",
            "m1:",
            ":5050",
            "m1:99999",
            "m1:0",
            "zk://h1/mesos",
            "http://m1:5050/x/y",
        ] {
            assert!(
                matches!(MasterAddress::parse(bad), Err(ClientError::BadMaster(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn failover_decides_the_first_framework_id() {
        let mut config = ClientConfig::new("m:5050", info(), false);
        assert_eq!(config.initial_framework_id(), None);
        config.failover = true;
        assert_eq!(config.initial_framework_id(), Some(FrameworkId::new("F1")));
        config.framework_id = Some(FrameworkId::new("F2"));
        assert_eq!(config.initial_framework_id(), Some(FrameworkId::new("F2")));
    }
}
