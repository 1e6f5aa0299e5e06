//! `tepui launcher --work_dir DIR`: the per-agent daemon that parents task processes, so that
//! tasks outlive an agent restart (kill -9 included) and their exit statuses are not lost.
//!
//! What: the agent starts it (`launcher_client::connect_or_start`) when none answers on
//! `<work_dir>/meta/launcher.sock`. It puts itself in a new session (so no terminal signal or
//! process-group kill aimed at the agent reaches it), takes `meta/launcher.lock` (one daemon per
//! work directory), and serves the `launcher_protocol`: it spawns each task directly (no executor
//! process, no extra exec: `process.rs`), kills process groups (keeping the SIGKILL escalation timer
//! itself), lists what runs, and reports each exit, with the process's start time so a reused
//! pid is never taken for it. An exit is written to the run's `exit_status` (fsync'd; exits that
//! come together are written and synced together) *before* it is reported, and kept in memory
//! until an agent acknowledges it, so an exit while no agent is connected is never lost. It exits by itself when it has had no task and no
//! agent for `--idle_timeout` (60 s), or on `SHUTDOWN` (after killing what still runs).
//!
//! Sessions: an agent opens one with `HELLO`; a newer session replaces an older one (the agent
//! restarted). `gate` orders launches against sessions: a launch holds it for reading while it
//! spawns, a new session takes it for writing, so a `LAUNCH` still in flight from a dead agent
//! either shows in the new agent's `LIST` or never starts.
//!
//! Isolation hook: `SpawnHook` is where an isolation module (cgroups) plugs into the spawn path.

mod process;
#[cfg(test)]
mod tests;

use crate::checkpoint::layout;
use crate::launcher_protocol::{
    self as protocol, ExitedContainer, FromLauncher, LaunchRequest, RunningContainer, ToLauncher,
    LAUNCHER_PROTOCOL_VERSION as V,
};
use process::KillOrder;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Notify};

/// Default of `--idle_timeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Spawns in progress at once.
const SPAWNS_IN_FLIGHT_MAX: usize = 4;
/// How long `SHUTDOWN` waits for killed tasks to be reaped.
const SHUTDOWN_REAP: Duration = Duration::from_secs(10);

