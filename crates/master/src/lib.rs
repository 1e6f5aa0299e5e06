//! `tepui master`: the leading master's bookkeeping (`core`, a state machine with no I/O), the HTTP
//! surface Mesos clients use (`http`), and the runtime that ties them to sockets and timers
//! (`server`).
//!
//! Seams for later work: leadership comes from an `election::Contender` (standalone now, ZooKeeper
//! next) and the registry from a `registry::RegistryStore` (in memory now, the replicated log next).

pub mod core;
pub mod flags;
pub mod http;
pub mod server;

pub use flags::{FlagError, MasterConfig, MasterFlags};
pub use server::{run, MasterError};
