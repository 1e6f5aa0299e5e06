//! Where a replica's state lives. Four operations, as Mesos' storage interface has: restore
//! everything, persist metadata, persist an action, and drop positions below a truncation point.
//! A store answers only once the write is durable: the replica replies to nothing before that.

use crate::types::{Action, Metadata, Position};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("record at byte {offset} of {path} is corrupt: {reason}")]
    Corrupt {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("{path} was written by format version {found}; this release reads {supported}")]
    UnsupportedFormat {
        path: String,
        found: u32,
        supported: u32,
    },
}

/// A replica's durable state as restored at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub metadata: Metadata,
    /// Positions >= `begin`.
    pub actions: BTreeMap<Position, Action>,
    /// First kept position (everything below was truncated).
    pub begin: Position,
}

pub trait Storage: Send + 'static {
    fn restore(&mut self) -> Result<State, StorageError>;
    fn persist_metadata(&mut self, metadata: &Metadata) -> Result<(), StorageError>;
    fn persist_action(&mut self, action: &Action) -> Result<(), StorageError>;
    /// Forget positions below `to` (after a learned TRUNCATE).
    fn truncate(&mut self, to: Position) -> Result<(), StorageError>;
}

/// State in memory: for tests and simulations. `crash` drops nothing (every persist is durable
/// here); simulations model torn writes by wrapping it.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    pub state: State,
}

impl Storage for MemoryStorage {
    fn restore(&mut self) -> Result<State, StorageError> {
        Ok(self.state.clone())
    }
    fn persist_metadata(&mut self, metadata: &Metadata) -> Result<(), StorageError> {
        self.state.metadata = *metadata;
        Ok(())
    }
    fn persist_action(&mut self, action: &Action) -> Result<(), StorageError> {
        if action.position >= self.state.begin {
            self.state.actions.insert(action.position, action.clone());
        }
        Ok(())
    }
    fn truncate(&mut self, to: Position) -> Result<(), StorageError> {
        self.state.begin = self.state.begin.max(to);
        let keep = self.state.actions.split_off(&to);
        self.state.actions = keep;
        Ok(())
    }
}
