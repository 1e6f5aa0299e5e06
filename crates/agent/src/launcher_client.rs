//! The agent's side of its launcher daemon.
//!
//! What: `Launcher` is what the driver and recovery need from whatever parents task processes
//! (launch, kill, list, acknowledge an exit, shut down); exits arrive as `LauncherEvent`s on the
//! `Connection`'s channel. `DaemonConnector` connects to `tepui launcher` over
//! `<work_dir>/meta/launcher.sock`, starting the daemon first if none answers; `fake::FakeLauncher`
//! is an in-memory stand-in for unit tests.
//!
//! Launch outcomes and exits arrive as events on one channel, in the daemon's order (so a launch is
//! always reported before its exit); list replies are matched by order. If the connection breaks,
//! pending lists fail with `LauncherLost` and `Disconnected` is sent.

use crate::checkpoint::layout;
use crate::launcher_protocol::{
    self as protocol, ExitedContainer, FromLauncher, LaunchRequest, RunningContainer, ToLauncher,
    LAUNCHER_PROTOCOL_VERSION as V,
};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// How long reaching a daemon (starting one if needed) may take.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a daemon may take to welcome a session.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// While none answers, a daemon is started again this often.
const RESTART_EVERY: Duration = Duration::from_secs(1);
/// A launcher log beyond this is started afresh when a daemon starts.
const LOG_BYTES_MAX: u64 = 16 << 20;

/// What the launcher reports, in the order it happened (a launch before its exit).
#[derive(Debug, Clone, PartialEq)]
pub enum LauncherEvent {
    Launched {
        container_id: String,
        pid: u32,
        start_time: Option<u64>,
    },
    LaunchFailed {
        container_id: String,
        error: String,
    },
    Exited {
        container_id: String,
        wait_status: i32,
    },
    /// The connection broke: launches without an answer may or may not have happened (a `LIST` on
    /// the next connection says), and pending lists failed.
    Disconnected,
}

/// The connection to the launcher broke before it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LauncherLost;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub running: Vec<RunningContainer>,
    pub exited: Vec<ExitedContainer>,
}

pub trait Launcher: Send + Sync {
    /// Starts the process; `Launched` or `LaunchFailed` follows on the event channel.
    fn launch(&self, request: LaunchRequest);
    /// `signal` to the container's process group now; SIGKILL after `grace` if still running.
    fn kill(&self, container_id: &str, signal: i32, grace: Option<Duration>);
    fn list(&self) -> BoxFuture<'static, Result<Snapshot, LauncherLost>>;
    /// The exit is checkpointed; the launcher may forget it.
    fn ack_exit(&self, container_id: &str);
    /// Kill what still runs and stop.
    fn shutdown(&self);
}

pub struct Connection {
    pub launcher: Arc<dyn Launcher>,
    pub events: mpsc::UnboundedReceiver<LauncherEvent>,
}

/// Makes connections (again, after one broke).
pub trait Connector: Send + Sync {
    fn connect(&self) -> BoxFuture<'static, Result<Connection, String>>;
}

// ---- the daemon over its socket ----

#[derive(Default)]
struct Pending {
    lists: VecDeque<oneshot::Sender<Result<Snapshot, LauncherLost>>>,
    closed: bool,
}

struct DaemonClient {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

impl Launcher for DaemonClient {
    fn launch(&self, request: LaunchRequest) {
        let _ = self.out.send(protocol::encode(&ToLauncher::Launch {
            v: V,
            launch: request,
        }));
    }

    fn kill(&self, container_id: &str, signal: i32, grace: Option<Duration>) {
        let grace_ms = grace.map(|g| u64::try_from(g.as_millis()).unwrap_or(u64::MAX));
        let _ = self.out.send(protocol::encode(&ToLauncher::Kill {
            v: V,
            container_id: container_id.to_string(),
            signal,
            grace_ms,
        }));
    }

    fn list(&self) -> BoxFuture<'static, Result<Snapshot, LauncherLost>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return Box::pin(async { Err(LauncherLost) });
            }
            // Queued and sent under the lock, so replies match the order of requests.
            pending.lists.push_back(tx);
            let _ = self.out.send(protocol::encode(&ToLauncher::List { v: V }));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(LauncherLost)) })
    }

    fn ack_exit(&self, container_id: &str) {
        let _ = self.out.send(protocol::encode(&ToLauncher::AckExit {
            v: V,
            container_id: container_id.to_string(),
        }));
    }

    fn shutdown(&self) {
        let _ = self
            .out
            .send(protocol::encode(&ToLauncher::Shutdown { v: V }));
    }
}

