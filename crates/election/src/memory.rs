//! An in-memory coordination service with ZooKeeper's semantics for what the election uses:
//! ephemeral sequential nodes owned by sessions, child watches, connection loss, and expiry. Tests
//! and simulations drive it (`disconnect`, `reconnect`, `expire`, `set_available`) to check the
//! election rules without a real ensemble.

use crate::group::{Backend, ChangeWatch, Session, SessionStatus};
use crate::ElectionError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Default)]
struct State {
    /// Full path -> (data, owning session for ephemerals).
    nodes: BTreeMap<String, (Vec<u8>, Option<u64>)>,
    /// Sequence counter per parent directory (shared by all of its children, as in ZooKeeper).
    sequences: HashMap<String, u64>,
    sessions: HashMap<u64, watch::Sender<SessionStatus>>,
    next_session: u64,
    unavailable: bool,
}

/// The shared "ensemble". Cloning gives another handle to the same one.
#[derive(Clone)]
pub struct MemoryEnsemble {
    state: Arc<Mutex<State>>,
    /// Bumped on every change of any node, so child watches can wake.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for MemoryEnsemble {
    fn default() -> Self {
        MemoryEnsemble {
            state: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        }
    }
}

impl MemoryEnsemble {
    pub fn new() -> Self {
        MemoryEnsemble::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Refuses (or again accepts) new sessions, as when no server has quorum.
    pub fn set_available(&self, available: bool) {
        self.lock().unavailable = !available;
    }

    /// The session loses its connection (it may come back).
    pub fn disconnect(&self, session: u64) {
        if let Some(tx) = self.lock().sessions.get(&session) {
            tx.send_replace(SessionStatus::Disconnected);
        }
    }

    pub fn reconnect(&self, session: u64) {
        if let Some(tx) = self.lock().sessions.get(&session) {
            tx.send_replace(SessionStatus::Connected);
        }
    }

    /// The server expires the session: its ephemeral nodes vanish.
    pub fn expire(&self, session: u64) {
        let mut state = self.lock();
        state.nodes.retain(|_, (_, owner)| *owner != Some(session));
        if let Some(tx) = state.sessions.remove(&session) {
            tx.send_replace(SessionStatus::Expired);
        }
        drop(state);
        self.bump();
    }

    /// Sessions currently open, oldest first.
    pub fn sessions(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.lock().sessions.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Children names of `dir`.
    pub fn children_of(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.lock()
            .nodes
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&prefix)
                    .filter(|rest| !rest.contains('/'))
                    .map(str::to_string)
            })
            .collect()
    }

    /// Deletes any node (an operator or another client did it).
    pub fn delete_node(&self, path: &str) {
        self.lock().nodes.remove(path);
        self.bump();
    }

    /// The session that owns an ephemeral node.
    pub fn owner_of(&self, path: &str) -> Option<u64> {
        self.lock().nodes.get(path).and_then(|(_, owner)| *owner)
    }
}

pub struct MemorySession {
    ensemble: MemoryEnsemble,
    id: u64,
    status: watch::Receiver<SessionStatus>,
}

impl MemorySession {
    pub fn id(&self) -> u64 {
        self.id
    }

    fn check(&self) -> Result<(), ElectionError> {
        match *self.status.borrow() {
            SessionStatus::Connected => Ok(()),
            SessionStatus::Disconnected => Err(ElectionError::ConnectionLoss),
            SessionStatus::Expired => Err(ElectionError::SessionExpired),
        }
    }
}

impl Backend for MemoryEnsemble {
    type Session = MemorySession;

    async fn connect(
        &self,
        dir: &str,
        _session_timeout: Duration,
    ) -> Result<MemorySession, ElectionError> {
        let mut state = self.lock();
        if state.unavailable {
            return Err(ElectionError::ConnectionLoss);
        }
        state.next_session += 1;
        let id = state.next_session;
        let (tx, rx) = watch::channel(SessionStatus::Connected);
        state.sessions.insert(id, tx);
        state
            .nodes
            .entry(dir.to_string())
            .or_insert((Vec::new(), None));
        drop(state);
        Ok(MemorySession {
            ensemble: self.clone(),
            id,
            status: rx,
        })
    }
}

impl Session for MemorySession {
    async fn create_member(
        &self,
        dir: &str,
        label: &str,
        data: &[u8],
    ) -> Result<String, ElectionError> {
        self.check()?;
        let dir = dir.trim_end_matches('/').to_string();
        let mut state = self.ensemble.lock();
        let counter = state.sequences.entry(dir.clone()).or_insert(0);
        let name = if label.is_empty() {
            format!("{:010}", *counter)
        } else {
            format!("{label}_{:010}", *counter)
        };
        *counter += 1;
        state
            .nodes
            .insert(format!("{dir}/{name}"), (data.to_vec(), Some(self.id)));
        drop(state);
        self.ensemble.bump();
        Ok(name)
    }

    async fn children(&self, dir: &str) -> Result<(Vec<String>, ChangeWatch), ElectionError> {
        self.check()?;
        let mut changes = self.ensemble.changes.subscribe();
        changes.borrow_and_update();
        let children = self.ensemble.children_of(dir);
        let watch: ChangeWatch = Box::pin(async move {
            let _ = changes.changed().await;
        });
        Ok((children, watch))
    }

    async fn data(&self, path: &str) -> Result<Option<Vec<u8>>, ElectionError> {
        self.check()?;
        Ok(self.ensemble.lock().nodes.get(path).map(|(d, _)| d.clone()))
    }

    async fn delete(&self, path: &str) -> Result<(), ElectionError> {
        self.check()?;
        self.ensemble.delete_node(path);
        Ok(())
    }

    fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    async fn close(self) {
        self.ensemble.expire(self.id);
    }
}

/// Masters contending in one in-memory ensemble under `/mesos` (10 s sessions): the first to join
/// leads, the others stand by. What tests of more than one master use instead of ZooKeeper.
impl crate::Contender for MemoryEnsemble {
    fn contend(&self, info: proto::MasterInfo) -> crate::Election {
        let config = crate::ElectionConfig {
            dir: "/mesos".into(),
            session_timeout: Duration::from_secs(10),
            payload: Some(serde_json::to_vec(&info).unwrap_or_default()),
        };
        crate::Election::start(self.clone(), config)
    }
}
