//! Leader election and detection: who leads, and a way to wait until that changes.
//!
//! Two layers, as in Mesos (STYLE.md): a *group* of members on a coordination service (ZooKeeper's
//! ephemeral sequential nodes) and, on top, contending and detecting, where the lowest sequence
//! leads (`rules`). The master's payload (`MasterInfo`) is a parameter of the upper layer.
//!
//! - `rules`: the election rules as pure functions (who is a member, who leads, how data decodes).
//! - `group`: the election loop over any `Backend` (sessions, local expiry, membership, watches).
//! - `zookeeper`: the real backend; `memory`: an in-memory ensemble for tests and simulations.
//! - `url`: `zk://` and `file://` URLs as Mesos reads them.
//!
//! A master contends (`Contender::contend` returns an `Election` whose `candidacy` says whether it
//! leads); agents and standbys detect (`Election::leader`, or any `Detector`). Without ZooKeeper,
//! the standalone backend elects the one master at once.

pub mod group;
pub mod membership;
pub mod memory;
pub mod rules;
pub mod url;
pub mod zookeeper;

#[cfg(test)]
mod tests;

pub use group::{Backend, ElectionConfig, Session, SessionStatus};
pub use membership::Membership;
pub use url::{is_zk, UrlError, ZkUrl};

use proto::MasterInfo;
use std::time::Duration;
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
    /// No session could be opened: names the servers tried, so an operator sees which ZooKeeper
    /// is missing.
    #[error("cannot open a ZooKeeper session with {servers}: {reason}")]
    Unreachable { servers: String, reason: String },
    #[error("this contender's membership vanished")]
    MembershipLost,
    #[error("invalid master address '{0}': expected host:port or zk://...")]
    BadAddress(String),
    #[error("coordination service error: {0}")]
    Backend(String),
}

/// Tells who leads. `leader()` is a watch: read the current value, or wait for a change.
pub trait Detector: Send + Sync + 'static {
    fn leader(&self) -> watch::Receiver<Option<Leader>>;
}

/// Waits until the detected leader differs from `previous`, and returns it (Mesos' `detect(previous)`).
/// Returns `previous` back if the detector is gone.
pub async fn detect(
    rx: &mut watch::Receiver<Option<Leader>>,
    previous: Option<&Leader>,
) -> Option<Leader> {
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

/// A running election: what this process sees, and the handle to leave it.
pub struct Election {
    pub candidacy: watch::Receiver<Candidacy>,
    pub leader: watch::Receiver<Option<Leader>>,
    /// Every master registered in the group (`json.info_*` members) as `host:port`, lowest
    /// sequence first (so the leader, when known, comes first); empty for a standalone master,
    /// which has no peers. What a web UI offers when the leader it shows stops answering.
    pub masters: watch::Receiver<Vec<String>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Keeps fixed senders (standalone) alive so receivers never see them close.
    _fixed: Option<FixedSenders>,
}

type FixedSenders = (
    watch::Sender<Candidacy>,
    watch::Sender<Option<Leader>>,
    watch::Sender<Vec<String>>,
);

/// How long a withdrawal may take before the process goes on exiting anyway.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(5);

impl Election {
    /// One master, no peers: elected at once, and it leads.
    pub fn standalone(info: MasterInfo) -> Election {
        let (candidacy_tx, candidacy) = watch::channel(Candidacy::Elected);
        let leader_value = Leader {
            endpoint: info.endpoint(),
            info: Some(info),
        };
        let (leader_tx, leader) = watch::channel(Some(leader_value));
        let (masters_tx, masters) = watch::channel(Vec::new());
        let fixed = (candidacy_tx, leader_tx, masters_tx);
        Election {
            candidacy,
            leader,
            masters,
            stop: watch::channel(false).0,
            task: None,
            _fixed: Some(fixed),
        }
    }

    /// Runs the election loop on `backend` in the background.
    pub fn start<B: Backend>(backend: B, config: ElectionConfig) -> Election {
        let (candidacy_tx, candidacy) = watch::channel(Candidacy::Contending);
        let (leader_tx, leader) = watch::channel(None);
        let (masters_tx, masters) = watch::channel(Vec::new());
        let (stop, stop_rx) = watch::channel(false);
        let published = group::Published {
            leader: leader_tx,
            candidacy: candidacy_tx,
            masters: masters_tx,
        };
        let task = tokio::spawn(group::run(backend, config, published, stop_rx));
        Election {
            candidacy,
            leader,
            masters,
            stop,
            task: Some(task),
            _fixed: None,
        }
    }

    /// Contends (with `payload`) or only detects (`None`) under the URL's path in ZooKeeper.
    pub fn zookeeper(
        url: ZkUrl,
        session_timeout: Duration,
        payload: Option<&MasterInfo>,
    ) -> Election {
        let config = ElectionConfig {
            dir: url.path.clone(),
            session_timeout,
            payload: payload.map(|info| serde_json::to_vec(info).unwrap_or_default()),
        };
        Election::start(zookeeper::ZooKeeperBackend::new(url), config)
    }

    /// Leaves the election: deletes this contender's member and closes the session, so another
    /// master takes over at once (a graceful stop).
    pub async fn withdraw(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(WITHDRAW_TIMEOUT, task).await.is_err() {
                tracing::warn!("leaving the election took too long; exiting anyway");
            }
        }
    }
}

impl Detector for Election {
    fn leader(&self) -> watch::Receiver<Option<Leader>> {
        self.leader.clone()
    }
}

/// Puts a master up for election with its `MasterInfo` as payload.
pub trait Contender: Send + Sync + 'static {
    fn contend(&self, info: MasterInfo) -> Election;
}

/// A master with no peers.
#[derive(Default)]
pub struct StandaloneContender;

impl Contender for StandaloneContender {
    fn contend(&self, info: MasterInfo) -> Election {
        Election::standalone(info)
    }
}

/// A master contending in ZooKeeper.
pub struct ZooKeeperContender {
    pub url: ZkUrl,
    pub session_timeout: Duration,
}

impl Contender for ZooKeeperContender {
    fn contend(&self, info: MasterInfo) -> Election {
        Election::zookeeper(self.url.clone(), self.session_timeout, Some(&info))
    }
}

/// A detector that always names one fixed master (`--master=host:port`).
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
        let (sender, _) = watch::channel(Some(Leader {
            endpoint: address.to_string(),
            info: None,
        }));
        Ok(StandaloneDetector { sender })
    }
}

impl Detector for StandaloneDetector {
    fn leader(&self) -> watch::Receiver<Option<Leader>> {
        self.sender.subscribe()
    }
}
