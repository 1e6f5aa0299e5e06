//! A Paxos replicated log, as Mesos' registry uses it (replicated-log.md): every master runs a
//! replica (acceptor and learner); the leader also runs a coordinator (proposer, Multi-Paxos with an
//! implicit promise at election); replicas that lost state recover and catch up.
//!
//! The protocol roles are state machines that do no I/O and read no clock: events in, commands out,
//! `now` passed in. Storage and transport are behind small traits at the edge, so the same code runs
//! under a seeded deterministic simulation, a model checker, and the real runtime.

mod coordinator;
pub mod disk;
mod fill;
mod net;
mod node;
mod recovery;
mod replica;
mod rng;
pub mod storage;
pub mod types;

pub use coordinator::WRITE_QUEUE_MAX;
pub use disk::DiskStorage;
pub use fill::{FILLS_IN_FLIGHT_MAX, FILL_STALL_TIMEOUT};
pub use net::{RETRANSMIT_INTERVAL, RETRY_DELAY_MAX, RETRY_DELAY_MIN};
pub use node::{Command, Node, NodeConfig, OpId, PersistOp, WriteError};
pub use recovery::{RECOVER_ROUND_GAP_MAX, RECOVER_ROUND_GAP_MIN, RECOVER_ROUND_TIMEOUT};
pub use rng::SplitMix64;
pub use storage::{MemoryStorage, State, Storage, StorageError};
pub use types::*;
