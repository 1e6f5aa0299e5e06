//! `MarathonElection`: who leads, on Marathon's latch path `<root>/leader-curator`.
//!
//! Each instance creates one EPHEMERAL_SEQUENTIAL `member-<seq>` node whose data is its
//! `host:port`; the lowest sequence leads (Curator's `...-latch-<seq>` names parse the same way,
//! so the digits after the last `-` are the sequence). A contender watches the directory's
//! children and publishes `Leadership` on a `watch`.
//!
//! Leadership only moves forward: `Standby` -> `Leader` -> `Lost`. `Lost` is final: our node
//! vanished, the session expired or closed, the connection stayed down for a whole session
//! timeout, or we abdicated. The service then exits (marathon-api.md §8.1) and its supervisor
//! restarts it as a standby; a new leader rebuilds from the store, never from memory.
//!
//! The `election` crate's group loop is not reused: it decodes Mesos payloads (`json.info_`,
//! `MasterInfo`), and Marathon's participants hold plain `host:port`. Its `ZkUrl` is reused by
//! `connect`.

use crate::zk::{is_terminal, ZkConnection};
use crate::StoreError;
use std::time::Duration;
use tokio::sync::watch;
use zookeeper_client as zk;

/// Where this instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    Leader,
    /// Not leading; `leader` is the leader's `host:port` when known.
    Standby {
        leader: Option<String>,
    },
    /// Final: stop acting as leader and exit.
    Lost,
}

/// The prefix of our participant nodes.
pub const MEMBER_PREFIX: &str = "member-";