/// Flags of the hidden `tepui launcher` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct LauncherFlags {
    /// The agent's work directory.
    #[arg(long = "work_dir", alias = "work-dir")]
    pub work_dir: PathBuf,
    /// Exit after this long with no task and no agent connected.
    #[arg(
        long = "idle_timeout",
        alias = "idle-timeout",
        default_value = "60secs"
    )]
    pub idle_timeout: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error("--{flag}: {message}")]
    BadFlag { flag: &'static str, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> LauncherError + 'a {
    move |source| LauncherError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Where an isolation module plugs into the spawn path. Every method has a do-nothing default.
pub trait SpawnHook: Send + Sync {
    /// Before the spawn; may adjust the command. Adding a `pre_exec` closure makes std fork+exec
    /// instead of `posix_spawn`, which costs launch rate: prefer `after_spawn` where it is enough.
    fn before_spawn(
        &self,
        _request: &LaunchRequest,
        _command: &mut std::process::Command,
    ) -> Result<(), String> {
        Ok(())
    }
    /// Right after the spawn, before the launch is reported: e.g. write `pid` to the container's
    /// `cgroup.procs` (a process the task forks in between stays in its process group, which kills
    /// reach). An error kills the process and fails the launch.
    fn after_spawn(&self, _request: &LaunchRequest, _pid: u32) -> Result<(), String> {
        Ok(())
    }
    /// After the task's process group is gone: release what the container held.
    fn after_exit(&self, _container_id: &str) {}
}

/// No isolation: processes run in the daemon's cgroups.
pub struct NoIsolation;
impl SpawnHook for NoIsolation {}

struct Running {
    pid: u32,
    kills: mpsc::UnboundedSender<KillOrder>,
}

#[derive(Default)]
struct State {
    running: HashMap<String, Running>,
    /// Exits not yet acknowledged by an agent.
    exited: BTreeMap<String, i32>,
    /// The current session: its number and its outgoing lines.
    session: Option<(u64, mpsc::UnboundedSender<Vec<u8>>)>,
}

impl State {
    fn send(&self, session: u64, message: &FromLauncher) -> bool {
        match &self.session {
            Some((current, tx)) if *current == session => {
                tx.send(protocol::encode(message)).is_ok()
            }
            _ => false,
        }
    }
}

struct Daemon {
    work_dir: PathBuf,
    hook: Arc<dyn SpawnHook>,
    /// The current session number (see the module doc).
    gate: RwLock<u64>,
    state: Mutex<State>,
    shutdown: Notify,
    /// Spawns in progress at once on the blocking pool (more wait their turn).
    spawns: Arc<tokio::sync::Semaphore>,
    /// Exits to record, then report (`record_exits`).
    exits: mpsc::UnboundedSender<process::ExitRecord>,
}

impl Daemon {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn idle_timeout(text: &str) -> Result<Duration, LauncherError> {
    let secs = proto::parse_duration_secs(text).map_err(|message| LauncherError::BadFlag {
        flag: "idle_timeout",
        message,
    })?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(LauncherError::BadFlag {
            flag: "idle_timeout",
            message: format!("'{text}' must be a non-negative duration"),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `tepui launcher`: detaches from the agent's session and serves until idle or told to stop.
pub async fn run(flags: LauncherFlags) -> Result<(), LauncherError> {
    // A new session: no terminal, and no signal aimed at the agent's process group reaches us.
    // (Fails harmlessly when the agent already made us a session leader.)
    // SAFETY: setsid changes only this process's session; no memory is involved.
    unsafe {
        libc::setsid();
    }
    let idle = idle_timeout(&flags.idle_timeout)?;
    // Do not keep the agent's working directory (a mount) busy.
    let _ = std::env::set_current_dir("/");
    // isolation: joins the cgroups a launch request carries (does nothing for requests without).
    serve(
        &flags.work_dir,
        idle,
        Arc::new(crate::isolation::JoinCgroups),
    )
    .await
}

/// Serves the launcher protocol for `work_dir` in this process until idle or `SHUTDOWN`; returns at
/// once if another daemon already serves it. Tests run it in-process.
pub async fn serve(
    work_dir: &Path,
    idle: Duration,
    hook: Arc<dyn SpawnHook>,
) -> Result<(), LauncherError> {
    let work_dir = std::fs::canonicalize(work_dir)
        .map_err(io_error("cannot open the work directory", work_dir))?;
    let meta = layout::meta_dir(&work_dir);
    let mut dirty = Default::default();
    crate::checkpoint::create_dirs(&meta, &mut dirty).map_err(io_error("cannot create", &meta))?;
    let lock_path = meta.join(layout::LAUNCHER_LOCK);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error("cannot open", &lock_path))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped (at return).
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        tracing::info!(work_dir = %work_dir.display(), "another launcher serves this work directory");
        return Ok(());
    }
    let socket = meta.join(layout::LAUNCHER_SOCKET);
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("cannot remove the stale socket", &socket)(e)),
    }
    let address = protocol::SocketAddress::new(&meta).map_err(io_error("cannot open", &meta))?;
    let listener =
        UnixListener::bind(address.path()).map_err(io_error("cannot listen on", &socket))?;
    drop(address);
    let pid_path = meta.join(layout::LAUNCHER_PID);
    if let Err(e) =
        crate::checkpoint::write_atomic(&pid_path, std::process::id().to_string().as_bytes(), false)
    {
        tracing::warn!(error = %e, "cannot write {}", pid_path.display());
    }
    tracing::info!(work_dir = %work_dir.display(), pid = std::process::id(), "launcher serving");
    let (exits_tx, exits_rx) = mpsc::unbounded_channel();
    let daemon = Arc::new(Daemon {
        work_dir,
        hook,
        gate: RwLock::new(0),
        state: Mutex::new(State::default()),
        shutdown: Notify::new(),
        spawns: Arc::new(tokio::sync::Semaphore::new(SPAWNS_IN_FLIGHT_MAX)),
        exits: exits_tx,
    });
    tokio::spawn(record_exits(daemon.clone(), exits_rx));
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut idle_since: Option<Instant> = None;
    let mut shutdown = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(daemon.clone(), stream));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = daemon.shutdown.notified() => {
                shutdown = true;
                break;
            }
            _ = ticker.tick() => {
                let state = daemon.state();
                if state.running.is_empty() && state.session.is_none() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= idle {
                        tracing::info!(?idle, "no task and no agent; launcher exiting");
                        break;
                    }
                } else {
                    idle_since = None;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&socket);
    if shutdown {
        kill_all_and_wait(&daemon).await;
    }
    drop(lock);
    Ok(())
}

async fn kill_all_and_wait(daemon: &Daemon) {
    let deadline = Instant::now() + SHUTDOWN_REAP;
    {
        let state = daemon.state();
        for running in state.running.values() {
            let _ = running.kills.send(KillOrder {
                signal: libc::SIGKILL,
                grace: None,
            });
        }
    }
    loop {
        let left = daemon.state().running.len();
        if left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            tracing::error!(
                left,
                "tasks still not reaped after SIGKILL; launcher exiting anyway"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads one line (without its newline) into `line`; `Ok(false)` at the end of the stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(false);
        }
        match available.iter().position(|b| *b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = available.len();
                line.extend_from_slice(available);
                reader.consume(n);
            }
        }
        if line.len() > protocol::LINE_BYTES_MAX {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
    }
}

async fn connection(daemon: Arc<Daemon>, stream: UnixStream) {
    // Only our own user may drive us (the socket's directory is 0700 already).
    match stream.peer_cred() {
        // SAFETY: geteuid has no preconditions.
        Ok(cred) if cred.uid() == unsafe { libc::geteuid() } => {}
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), "connection from another user refused");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the peer of a connection; refused");
            return;
        }
    }
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(protocol::write_lines(write, rx));
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let mut session: Option<u64> = None;
    loop {
        match read_line(&mut reader, &mut line).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "agent connection broke");
                break;
            }
        }
        let message = match protocol::decode::<ToLauncher>(&line) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "message refused");
                let _ = tx.send(protocol::encode(&FromLauncher::Error {
                    v: V,
                    message: e.to_string(),
                }));
                continue;
            }
        };
        match (session, message) {
            (None, ToLauncher::Hello { work_dir, .. }) => {
                let same = std::fs::canonicalize(&work_dir).is_ok_and(|w| w == daemon.work_dir);
                if !same {
                    let message = format!(
                        "this launcher serves {}, not {}",
                        daemon.work_dir.display(),
                        work_dir.display()
                    );
                    let _ = tx.send(protocol::encode(&FromLauncher::Error { v: V, message }));
                    break;
                }
                session = Some(open_session(daemon.clone(), tx.clone()).await);
            }
            (None, _) => {
                let message = "HELLO first".to_string();
                let _ = tx.send(protocol::encode(&FromLauncher::Error { v: V, message }));
                break;
            }
            (Some(session), message) => handle(&daemon, session, message),
        }
    }
    if let Some(session) = session {
        let mut state = daemon.state();
        if state
            .session
            .as_ref()
            .is_some_and(|(current, _)| *current == session)
        {
            state.session = None;
            tracing::info!(session, "agent disconnected");
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Starts a session (replacing any other) and welcomes it.
async fn open_session(daemon: Arc<Daemon>, tx: mpsc::UnboundedSender<Vec<u8>>) -> u64 {
    let number = tokio::task::spawn_blocking(move || {
        // Waits for launches of older sessions that are spawning right now.
        let mut gate = daemon.gate.write().unwrap_or_else(|p| p.into_inner());
        *gate += 1;
        let number = *gate;
        let mut state = daemon.state();
        if state.session.is_some() {
            tracing::info!(
                session = number,
                "a new agent session replaces the previous one"
            );
        }
        let _ = tx.send(protocol::encode(&FromLauncher::Welcome {
            v: V,
            pid: std::process::id(),
        }));
        state.session = Some((number, tx));
        number
    })
    .await;
    number.unwrap_or(0)
}

fn handle(daemon: &Arc<Daemon>, session: u64, message: ToLauncher) {
    match message {
        ToLauncher::Hello { .. } => {}
        ToLauncher::Launch { launch, .. } => {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let Ok(_permit) = daemon.spawns.clone().acquire_owned().await else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || launch_task(&daemon, session, launch))
                    .await;
            });
        }
        ToLauncher::Kill {
            container_id,
            signal,
            grace_ms,
            ..
        } => {
            let state = daemon.state();
            match state.running.get(&container_id) {
                Some(running) => {
                    let order = KillOrder {
                        signal,
                        grace: grace_ms.map(Duration::from_millis),
                    };
                    let _ = running.kills.send(order);
                }
                None => {
                    tracing::debug!(container = %container_id, "kill for a container not running")
                }
            }
        }
        ToLauncher::List { .. } => {
            let state = daemon.state();
            let mut running: Vec<RunningContainer> = state
                .running
                .iter()
                .map(|(id, r)| RunningContainer {
                    container_id: id.clone(),
                    pid: r.pid,
                })
                .collect();
            running.sort_by(|a, b| a.container_id.cmp(&b.container_id));
            let exited = state
                .exited
                .iter()
                .map(|(id, status)| ExitedContainer {
                    container_id: id.clone(),
                    wait_status: *status,
                })
                .collect();
            state.send(
                session,
                &FromLauncher::ListResult {
                    v: V,
                    running,
                    exited,
                },
            );
        }
        ToLauncher::AckExit { container_id, .. } => {
            daemon.state().exited.remove(&container_id);
        }
        ToLauncher::Shutdown { .. } => {
            tracing::info!("shutdown asked for");
            daemon.shutdown.notify_one();
        }
    }
}

