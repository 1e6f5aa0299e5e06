//! What can go wrong in `tepui local-cluster`, with the exit code each maps to: 2 for what the
//! person must fix before starting (a flag, a missing ZooKeeper, an address), 3 when no cluster
//! runs on the directory (as `status` promises), 1 otherwise.

use std::path::PathBuf;

use crate::zookeeper::ZooKeeperMissing;

#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    #[error("--{flag}: {message}")]
    Flag { flag: &'static str, message: String },
    #[error(transparent)]
    ZooKeeperMissing(#[from] ZooKeeperMissing),
    #[error("{0}")]
    Address(String),
    #[error(
        "a local cluster already runs on {} (supervisor pid {pid}); stop it with `tepui local-cluster stop --dir {}` or pick another --dir",
        dir.display(), dir.display()
    )]
    AlreadyRunning { dir: PathBuf, pid: u32 },
    #[error("no local cluster runs on {} (start one with `tepui local-cluster up --dir {}`)", dir.display(), dir.display())]
    NotRunning { dir: PathBuf },
    #[error("{}: {message}", path.display())]
    StateFile { path: PathBuf, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the cluster did not come up: {0}")]
    Startup(String),
    #[error(
        "no {role} leads right now; try again in a few seconds (`tepui local-cluster status`)"
    )]
    NoLeader { role: &'static str },
    #[error("processes of the cluster were still alive after stopping: {0}")]
    Leftovers(String),
    #[error(
        "the supervisor (pid {pid}) was still running {secs} s after SIGTERM; see its terminal"
    )]
    StopTimeout { pid: u32, secs: u64 },
}

impl LocalClusterError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Flag { .. } | Self::ZooKeeperMissing(_) | Self::Address(_) => 2,
            Self::NotRunning { .. } => 3,
            _ => 1,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
