//! The protocol between the agent and its launcher daemon (`tepui launcher`), over the unix socket
//! `<work_dir>/meta/launcher.sock`.
//!
//! What: newline-delimited JSON, one message a line, each carrying `v` (`LAUNCHER_PROTOCOL_VERSION`)
//! and `type`. The agent opens with `HELLO`, then sends `LAUNCH`, `KILL`, `LIST`, `ACK_EXIT` and
//! `SHUTDOWN`; the daemon answers `WELCOME`, `LAUNCHED` / `LAUNCH_FAILED` (one per `LAUNCH`),
//! `LIST_RESULT` (one per `LIST`, in order) and pushes `EXITED` whenever a task's process ends.
//! A message with a newer `v` is refused with `ERROR`, never misread.
//!
//! Why its own types: the agent and the daemon are one binary, but a restarted agent may be a newer
//! release than the daemon that still runs its tasks; the version field is what makes that safe.
//! These types never leave the machine (the invariant "only `proto` types cross the wire" is about
//! the network).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const LAUNCHER_PROTOCOL_VERSION: u32 = 1;
/// Longest line either side accepts (a `LAUNCH` carries the task's whole environment).
pub const LINE_BYTES_MAX: usize = 4 << 20;

/// One task process to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub container_id: String,
    /// The file to execute (`/bin/sh` for shell commands).
    pub program: String,
    /// The whole argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the daemon).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The run's checkpoint directory: the daemon records the exit there (`exit_status`).
    pub checkpoint_dir: PathBuf,
    /// Opaque to the daemon; handed to its `SpawnHook` (isolation: limits, cgroup names).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub isolation: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningContainer {
    pub container_id: String,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitedContainer {
    pub container_id: String,
    /// Raw wait status (`WIFEXITED`/`WTERMSIG` decode it).
    pub wait_status: i32,
}

/// Agent to daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToLauncher {
    /// Opens a session; a newer session replaces an older one (the agent that sent it restarted).
    Hello {
        v: u32,
        work_dir: PathBuf,
    },
    Launch {
        v: u32,
        launch: LaunchRequest,
    },
    /// Sends `signal` to the container's process group now, and SIGKILL after `grace_ms` if given
    /// and it still runs (the daemon keeps that timer, so it survives an agent restart).
    Kill {
        v: u32,
        container_id: String,
        signal: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_ms: Option<u64>,
    },
    List {
        v: u32,
    },
    /// The agent checkpointed this exit; the daemon may forget it.
    AckExit {
        v: u32,
        container_id: String,
    },
    /// Kill whatever still runs and exit (used by `--kill_tasks_on_stop`).
    Shutdown {
        v: u32,
    },
}

/// Daemon to agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FromLauncher {
    Welcome {
        v: u32,
        pid: u32,
    },
    Launched {
        v: u32,
        container_id: String,
        pid: u32,
        /// `/proc/<pid>/stat` field 22, so a reused pid is never taken for this process.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<u64>,
    },
    LaunchFailed {
        v: u32,
        container_id: String,
        error: String,
    },
    ListResult {
        v: u32,
        running: Vec<RunningContainer>,
        /// Exits not yet acknowledged by an agent (they happened while none was connected, or the
        /// agent went away before acknowledging).
        exited: Vec<ExitedContainer>,
    },
    Exited {
        v: u32,
        container_id: String,
        wait_status: i32,
    },
    Error {
        v: u32,
        message: String,
    },
}

#[derive(Deserialize)]
struct Envelope {
    v: u32,
}

/// Why a line could not be read as a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("protocol version {0} is newer than this side's {LAUNCHER_PROTOCOL_VERSION}")]
    NewerVersion(u32),
    #[error("unreadable message: {0}")]
    Malformed(String),
}

/// Parses one line, checking the version before the content.
pub fn decode<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, DecodeError> {
    let envelope: Envelope =
        serde_json::from_slice(line).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if envelope.v > LAUNCHER_PROTOCOL_VERSION {
        return Err(DecodeError::NewerVersion(envelope.v));
    }
    serde_json::from_slice(line).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// One message as a line (with its newline).
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // These types hold only strings, numbers and JSON values: serialization cannot fail.
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// `<meta>/launcher.sock` as a path `bind` and `connect` accept. A unix socket address holds at most
/// 107 bytes; a longer path is reached through `/proc/self/fd/<n>/` of a handle on `meta` that this
/// value keeps open (so work directories may be as deep as they like).
pub struct SocketAddress {
    path: PathBuf,
    _dir: Option<std::fs::File>,
}

/// Longest socket path used as it is.
const SOCKET_PATH_MAX: usize = 100;

impl SocketAddress {
    pub fn new(meta: &std::path::Path) -> std::io::Result<Self> {
        let direct = meta.join(crate::checkpoint::layout::LAUNCHER_SOCKET);
        if direct.as_os_str().len() <= SOCKET_PATH_MAX {
            return Ok(SocketAddress {
                path: direct,
                _dir: None,
            });
        }
        let dir = std::fs::File::open(meta)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let path = PathBuf::from(format!(
            "/proc/self/fd/{fd}/{}",
            crate::checkpoint::layout::LAUNCHER_SOCKET
        ));
        Ok(SocketAddress {
            path,
            _dir: Some(dir),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Writes the lines `lines` yields until it closes or the peer goes; lines queued meanwhile go out
/// in one write (a burst of launches is a few writes, not one per task).
pub async fn write_lines(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut lines: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    use tokio::io::AsyncWriteExt;
    while let Some(mut buffer) = lines.recv().await {
        while buffer.len() < WRITE_BATCH_BYTES {
            match lines.try_recv() {
                Ok(more) => buffer.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if write.write_all(&buffer).await.is_err() {
            break;
        }
    }
}

/// About the most bytes gathered into one write.
const WRITE_BATCH_BYTES: usize = 1 << 20;

/// Decodes a raw wait status.
pub fn decode_wait_status(status: i32) -> crate::core::Exit {
    if libc::WIFEXITED(status) {
        crate::core::Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        crate::core::Exit::Signal(libc::WTERMSIG(status))
    } else {
        crate::core::Exit::Code(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_newer_versions_are_refused() {
        let kill = ToLauncher::Kill {
            v: LAUNCHER_PROTOCOL_VERSION,
            container_id: "c1".into(),
            signal: 15,
            grace_ms: Some(3000),
        };
        let line = encode(&kill);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(decode::<ToLauncher>(&line[..line.len() - 1]), Ok(kill));
        let text = String::from_utf8(encode(&FromLauncher::Exited {
            v: 1,
            container_id: "c".into(),
            wait_status: 0,
        }))
        .unwrap();
        assert_eq!(
            text,
            "{\"type\":\"EXITED\",\"v\":1,\"container_id\":\"c\",\"wait_status\":0}\n"
        );
        assert_eq!(
            decode::<ToLauncher>(br#"{"v":2,"type":"LIST","extra":1}"#),
            Err(DecodeError::NewerVersion(2))
        );
        assert!(matches!(
            decode::<ToLauncher>(br#"{"v":1,"type":"FLY"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ToLauncher>(b"{\"v\":1,\"ty"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn wait_statuses_decode() {
        use crate::core::Exit;
        assert_eq!(decode_wait_status(0), Exit::Code(0));
        assert_eq!(decode_wait_status(3 << 8), Exit::Code(3));
        assert_eq!(
            decode_wait_status(libc::SIGKILL),
            Exit::Signal(libc::SIGKILL)
        );
    }
}
