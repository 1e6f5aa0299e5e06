//! The master's durable state (Mesos' registry): admitted agents and the master's own info.
//!
//! The registrar applies operations to a `Registry` value and stores the result through a
//! `RegistryStore`. Now there is one store, in memory (`--registry=in_memory`); the replicated log
//! arrives behind the same trait. `Registry` and its operations do no I/O.

use proto::agent_protocol::AgentInfo;
use proto::{AgentId, MasterInfo};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Format version of the stored registry, so a later release can migrate or refuse it.
pub const REGISTRY_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub format_version: u32,
    #[serde(default)]
    pub master: Option<MasterInfo>,
    #[serde(default)]
    pub agents: Vec<AgentInfo>,
    /// Agents that missed their pings (mesos-ha.md 3.4), with when; they may re-register.
    #[serde(default)]
    pub unreachable: Vec<AgentMark>,
    /// Agents an operator marked gone; they are told to shut down and never re-admitted.
    #[serde(default)]
    pub gone: Vec<AgentMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMark {
    pub id: AgentId,
    /// Seconds since the epoch.
    pub timestamp: f64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            format_version: REGISTRY_FORMAT_VERSION,
            master: None,
            agents: Vec::new(),
            unreachable: Vec::new(),
            gone: Vec::new(),
        }
    }
}

/// A change to the registry. `apply` says whether it changed anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    UpdateMasterInfo(MasterInfo),
    /// Admits an agent; also moves an unreachable one back (it re-registered). Gone agents stay out.
    AdmitAgent(AgentInfo),
    RemoveAgent(AgentId),
    /// Moves an admitted agent to unreachable.
    MarkUnreachable {
        id: AgentId,
        timestamp: f64,
    },
    /// Moves an agent (admitted or unreachable) to gone, for good.
    MarkGone {
        id: AgentId,
        timestamp: f64,
    },
}

impl Registry {
    pub fn apply(&mut self, operation: &Operation) -> bool {
        match operation {
            Operation::UpdateMasterInfo(info) => {
                self.master = Some(info.clone());
                true
            }
            Operation::AdmitAgent(info) => {
                if let Some(id) = &info.id {
                    if self.is_gone(id) {
                        return false;
                    }
                    let was_unreachable = self.unreachable.iter().any(|m| &m.id == id);
                    self.unreachable.retain(|m| &m.id != id);
                    if self.agents.iter().any(|a| a.id.as_ref() == Some(id)) {
                        return was_unreachable;
                    }
                }
                self.agents.push(info.clone());
                true
            }
            Operation::MarkUnreachable { id, timestamp } => {
                // Moves the agent: it is no longer admitted (mesos-ha.md 3.4, 3.7).
                if !self.is_admitted(id) {
                    return false;
                }
                self.agents.retain(|a| a.id.as_ref() != Some(id));
                self.unreachable.push(AgentMark {
                    id: id.clone(),
                    timestamp: *timestamp,
                });
                true
            }
            Operation::MarkGone { id, timestamp } => {
                if self.is_gone(id) {
                    return false;
                }
                self.agents.retain(|a| a.id.as_ref() != Some(id));
                self.unreachable.retain(|m| &m.id != id);
                self.gone.push(AgentMark {
                    id: id.clone(),
                    timestamp: *timestamp,
                });
                true
            }
            Operation::RemoveAgent(id) => {
                let before = self.agents.len();
                self.agents.retain(|a| a.id.as_ref() != Some(id));
                self.agents.len() != before
            }
        }
    }

    /// Admitted and not currently unreachable.
    pub fn is_admitted(&self, id: &AgentId) -> bool {
        self.agents.iter().any(|a| a.id.as_ref() == Some(id))
    }

    pub fn is_unreachable(&self, id: &AgentId) -> bool {
        self.unreachable.iter().any(|m| &m.id == id)
    }

    pub fn is_gone(&self, id: &AgentId) -> bool {
        self.gone.iter().any(|m| &m.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("registry store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored registry has format version {found}, this release reads {supported}")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("stored registry is unreadable: {0}")]
    Corrupt(String),
    #[error("registry operation timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("another master took over the registry (a higher proposal fenced this one)")]
    Fenced,
}

/// A boxed future, so stores can be used as trait objects.
pub type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where the registry lives. A store answers `store` only once the value is durable (with the
/// replicated log: on a quorum of disks).
pub trait RegistryStore: Send + Sync + 'static {
    /// Reads the registry; a leader calls it once at election (registrar recovery).
    fn fetch(&self) -> StoreFuture<'_, Registry>;
    fn store(&self, registry: &Registry) -> StoreFuture<'_, ()>;
}

/// `--registry=in_memory`: lost when the master exits.
#[derive(Default)]
pub struct InMemoryStore {
    registry: Mutex<Registry>,
}

impl RegistryStore for InMemoryStore {
    fn fetch(&self) -> StoreFuture<'_, Registry> {
        let result = self
            .registry
            .lock()
            .map(|r| r.clone())
            .map_err(|e| StoreError::Unavailable(e.to_string()));
        Box::pin(async move { result })
    }
    fn store(&self, registry: &Registry) -> StoreFuture<'_, ()> {
        let result = self
            .registry
            .lock()
            .map(|mut r| *r = registry.clone())
            .map_err(|e| StoreError::Unavailable(e.to_string()));
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str) -> AgentInfo {
        AgentInfo {
            id: Some(AgentId::new(id)),
            hostname: "h".into(),
            port: 5051,
            resources: vec![],
            attributes: vec![],
        }
    }

    #[tokio::test]
    async fn admit_and_remove_agents() {
        let mut r = Registry::default();
        assert!(r.apply(&Operation::AdmitAgent(agent("a"))));
        assert!(!r.apply(&Operation::AdmitAgent(agent("a"))));
        assert!(r.is_admitted(&AgentId::new("a")));
        assert!(r.apply(&Operation::RemoveAgent(AgentId::new("a"))));
        assert!(!r.is_admitted(&AgentId::new("a")));
        assert!(r.apply(&Operation::AdmitAgent(agent("b"))));
        assert!(r.apply(&Operation::MarkUnreachable {
            id: AgentId::new("b"),
            timestamp: 1.0
        }));
        assert!(r.is_unreachable(&AgentId::new("b")));
        assert!(!r.is_admitted(&AgentId::new("b")), "moved, not copied");
        assert!(
            r.apply(&Operation::AdmitAgent(agent("b"))),
            "re-registration makes it reachable"
        );
        assert!(r.is_admitted(&AgentId::new("b")));
        assert!(!r.is_unreachable(&AgentId::new("b")));
        assert!(r.apply(&Operation::MarkGone {
            id: AgentId::new("b"),
            timestamp: 2.0
        }));
        assert!(
            !r.apply(&Operation::AdmitAgent(agent("b"))),
            "gone agents are never admitted again"
        );
        assert!(!r.is_admitted(&AgentId::new("b")));
        let store = InMemoryStore::default();
        store.store(&r).await.unwrap();
        assert_eq!(store.fetch().await.unwrap(), r);
    }
}
