//! Finding the leading master: the same `election` API the agents use (`crates/agent/src/
//! master_link.rs`), plus reading the `Location` of a standby's 307.
//!
//! - `zk://`/`file://`: `Election::zookeeper(url, timeout, None)` detects without contending
//!   (mesos-ha.md 2.2: lowest sequence leads; `MasterInfo` from `json.info_*`). The client waits on
//!   its watch for the leader to change (`election::detect`, Mesos' `detect(previous)`).
//! - `host:port`: a `StandaloneDetector` that always names that address. Whoever answers there
//!   either serves (leader), redirects with 307 to `//leader-host:port/path`, or answers 503 when no
//!   leader is known or it is still recovering (mesos-http-api.md section 2); the subscription loop
//!   follows the redirect for that attempt only and starts again from the configured address on the
//!   next one, so a dead leader never becomes sticky.

use crate::config::MasterAddress;
use crate::error::ClientError;
use election::{Detector, Election, Leader, StandaloneDetector};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Redirects followed within one subscription attempt before giving up on it (loop guard).
pub const REDIRECTS_MAX: usize = 5;

/// The detector for `address`. Must run inside the tokio runtime (ZooKeeper runs a task).
pub fn detector(
    address: &MasterAddress,
    zk_session_timeout: Duration,
) -> Result<Arc<dyn Detector>, ClientError> {
    match address {
        MasterAddress::ZooKeeper(url) => Ok(Arc::new(Election::zookeeper(
            url.clone(),
            zk_session_timeout,
            None,
        ))),
        MasterAddress::Fixed(endpoint) => {
            let detector = StandaloneDetector::new(endpoint)
                .map_err(|e| ClientError::BadMaster(e.to_string()))?;
            Ok(Arc::new(detector))
        }
    }
}

/// Waits for a leader different from `current`. Never resolves when the detector can report no
/// further change (a fixed address, or a detector that is gone), so it can sit in a `select!`.
pub async fn changed(
    rx: &mut watch::Receiver<Option<Leader>>,
    current: Option<&Leader>,
) -> Option<Leader> {
    let next = election::detect(rx, current).await;
    if next.as_ref() == current {
        std::future::pending::<()>().await;
    }
    next
}

/// The `host:port` a 307 `Location` points at. Masters write a protocol-relative URL
/// (`//leader:5050/api/v1/scheduler`); absolute `http://` URLs are accepted too, like pymesos
/// which "takes the `host:port` part of `Location`" (mesos-http-api.md section 2).
pub fn location_endpoint(location: &str) -> Option<String> {
    let rest = location
        .trim()
        .strip_prefix("//")
        .or_else(|| location.trim().strip_prefix("http://"))
        .or_else(|| location.trim().strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map(|(_, a)| a)
        .unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() => {
            (host, port.parse::<u16>().ok().filter(|p| *p > 0)?)
        }
        // Mesos always names the port; without one, the scheme's default.
        _ => (authority, 80),
    };
    if host.is_empty() {
        return None;
    }
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_locations_masters_write() {
        assert_eq!(
            location_endpoint("//m2.example.org:5050/api/v1/scheduler").as_deref(),
            Some("m2.example.org:5050")
        );
        assert_eq!(
            location_endpoint("//10.0.0.12:5050").as_deref(),
            Some("10.0.0.12:5050")
        );
        assert_eq!(
            location_endpoint("http://10.0.0.12:5050/x?y=1").as_deref(),
            Some("10.0.0.12:5050")
        );
        assert_eq!(location_endpoint("//m2").as_deref(), Some("m2:80"));
        assert_eq!(location_endpoint("/api/v1/scheduler"), None);
        assert_eq!(location_endpoint("//:5050/x"), None);
        assert_eq!(location_endpoint("//m2:notaport/x"), None);
        assert_eq!(location_endpoint(""), None);
    }

    #[tokio::test]
    async fn a_fixed_detector_never_reports_a_change() {
        let address = MasterAddress::parse("127.0.0.1:5050").unwrap();
        let detector = detector(&address, Duration::from_secs(1)).unwrap();
        let mut rx = detector.leader();
        let current = rx.borrow().clone();
        assert_eq!(
            current.as_ref().map(|l| l.endpoint.as_str()),
            Some("127.0.0.1:5050")
        );
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            changed(&mut rx, current.as_ref()),
        )
        .await;
        assert!(waited.is_err(), "a fixed address never changes");
    }
}
