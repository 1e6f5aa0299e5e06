//! `tepui agent`: runs tasks on one machine for the leading master.
//!
//! What: the agent registers with the leading master over the internal protocol
//! (`proto::agent_protocol`), launches command tasks and custom executors in sandboxes, reports their status updates
//! reliably (mesos-http-api.md 8.5), and serves the Mesos agent HTTP endpoints (section 5).
//!
//! Code map:
//! - `flags`: `AgentFlags` (Mesos flag names, `MESOS_*` environment) and their validation.
//! - `core`: the pure task and status-update state machine (events in, effects out; no I/O, no
//!   clock). `core::stream` is one task's reliable update queue.
//! - `driver`: the event loop that feeds the core and performs its effects; startup; stop and
//!   reconnection to a launcher that went away (`driver/lifecycle.rs`).
//! - `master_link`: leader detection, (re)registration with backoff, the message stream, calls.
//! - `launcher` and `sandbox`: processes (own process group, output files) and their directories;
//!   `fetcher`: `CommandInfo.uris` downloaded, copied and extracted into the sandbox first;
//!   `fetch_cache`: URIs with `cache: true` downloaded once per agent.
//! - `http`, `state_json`, `files`, `path_guard`: the HTTP server; `/files` never leaves a sandbox.
//! - custom executors: `executor_api` (`POST /api/v1/executor`, mesos-http-api.md section 9),
//!   `core/executors.rs` (their rules), `driver/executors.rs` (their processes and streams).
//! - `resources_detect`: detected resources and host metrics.
//! - health checks (mesos-http-api.md 8.4 `health_check`): `core/health_rules.rs` (when to
//!   check, what a result means), `core/health.rs` (updates, kills), `health_checker` (running a
//!   COMMAND, HTTP or TCP check), `driver/health.rs` (the two joined).
//! - recovery (agents that survive): `checkpoint` (what a restarted agent needs, under
//!   `<work_dir>/meta`, fsync'd in batches by `commit`), `launcher_daemon` (`tepui launcher`: the
//!   per-agent daemon that parents task processes so they outlive the agent),
//!   `launcher_protocol` and `launcher_client` (the agent's side of it), `recovery` (`--recover`).
//! - `isolation`: `--isolation` (posix, cgroups v1/v2): limits, limitation reports, usage for
//!   `/monitor/statistics`. `gc`: `--gc_delay` deletion of completed sandboxes.
//!
//! Architecture invariants: only `proto` types cross the wire; `core` performs no I/O; no request
//! reads outside a sandbox; task processes are children of the launcher daemon, never of the agent,
//! so they outlive it; nothing is sent or launched before the checkpoints it depends on are durable.

mod checkpoint;
mod commit;
mod core;
mod driver;
mod executor_api;
mod executor_recovery;
mod fetch_cache;
mod fetcher;
mod files;
mod flags;
mod gc;
mod health_checker;
mod http;
pub mod isolation;
mod launcher;
mod launcher_client;
pub mod launcher_daemon;
mod launcher_protocol;
mod master_link;
mod path_guard;
mod recovery;
mod resources_detect;
mod sandbox;
mod shared;
mod state_json;

pub use flags::{AgentFlags, DEFAULT_KILL_GRACE};
pub use launcher_daemon::{LauncherError, LauncherFlags};
pub use resources_detect::detect as detect_resources;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// Why `run` could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A flag has a value the agent cannot use; `flag` is its name without dashes.
    #[error("--{flag}: {message}")]
    BadFlag { flag: &'static str, message: String },
    #[error("cannot bind the agent's HTTP server to {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the work directory {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The master told the agent to go (it was removed or refused); its tasks were killed.
    #[error("the master shut this agent down: {message}")]
    ShutdownByMaster { message: String },
    /// A part of the agent stopped unexpectedly (the HTTP server, the master link).
    #[error("agent failure: {0}")]
    Internal(String),
    /// The launcher daemon cannot be reached or started, or recovery could not complete.
    #[error("recovery: {0}")]
    Recovery(String),
}

/// Runs the agent until `shutdown` resolves (or the master sends SHUTDOWN). On `shutdown`, tasks keep
/// running for the next agent to re-attach (unless `--kill_tasks_on_stop`); on the master's SHUTDOWN
/// they are killed and the agent's checkpoints removed.
pub async fn run(
    flags: AgentFlags,
    detector: Arc<dyn election::Detector>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    driver::run(flags, detector, shutdown).await
}

/// `tepui launcher`: the per-agent daemon that parents task processes (see `launcher_daemon`).
pub async fn run_launcher(flags: LauncherFlags) -> Result<(), LauncherError> {
    launcher_daemon::run(flags).await
}