/// Pause before listing the participants again after a transient error.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// The sequence of a participant's name: the digits after the last `-` (or `_`).
pub fn member_sequence(name: &str) -> Option<u64> {
    let digits = &name[name.rfind(['-', '_']).map(|i| i + 1).unwrap_or(0)..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The leading participant among `children`: the lowest sequence.
pub fn leader_of(children: &[String]) -> Option<&String> {
    children
        .iter()
        .filter_map(|c| member_sequence(c).map(|s| (s, c)))
        .min()
        .map(|(_, c)| c)
}

/// Starts contending.
pub struct MarathonElection;

impl MarathonElection {
    /// Joins the election with `host_port` as our participant's data.
    pub async fn contend(
        connection: &ZkConnection,
        host_port: &str,
    ) -> Result<ElectionHandle, StoreError> {
        let dir = connection.layout.leader_dir();
        let client = connection.client.clone();
        client
            .mkdir(&dir, &connection.options(zk::CreateMode::Persistent))
            .await
            .map_err(|e| StoreError::from_zk(e, &dir))?;
        let prefix = format!("{dir}/{MEMBER_PREFIX}");
        let (_, sequence) = client
            .create(
                &prefix,
                host_port.as_bytes(),
                &connection.options(zk::CreateMode::EphemeralSequential),
            )
            .await
            .map_err(|e| StoreError::from_zk(e, &prefix))?;
        let name = format!("{MEMBER_PREFIX}{sequence}");
        tracing::info!(member = %name, %host_port, "contending for Marathon leadership");
        let (leadership_tx, leadership) = watch::channel(Leadership::Standby { leader: None });
        let (leader_tx, leader) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let contender = Contender {
            client: client.clone(),
            dir: dir.clone(),
            name: name.clone(),
            host_port: host_port.to_string(),
            leadership_tx,
            leader_tx,
        };
        let task = tokio::spawn(contender.run(stop_rx));
        Ok(ElectionHandle {
            leadership,
            leader,
            member: Some((client, format!("{dir}/{name}"))),
            stop,
            task: Some(task),
            _fixed: None,
        })
    }

    /// `--disable_ha`: one instance, no ZooKeeper for election, leading at once.
    pub fn standalone(host_port: &str) -> ElectionHandle {
        let (leadership_tx, leadership) = watch::channel(Leadership::Leader);
        let (leader_tx, leader) = watch::channel(Some(host_port.to_string()));
        ElectionHandle {
            leadership,
            leader,
            member: None,
            stop: watch::channel(false).0,
            task: None,
            _fixed: Some((leadership_tx, leader_tx)),
        }
    }
}

/// A running candidacy.
pub struct ElectionHandle {
    leadership: watch::Receiver<Leadership>,
    leader: watch::Receiver<Option<String>>,
    /// Our participant: the client and the node's path.
    member: Option<(zk::Client, String)>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Keeps the standalone senders alive.
    _fixed: Option<(watch::Sender<Leadership>, watch::Sender<Option<String>>)>,
}

impl ElectionHandle {
    /// Where we stand, as a watch (wait with `changed()` / `wait_for`).
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// The current leader's `host:port` (ours when leading), if known.
    pub fn leader(&self) -> Option<String> {
        self.leader.borrow().clone()
    }

    /// Our participant's path (`None` when standalone).
    pub fn member_path(&self) -> Option<&str> {
        self.member.as_ref().map(|(_, p)| p.as_str())
    }

    /// Leaves the election (`DELETE /v2/leader`): deletes our participant so another instance
    /// takes over at once. Leadership becomes `Lost`.
    pub async fn abdicate(mut self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some((tx, _)) = &self._fixed {
            tx.send_replace(Leadership::Lost);
        }
        if let Some((client, path)) = &self.member {
            match client.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => tracing::info!(member = %path, "abdicated"),
                Err(e) => return Err(StoreError::from_zk(e, path)),
            }
        }
        Ok(())
    }
}

impl Drop for ElectionHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct Contender {
    client: zk::Client,
    dir: String,
    name: String,
    host_port: String,
    leadership_tx: watch::Sender<Leadership>,
    leader_tx: watch::Sender<Option<String>>,
}

impl Contender {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut state = self.client.state_watcher();
        let session_timeout = self.client.session_timeout();
        let mut disconnected_at: Option<tokio::time::Instant> = None;
        loop {
            let watcher = match self.look().await {
                Ok(Some(watcher)) => Some(watcher),
                Ok(None) => return self.lose("our participant node vanished"),
                Err(e) if is_terminal(self.client.state()) => return self.lose(&e.to_string()),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list election participants yet");
                    None
                }
            };
            let changed = async {
                match watcher {
                    Some(w) => Some(w.changed().await),
                    None => {
                        tokio::time::sleep(RETRY_DELAY).await;
                        None
                    }
                }
            };
            tokio::pin!(changed);
            // Wait for a participant change, a session change worth acting on, or stop.
            loop {
                let expiry = async {
                    match disconnected_at {
                        Some(at) => tokio::time::sleep_until(at + session_timeout).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return self.lose("abdicated"),
                    event = &mut changed => {
                        if let Some(event) = event {
                            if event.event_type == zk::EventType::Session && is_terminal(event.session_state) {
                                return self.lose("ZooKeeper session lost");
                            }
                        }
                        break;
                    }
                    new_state = state.changed() => {
                        if is_terminal(new_state) {
                            return self.lose("ZooKeeper session lost");
                        }
                        if new_state == zk::SessionState::Disconnected {
                            disconnected_at.get_or_insert_with(tokio::time::Instant::now);
                        } else if disconnected_at.take().is_some() {
                            break;
                        }
                    }
                    _ = expiry => return self.lose("disconnected from ZooKeeper for a whole session timeout"),
                }
            }
        }
    }

    /// Lists the participants (with a watch) and publishes who leads. `None`: ours is gone.
    async fn look(&self) -> Result<Option<zk::OneshotWatcher>, zk::Error> {
        let (children, _, watcher) = self.client.get_and_watch_children(&self.dir).await?;
        if !children.contains(&self.name) {
            return Ok(None);
        }
        let Some(leader) = leader_of(&children) else {
            return Ok(None);
        };
        if *leader == self.name {
            self.publish(Leadership::Leader, Some(self.host_port.clone()));
            return Ok(Some(watcher));
        }
        let leader_host = match self
            .client
            .get_data(&format!("{}/{leader}", self.dir))
            .await
        {
            Ok((data, _)) => Some(String::from_utf8_lossy(&data).trim().to_string()),
            // Gone between listing and reading: the children watch fires and we look again.
            Err(zk::Error::NoNode) => None,
            Err(e) => return Err(e),
        };
        self.publish(
            Leadership::Standby {
                leader: leader_host.clone(),
            },
            leader_host,
        );
        Ok(Some(watcher))
    }

    fn publish(&self, leadership: Leadership, leader: Option<String>) {
        if *self.leadership_tx.borrow() == Leadership::Leader && leadership != Leadership::Leader {
            // Leadership never goes back to standby; lowest-leads makes this unreachable.
            return self.lose("leadership moved away");
        }
        if leadership == Leadership::Leader && *self.leadership_tx.borrow() != Leadership::Leader {
            tracing::info!(member = %self.name, "elected Marathon leader");
        }
        self.leader_tx
            .send_if_modified(|current| std::mem::replace(current, leader.clone()) != leader);
        self.leadership_tx.send_if_modified(|current| {
            std::mem::replace(current, leadership.clone()) != leadership
        });
    }

    fn lose(&self, why: &str) {
        tracing::warn!(member = %self.name, reason = why, "Marathon leadership lost");
        self.leader_tx.send_replace(None);
        self.leadership_tx.send_replace(Leadership::Lost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_sequence_leads_whatever_the_prefix() {
        let children: Vec<String> = [
            "member-0000000009",
            "_c_1f-latch-0000000004",
            "member-0000000007",
            "junk",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            leader_of(&children).map(String::as_str),
            Some("_c_1f-latch-0000000004")
        );
        assert_eq!(member_sequence("member-0000000012"), Some(12));
        assert_eq!(member_sequence("member-"), None);
        assert!(leader_of(&[]).is_none());
    }
}
