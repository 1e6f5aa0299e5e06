//! `tepui marathon`: a Marathon-compatible service scheduler (marathon-api.md).
//!
//! What: a Mesos framework that keeps apps running. `flags` (Marathon's flags), `leader/` (what
//! the elected instance runs: the planner fed by Mesos events, offers matched to the launch queue,
//! health checks, reconciliation, the store written before acting), `run` (the election, the
//! ZooKeeper store, the REST API (`marathon_api`) and the leader tied together) and `error` (why
//! the service stops, and the exit code of each reason).
//!
//! Entry points: [`run`] (flags, ZooKeeper, HA), [`run_with`] (any `StateStore` and election, no
//! ZooKeeper), [`run_in_memory`] (`tepui dev`: an in-memory store, standalone election).
//!
//! Invariants: Mesos is reached only through the public v1 scheduler API (`scheduler_client`);
//! every state change is committed to the store (fenced) before it is acted on or acknowledged;
//! a new leader builds its state from the store, never from memory.

pub mod error;
pub mod flags;
pub mod leader;
pub mod run;

pub use error::{exit, MarathonError};
pub use flags::{Config, MarathonFlags};
pub use run::{default_config, run, run_in_memory, run_with};
