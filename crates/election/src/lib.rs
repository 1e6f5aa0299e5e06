//! Leader election and detection: who leads, and a way to wait until that changes.
//!
//! Two layers, as in Mesos (STYLE.md): a *group* of members (ZooKeeper's ephemeral sequential nodes,
//! arriving with the HA issue) and, on top, a *contender/detector* pair where the lowest sequence
//! leads. The master's payload (`MasterInfo`) is a parameter of the upper layer.
//!
//! This crate now holds the traits and the standalone backend (one fixed master, no ZooKeeper):
//! `tepui master` without `--zk` contends with `StandaloneContender` and is elected at once;
//! `tepui agent --master=host:port` detects with `StandaloneDetector`.

use proto::MasterInfo;
use tokio::sync::watch;

/// The leading master as a detector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Leader {
    /// `host:port` to connect to.
    pub endpoint: String,
    /// The leader's `MasterInfo` when the backend knows it (ZooKeeper does; a fixed address does not).
    pub info: Option<MasterInfo>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ElectionError {
    #[error("the coordination session expired")]
    SessionExpired,
    #[error("lost the connection to the coordination service")]
    ConnectionLoss,
    #[error("invalid master address '{0}': expected host:port")]
    BadAddress(String),
}

/// Tells who leads. `leader()` is a watch: read the current value, or wait for a change.
pub trait Detector: Send + Sync + 'static {
    fn leader(&self) -> watch::Receiver<Option<Leader>>;
}

/// Waits until the detected leader differs from `previous`, and returns it (Mesos' `detect(previous)`).
/// Returns `previous` back if the detector is gone.
pub async fn detect(rx: &mut watch::Receiver<Option<Leader>>, previous: Option<&Leader>) -> Option<Leader> {
    loop {
        let current = rx.borrow_and_update().clone();
        if current.as_ref() != previous {
            return current;
        }
        if rx.changed().await.is_err() {
            return previous.cloned();
        }
    }
}

/// Where a contender stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidacy {
    Contending,
    Elected,
    /// Candidacy is gone (session expired, node deleted); a leader must exit (fail-fast).
    Lost(ElectionError),
}

/// Puts a master up for election with its `MasterInfo` as payload.
pub trait Contender: Send + Sync + 'static {
    fn contend(&self, info: MasterInfo) -> watch::Receiver<Candidacy>;
}

/// A master with no peers: elected as soon as it contends.
#[derive(Default)]
pub struct StandaloneContender;

impl Contender for StandaloneContender {
    fn contend(&self, _info: MasterInfo) -> watch::Receiver<Candidacy> {
        let (tx, rx) = watch::channel(Candidacy::Elected);
        // Keep the sender alive for the life of the process so receivers never see it close.
        std::mem::forget(tx);
        rx
    }
}

/// A detector that always names one fixed master, or the local master's own info.
pub struct StandaloneDetector {
    sender: watch::Sender<Option<Leader>>,
}

impl StandaloneDetector {
    /// `address` is `host:port`.
    pub fn new(address: &str) -> Result<Self, ElectionError> {
        let valid = address
            .rsplit_once(':')
            .map(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            .unwrap_or(false);
        if !valid {
            return Err(ElectionError::BadAddress(address.to_string()));
        }
        let (sender, _) = watch::channel(Some(Leader { endpoint: address.to_string(), info: None }));
        Ok(StandaloneDetector { sender })
    }

    pub fn with_info(info: MasterInfo) -> Self {
        let (sender, _) = watch::channel(Some(Leader { endpoint: info.endpoint(), info: Some(info) }));
        StandaloneDetector { sender }
    }
}

impl Detector for StandaloneDetector {
    fn leader(&self) -> watch::Receiver<Option<Leader>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn standalone_detector_names_its_master() {
        let d = StandaloneDetector::new("127.0.0.1:5050").unwrap();
        let mut rx = d.leader();
        let leader = detect(&mut rx, None).await.unwrap();
        assert_eq!(leader.endpoint, "127.0.0.1:5050");
        assert!(StandaloneDetector::new("nohost").is_err());
        assert!(StandaloneDetector::new("h:notaport").is_err());
    }

    #[tokio::test]
    async fn standalone_contender_is_elected() {
        let info = MasterInfo::new("id".into(), "127.0.0.1".parse().unwrap(), 5050, "h".into());
        let rx = StandaloneContender.contend(info);
        assert_eq!(*rx.borrow(), Candidacy::Elected);
    }
}