/// Spawns a task for `session` (blocking) and reports the outcome.
fn launch_task(daemon: &Arc<Daemon>, session: u64, request: LaunchRequest) {
    let container_id = request.container_id.clone();
    let gate = daemon.gate.read().unwrap_or_else(|p| p.into_inner());
    let refusal = if *gate != session {
        Some("a newer agent session took over".to_string())
    } else if daemon.state().running.contains_key(&container_id) {
        Some(format!("container {container_id} already runs"))
    } else {
        None
    };
    if let Some(error) = refusal {
        drop(gate);
        let failed = FromLauncher::LaunchFailed {
            v: V,
            container_id,
            error,
        };
        daemon.state().send(session, &failed);
        return;
    }
    let spawned = process::spawn(&request, daemon.hook.as_ref());
    let start_time = spawned
        .as_ref()
        .ok()
        .and_then(|(_, pid)| crate::checkpoint::records::process_start_time(*pid));
    let mut state = daemon.state();
    let (child, pid) = match spawned {
        Ok(spawned) => spawned,
        Err(error) => {
            drop(gate);
            state.send(
                session,
                &FromLauncher::LaunchFailed {
                    v: V,
                    container_id,
                    error,
                },
            );
            return;
        }
    };
    let (kills, kill_rx) = mpsc::unbounded_channel();
    state
        .running
        .insert(container_id.clone(), Running { pid, kills });
    // Reported before its supervisor starts, so the launch always precedes the exit on the wire.
    state.send(
        session,
        &FromLauncher::Launched {
            v: V,
            container_id: container_id.clone(),
            pid,
            start_time,
        },
    );
    drop(state);
    drop(gate);
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let wait_status = process::wait_and_kill(child, pid, &container_id, kill_rx).await;
        daemon.hook.after_exit(&container_id);
        let _ = daemon.exits.send(process::ExitRecord {
            container_id,
            checkpoint_dir: request.checkpoint_dir,
            wait_status,
        });
    });
}

