//! A Paxos replicated log, as Mesos' registry uses it (replicated-log.md): every master runs a
//! replica (acceptor and learner); the leader also runs a coordinator (proposer, Multi-Paxos with an
//! implicit promise at election); replicas that lost state recover and catch up.
//!
//! The protocol roles are state machines that do no I/O and read no clock: events in, commands out,
//! `now` passed in. Storage and transport are behind small traits at the edge, so the same code runs
//! under a seeded deterministic simulation, a model checker, and the real runtime.
//!
//! Code map (the protocol core; `storage` and `disk` are the durable edge):
//! - `node`: `Node`, the one state machine a master runs, and its `Command`s;
//! - `replica`: acceptor and learner (section 4); `coordinator`: the writer (section 5);
//!   `fill`: single-position Paxos and catch-up; `recovery`: recovery and auto-initialization
//!   (section 6); `net`: broadcast rounds with retransmission; `rng`: splitmix64.
//!
//! Architecture invariant: the core modules know nothing of sockets, files, threads or clocks;
//! randomness comes from the seed in `NodeConfig`. The runtime's side of the contract is on `Node` and `Command`: run
//! commands in order, make each `Persist` durable before the next command, stop on a failed
//! persist, deliver messages best effort, tick every 50-100 ms, and seed each process start anew.
//! `tests/simulation.rs` (seeded chaos, then a calm phase) and `tests/model_check.rs`
//! (stateright, exhaustive in small configurations) check the protocol through the same `Node`.

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