async fn read_message(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> Option<FromLauncher> {
    loop {
        line.clear();
        match reader.read_until(b'\n', line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match protocol::decode::<FromLauncher>(line) {
            Ok(message) => return Some(message),
            Err(e) => tracing::warn!(error = %e, "message from the launcher skipped"),
        }
    }
}

/// Reads the daemon's messages until the connection ends.
async fn reader_loop(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    pending: Arc<Mutex<Pending>>,
    events: mpsc::UnboundedSender<LauncherEvent>,
) {
    let mut line = Vec::new();
    while let Some(message) = read_message(&mut reader, &mut line).await {
        match message {
            FromLauncher::Launched {
                container_id,
                pid,
                start_time,
                ..
            } => {
                let _ = events.send(LauncherEvent::Launched {
                    container_id,
                    pid,
                    start_time,
                });
            }
            FromLauncher::LaunchFailed {
                container_id,
                error,
                ..
            } => {
                let _ = events.send(LauncherEvent::LaunchFailed {
                    container_id,
                    error,
                });
            }
            FromLauncher::ListResult {
                running, exited, ..
            } => {
                if let Some(tx) = lock(&pending).lists.pop_front() {
                    let _ = tx.send(Ok(Snapshot { running, exited }));
                }
            }
            FromLauncher::Exited {
                container_id,
                wait_status,
                ..
            } => {
                let _ = events.send(LauncherEvent::Exited {
                    container_id,
                    wait_status,
                });
            }
            FromLauncher::Error { message, .. } => {
                tracing::warn!(%message, "the launcher refused a message")
            }
            FromLauncher::Welcome { .. } => {}
        }
    }
    let mut pending = lock(&pending);
    pending.closed = true;
    for tx in pending.lists.drain(..) {
        let _ = tx.send(Err(LauncherLost));
    }
    drop(pending);
    let _ = events.send(LauncherEvent::Disconnected);
}

/// Connects to the daemon of a work directory, starting it when none answers.
pub struct DaemonConnector {
    pub work_dir: PathBuf,
    /// The `tepui` binary to run as `<program> launcher --work_dir <work_dir>`.
    pub program: PathBuf,
}

impl Connector for DaemonConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Connection, String>> {
        let work_dir = self.work_dir.clone();
        let program = self.program.clone();
        Box::pin(async move { connect_or_start(&work_dir, &program).await })
    }
}

async fn try_connect(meta: &Path) -> std::io::Result<UnixStream> {
    let address = protocol::SocketAddress::new(meta)?;
    UnixStream::connect(address.path()).await
}

fn start_daemon(program: &Path, work_dir: &Path, meta: &Path) -> std::io::Result<()> {
    let log_path = meta.join(layout::LAUNCHER_LOG);
    let too_big = std::fs::metadata(&log_path).is_ok_and(|m| m.len() > LOG_BYTES_MAX);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(!too_big)
        .write(true)
        .truncate(too_big)
        .open(&log_path)?;
    let mut command = std::process::Command::new(program);
    command
        .arg("launcher")
        .arg("--work_dir")
        .arg(work_dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(command).spawn()?;
    tracing::info!(pid = ?child.id(), program = %program.display(), "launcher daemon started");
    // Reaped here if it exits while the agent runs (e.g. another daemon held the lock).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

/// Connects to the work directory's daemon and opens a session; a daemon is started whenever none
/// answers (again every `RESTART_EVERY` until one does: one that was just exiting for idleness, or
/// lost the race for the lock to another, leaves the next attempt to succeed).
pub async fn connect_or_start(work_dir: &Path, program: &Path) -> Result<Connection, String> {
    let meta = layout::meta_dir(work_dir);
    let mut dirty = Default::default();
    crate::checkpoint::create_dirs(&meta, &mut dirty)
        .map_err(|e| format!("cannot create {}: {e}", meta.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut started: Option<Instant> = None;
    loop {
        let error = match open_session(work_dir, &meta).await {
            Ok(connection) => return Ok(connection),
            Err(error) => error,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "no launcher answered within {START_TIMEOUT:?} ({error}); see {}",
                meta.join(layout::LAUNCHER_LOG).display()
            ));
        }
        if started.is_none_or(|at| at.elapsed() >= RESTART_EVERY) {
            tracing::info!(%error, "no launcher answers; starting one");
            start_daemon(program, work_dir, &meta)
                .map_err(|e| format!("cannot start the launcher {}: {e}", program.display()))?;
            started = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One attempt: connect, `HELLO`, `WELCOME`.
async fn open_session(work_dir: &Path, meta: &Path) -> Result<Connection, String> {
    let stream = try_connect(meta)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (read, mut write) = stream.into_split();
    let hello = ToLauncher::Hello {
        v: V,
        work_dir: work_dir.to_path_buf(),
    };
    write
        .write_all(&protocol::encode(&hello))
        .await
        .map_err(|e| format!("cannot talk to the launcher: {e}"))?;
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let welcome = tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut reader, &mut line)).await;
    match welcome {
        Ok(Some(FromLauncher::Welcome { pid, .. })) => {
            tracing::info!(pid, "connected to the launcher")
        }
        Ok(Some(FromLauncher::Error { message, .. })) => {
            return Err(format!("the launcher refused: {message}"))
        }
        Ok(other) => return Err(format!("unexpected answer from the launcher: {other:?}")),
        Err(_) => {
            return Err(format!(
                "the launcher did not answer HELLO within {HELLO_TIMEOUT:?}"
            ))
        }
    }
    let (out, out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(protocol::write_lines(write, out_rx));
    let pending = Arc::new(Mutex::new(Pending::default()));
    let (events_tx, events) = mpsc::unbounded_channel();
    tokio::spawn(reader_loop(reader, pending.clone(), events_tx));
    Ok(Connection {
        launcher: Arc::new(DaemonClient { out, pending }),
        events,
    })
}

#[cfg(test)]
pub mod fake {
    //! An in-memory launcher: launches succeed with made-up pids (or fail, if told so), exits happen
    //! when a test says.

    use super::*;

    #[derive(Default)]
    pub struct FakeState {
        next_pid: u32,
        pub running: std::collections::BTreeMap<String, u32>,
        pub exited: std::collections::BTreeMap<String, i32>,
        pub launched: Vec<LaunchRequest>,
        pub kills: Vec<(String, i32)>,
        pub acked: Vec<String>,
        pub refuse_launches: bool,
    }

    pub struct FakeLauncher {
        pub state: Mutex<FakeState>,
        events: mpsc::UnboundedSender<LauncherEvent>,
    }

    impl FakeLauncher {
        pub fn new() -> (Arc<FakeLauncher>, Connection) {
            let (events, rx) = mpsc::unbounded_channel();
            let fake = Arc::new(FakeLauncher {
                state: Mutex::new(FakeState {
                    next_pid: 1000,
                    ..Default::default()
                }),
                events,
            });
            let connection = Connection {
                launcher: fake.clone(),
                events: rx,
            };
            (fake, connection)
        }

        pub fn state(&self) -> MutexGuard<'_, FakeState> {
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The process of `container_id` ends with `wait_status`.
        pub fn exit(&self, container_id: &str, wait_status: i32) {
            let mut state = self.state();
            if state.running.remove(container_id).is_some() {
                state.exited.insert(container_id.to_string(), wait_status);
                let _ = self.events.send(LauncherEvent::Exited {
                    container_id: container_id.to_string(),
                    wait_status,
                });
            }
        }
    }

    impl Launcher for FakeLauncher {
        fn launch(&self, request: LaunchRequest) {
            let mut state = self.state();
            let container_id = request.container_id.clone();
            let event = if state.refuse_launches {
                LauncherEvent::LaunchFailed {
                    container_id,
                    error: "refused by the test".into(),
                }
            } else {
                state.next_pid += 1;
                let pid = state.next_pid;
                state.running.insert(container_id.clone(), pid);
                LauncherEvent::Launched {
                    container_id,
                    pid,
                    start_time: None,
                }
            };
            state.launched.push(request);
            let _ = self.events.send(event);
        }

        /// SIGKILL ends the process at once; other signals are only recorded.
        fn kill(&self, container_id: &str, signal: i32, _grace: Option<Duration>) {
            self.state().kills.push((container_id.to_string(), signal));
            if signal == libc::SIGKILL {
                self.exit(container_id, libc::SIGKILL);
            }
        }

        fn list(&self) -> BoxFuture<'static, Result<Snapshot, LauncherLost>> {
            let state = self.state();
            let snapshot = Snapshot {
                running: state
                    .running
                    .iter()
                    .map(|(id, pid)| RunningContainer {
                        container_id: id.clone(),
                        pid: *pid,
                    })
                    .collect(),
                exited: state
                    .exited
                    .iter()
                    .map(|(id, status)| ExitedContainer {
                        container_id: id.clone(),
                        wait_status: *status,
                    })
                    .collect(),
            };
            Box::pin(async move { Ok(snapshot) })
        }

        fn ack_exit(&self, container_id: &str) {
            let mut state = self.state();
            state.exited.remove(container_id);
            state.acked.push(container_id.to_string());
        }

        fn shutdown(&self) {}
    }
}