/// Most exits recorded in one batch.
const EXITS_PER_BATCH_MAX: usize = 256;

/// Records exits in batches (durably, `process::record_exits`), then reports each: it leaves
/// `running` for `exited`, and the current session hears of it.
async fn record_exits(
    daemon: Arc<Daemon>,
    mut exits: mpsc::UnboundedReceiver<process::ExitRecord>,
) {
    while let Some(first) = exits.recv().await {
        let mut batch = vec![first];
        while batch.len() < EXITS_PER_BATCH_MAX {
            match exits.try_recv() {
                Ok(exit) => batch.push(exit),
                Err(_) => break,
            }
        }
        let (batch, errors) = tokio::task::spawn_blocking(move || {
            let errors = process::record_exits(&batch);
            (batch, errors)
        })
        .await
        .unwrap_or_else(|e| (Vec::new(), vec![format!("recording exits failed: {e}")]));
        for error in errors {
            tracing::error!(%error, "exit status not recorded on disk");
        }
        let mut state = daemon.state();
        for exit in batch {
            state.running.remove(&exit.container_id);
            state
                .exited
                .insert(exit.container_id.clone(), exit.wait_status);
            let message = FromLauncher::Exited {
                v: V,
                container_id: exit.container_id,
                wait_status: exit.wait_status,
            };
            if let Some((_, tx)) = &state.session {
                let _ = tx.send(protocol::encode(&message));
            }
        }
    }
}
