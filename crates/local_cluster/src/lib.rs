//! `tepui local-cluster`: the six-server HA cluster of the Mesosphere tutorial (seeds 003: three
//! masters, each with a ZooKeeper node, a Mesos master and Marathon, plus three agents) on one
//! machine, each server on its own loopback address with the standard ports, so a person can try
//! failover without six machines.
//!
//! Why child processes rather than one process (as `tepui dev`): failover is only real when a
//! leader can die on its own. Every server is the `tepui` binary (or ZooKeeper's JVM) in its own
//! process group, and `up` is the supervisor that fail-fast relies on (mesos-ha.md 3.2: a leader
//! that loses ZooKeeper exits; something must restart it).
//!
//! Layout of the crate: `flags` (the CLI), `layout` (addresses, flags and paths of every server,
//! pure), `zookeeper` (finding the installed ZooKeeper, its config, `srvr`), `supervisor` (restart
//! and stop decisions as a pure state machine), `process` (spawning and signalling at the edge),
//! `probe` (who leads, over HTTP), `progress` (startup steps and leader changes as printed lines),
//! `state_file` (`DIR/cluster.json`), `up` (the foreground supervisor), `commands` (`status`,
//! `kill-leader`, `stop`).

mod commands;
mod error;
mod flags;
mod layout;
mod probe;
mod process;
mod progress;
mod state_file;
mod supervisor;
mod up;
mod zookeeper;

pub use error::LocalClusterError;
pub use flags::{Action, DirFlag, KillLeaderFlags, LocalClusterArgs, UpFlags};
pub use zookeeper::{ZooKeeperInstall, ZooKeeperMissing};

use std::path::PathBuf;

/// Runs `tepui local-cluster ...`; `program` is the `tepui` binary the servers run (the caller's
/// `std::env::current_exe()`).
pub async fn run(args: LocalClusterArgs, program: PathBuf) -> Result<(), LocalClusterError> {
    match args.action {
        None => up::run(args.up, program).await,
        Some(Action::Up(flags)) => up::run(flags, program).await,
        Some(Action::Status(flags)) => commands::status(&flags.dir()).await,
        Some(Action::KillLeader(flags)) => {
            commands::kill_leader(&flags.dir.dir(), flags.marathon).await
        }
        Some(Action::Stop(flags)) => commands::stop(&flags.dir()).await,
    }
}

/// [`run`] for the binary: prints the error and returns the process exit code (0 on success).
pub async fn run_cli(args: LocalClusterArgs, program: std::io::Result<PathBuf>) -> u8 {
    let program = match program {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: cannot tell where the tepui binary is (needed to start the servers): {e}"
            );
            return 1;
        }
    };
    match run(args, program).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
