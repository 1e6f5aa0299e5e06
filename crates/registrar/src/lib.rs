//! The master's registry on the replicated log: the runtime that drives a `replog::Node` (disk,
//! HTTP transport between masters, timers, membership from ZooKeeper's `log_replicas`), and the
//! `LogStore` that keeps `registry::Registry` snapshots in it (replicated-log.md 7).
//!
//! This crate is the edge of the log: all I/O lives here; the protocol stays in `replog`.

pub mod runtime;
pub mod store;
pub mod transport;

pub use runtime::{replica_id, LogConfig, LogHandle, LogStats};
pub use store::LogStore;
