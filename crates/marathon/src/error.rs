//! Why `marathon::run` returns, and the process exit code each reason maps to.
//!
//! Marathon exits instead of rejoining as a standby when it stops leading (marathon-api.md §8.1:
//! "Losing leadership, the ZooKeeper session, or abdicating makes Marathon exit (codes 103/105,
//! 100/101) and rely on its supervisor"), and refuses to register without its stored framework id
//! (§8.2, 108) or after the framework was torn down (§8.2, 110). Each reason is its own variant
//! because a supervisor (and a test) reacts differently to each.

use crate::flags::FlagError;
use marathon_store::StoreError;

/// Exit codes of `tepui marathon` (the binary maps [`MarathonError::exit_code`] to the process).
pub mod exit {
    /// A bad flag value (clap's usage code).
    pub const USAGE: u8 = 2;
    /// Abdicated through `DELETE /v2/leader` (§8.1 "100/101": 100 = asked to step down).
    pub const ABDICATED: u8 = 100;
    /// The store refused or failed a write while leading (fenced by a newer leader, or a
    /// ZooKeeper error): state may be ahead of memory, so the process exits (§8.1 "101").
    pub const STORE_FAILED: u8 = 101;
    /// Leadership lost (our latch node vanished, another instance leads, or Mesos says another
    /// scheduler instance took the framework over) (§8.1 "103").
    pub const LOST_LEADERSHIP: u8 = 103;
    /// The ZooKeeper session expired or could not be opened (§8.1 "105").
    pub const ZK_SESSION: u8 = 105;
    /// Stored instances but no stored framework id: registering anew would orphan them (§8.2).
    pub const FRAMEWORK_ID_MISSING: u8 = 108;
    /// The framework was torn down in Mesos (§8.2).
    pub const FRAMEWORK_REMOVED: u8 = 110;
    /// Anything else (cannot bind the HTTP port, ...).
    pub const OTHER: u8 = 1;
}

#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("abdicated leadership")]
    Abdicated,
    #[error("lost leadership: {0}")]
    LostLeadership(String),
    #[error("the ZooKeeper session is lost: {0}")]
    ZkSession(String),
    #[error("the store failed while leading: {0}")]
    Store(StoreError),
    #[error("instances are stored but no framework id: refusing to register a new framework (would orphan them)")]
    FrameworkIdMissing,
    #[error("the framework was removed from Mesos: {0}")]
    FrameworkRemoved(String),
    #[error("cannot serve HTTP on {address}: {reason}")]
    Http { address: String, reason: String },
    #[error("{0}")]
    Other(String),
}

impl MarathonError {
    /// The process exit code for this reason (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            MarathonError::Flag(_) => exit::USAGE,
            MarathonError::Abdicated => exit::ABDICATED,
            MarathonError::Store(_) => exit::STORE_FAILED,
            MarathonError::LostLeadership(_) => exit::LOST_LEADERSHIP,
            MarathonError::ZkSession(_) => exit::ZK_SESSION,
            MarathonError::FrameworkIdMissing => exit::FRAMEWORK_ID_MISSING,
            MarathonError::FrameworkRemoved(_) => exit::FRAMEWORK_REMOVED,
            MarathonError::Http { .. } | MarathonError::Other(_) => exit::OTHER,
        }
    }

    /// A store error while leading: session loss and fencing mean someone else leads now.
    pub fn from_store(error: StoreError) -> MarathonError {
        match error {
            StoreError::SessionLost => MarathonError::ZkSession(error.to_string()),
            StoreError::Fenced => MarathonError::LostLeadership(error.to_string()),
            other => MarathonError::Store(other),
        }
    }
}
