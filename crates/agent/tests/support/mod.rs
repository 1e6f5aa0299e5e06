//! Test support: a tiny fake master speaking the internal agent protocol, an agent runner, and a
//! polling helper (tests wait on conditions with deadlines, never on fixed sleeps).

#![allow(dead_code)]

pub mod executor;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use proto::agent_protocol::{
    AgentCall, MasterToAgent, StatusUpdate, AGENT_ID_HEADER, AGENT_PATH, PROTOCOL_VERSION,
};
use proto::{AgentId, MasterInfo, TaskState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const AGENT_ID: &str = "test-master-S0";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 20 ms until it yields a value; panics after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `eventually` for checks that must await (HTTP requests).
pub async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Default)]
pub struct Recorded {
    pub registrations: Mutex<Vec<AgentCall>>,
    pub updates: Mutex<Vec<StatusUpdate>>,
    pub pongs: AtomicUsize,
    /// `tepui-agent-id` header of every call after registration.
    pub call_agent_ids: Mutex<Vec<String>>,
    stream: Mutex<Option<mpsc::UnboundedSender<MasterToAgent>>>,
    /// When false, status updates are recorded but not acknowledged.
    pub auto_ack: AtomicBool,
    /// Executor exits and executor messages, in arrival order.
    pub executor_calls: Mutex<Vec<AgentCall>>,
}

pub struct FakeMaster {
    pub addr: SocketAddr,
    pub recorded: Arc<Recorded>,
}

fn record(message: &MasterToAgent) -> bytes::Bytes {
    let json = serde_json::to_vec(message).expect("messages serialize");
    bytes::Bytes::from(proto::recordio::encode(&json))
}

async fn agent_endpoint(
    State(recorded): State<Arc<Recorded>>,
    headers: HeaderMap,
    Json(call): Json<AgentCall>,
) -> Response {
    match call {
        AgentCall::Register { .. } | AgentCall::Reregister { .. } => {
            let agent_id = match &call {
                AgentCall::Reregister { agent_info, .. } => agent_info
                    .id
                    .clone()
                    .unwrap_or_else(|| AgentId::new(AGENT_ID)),
                _ => AgentId::new(AGENT_ID),
            };
            recorded.registrations.lock().unwrap().push(call);
            let (tx, rx) = mpsc::unbounded_channel();
            let master_info = MasterInfo::new(
                "test-master".into(),
                "127.0.0.1".parse().unwrap(),
                5050,
                "fake-master".into(),
            );
            tx.send(MasterToAgent::Registered {
                protocol_version: PROTOCOL_VERSION,
                agent_id,
                master_info,
                ping_timeout_total_secs: None,
            })
            .unwrap();
            *recorded.stream.lock().unwrap() = Some(tx);
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                let message = rx.recv().await?;
                Some((Ok::<_, std::io::Error>(record(&message)), rx))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        AgentCall::StatusUpdate { update, .. } => {
            if let Some(id) = headers.get(AGENT_ID_HEADER).and_then(|v| v.to_str().ok()) {
                recorded.call_agent_ids.lock().unwrap().push(id.to_string());
            }
            let ack = MasterToAgent::AcknowledgeUpdate {
                framework_id: update.framework_id.clone(),
                task_id: update.status.task_id.clone(),
                uuid: update.status.uuid.clone().unwrap_or_default(),
            };
            recorded.updates.lock().unwrap().push(update);
            if recorded.auto_ack.load(Ordering::SeqCst) {
                if let Some(tx) = recorded.stream.lock().unwrap().as_ref() {
                    let _ = tx.send(ack);
                }
            }
            StatusCode::ACCEPTED.into_response()
        }
        AgentCall::Pong { .. } => {
            recorded.pongs.fetch_add(1, Ordering::SeqCst);
            StatusCode::ACCEPTED.into_response()
        }
        AgentCall::ExecutorExited { .. } | AgentCall::ExecutorMessage { .. } => {
            recorded.executor_calls.lock().unwrap().push(call);
            StatusCode::ACCEPTED.into_response()
        }
    }
}

impl FakeMaster {
    pub async fn start() -> FakeMaster {
        let recorded = Arc::new(Recorded {
            auto_ack: AtomicBool::new(true),
            ..Default::default()
        });
        let app = Router::new()
            .route(AGENT_PATH, post(agent_endpoint))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeMaster { addr, recorded }
    }

    pub fn send(&self, message: MasterToAgent) {
        let guard = self.recorded.stream.lock().unwrap();
        guard
            .as_ref()
            .expect("an agent is registered")
            .send(message)
            .expect("the stream is open");
    }

    /// Ends the current stream, as a crashed or deposed master would.
    pub fn drop_stream(&self) {
        self.recorded.stream.lock().unwrap().take();
    }

    pub fn executor_calls(&self) -> Vec<AgentCall> {
        self.recorded.executor_calls.lock().unwrap().clone()
    }

    pub fn registrations(&self) -> Vec<AgentCall> {
        self.recorded.registrations.lock().unwrap().clone()
    }

    pub fn updates(&self) -> Vec<StatusUpdate> {
        self.recorded.updates.lock().unwrap().clone()
    }

    /// Updates received for `task`, in arrival order.
    pub fn updates_for(&self, task: &str) -> Vec<StatusUpdate> {
        self.updates()
            .into_iter()
            .filter(|u| u.status.task_id.value == task)
            .collect()
    }

    pub fn states_for(&self, task: &str) -> Vec<TaskState> {
        self.updates_for(task)
            .iter()
            .map(|u| u.status.state)
            .collect()
    }

    /// The agent's HTTP endpoint, from its registration.
    pub fn agent_endpoint(&self) -> Option<String> {
        self.registrations()
            .into_iter()
            .find_map(|call| match call {
                AgentCall::Register { endpoint, .. } | AgentCall::Reregister { endpoint, .. } => {
                    Some(endpoint)
                }
                _ => None,
            })
    }
}

pub fn temp_work_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tepui-agent-{name}-{}", uuid::Uuid::new_v4()))
}

/// The launcher daemon of a work directory, served in this test process on a thread of its own
/// (so it outlives an agent "killed" by dropping its runtime). It ends when an agent shuts it down
/// (`--kill_tasks_on_stop`, a master's SHUTDOWN) or after a minute idle.
pub struct LauncherHost {
    thread: Option<std::thread::JoinHandle<()>>,
    work_dir: PathBuf,
}

impl LauncherHost {
    pub fn start(work_dir: &std::path::Path) -> LauncherHost {
        std::fs::create_dir_all(work_dir).unwrap();
        let meta = work_dir.join("meta");
        let dir = work_dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the launcher");
            let served = runtime.block_on(agent::launcher_daemon::serve(
                &dir,
                agent::launcher_daemon::IDLE_TIMEOUT,
                Arc::new(agent::launcher_daemon::NoIsolation),
            ));
            if let Err(e) = served {
                eprintln!("in-process launcher failed: {e}");
            }
        });
        // Serving once its socket exists (agents would otherwise try to start one).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !meta.join("launcher.sock").exists() {
            assert!(
                Instant::now() < deadline,
                "the in-process launcher did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        LauncherHost {
            thread: Some(thread),
            work_dir: work_dir.to_path_buf(),
        }
    }

    /// Waits for the daemon to end (after an agent shut it down).
    pub async fn stopped(mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        eventually("the launcher to stop", Duration::from_secs(20), || {
            thread.is_finished().then_some(())
        })
        .await;
        let _ = thread.join();
    }
}

impl Drop for LauncherHost {
    /// A test that failed half-way leaves no task behind: the daemon is told to kill them all.
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if thread.is_finished() {
            return;
        }
        let _ = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut stream =
                std::os::unix::net::UnixStream::connect(self.work_dir.join("meta/launcher.sock"))?;
            let hello = serde_json::json!({"v": 1, "type": "HELLO", "work_dir": self.work_dir});
            writeln!(stream, "{hello}")?;
            writeln!(
                stream,
                "{}",
                serde_json::json!({"v": 1, "type": "SHUTDOWN"})
            )?;
            Ok(())
        })();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Flags every test agent uses: ephemeral port, fast registration, fixed resources, and a launcher
/// program that cannot start anything (the test hosts the daemon).
pub fn test_flags(master: &FakeMaster, work_dir: &std::path::Path) -> agent::AgentFlags {
    let mut flags = agent::AgentFlags::new(master.addr.to_string(), work_dir);
    flags.port = 0;
    flags.registration_backoff_factor = "10ms".into();
    flags.resources = Some("cpus:2;mem:1024;disk:1024;ports:[31000-31100]".into());
    flags.launcher_program = Some("/bin/false".into());
    flags
}

/// An agent on a runtime of its own, which `kill` drops at once: no graceful stop, nothing flushed
/// that was not already written (as `kill -9` would leave it).
pub struct KillableAgent {
    runtime: Option<tokio::runtime::Runtime>,
    pub work_dir: PathBuf,
}

impl KillableAgent {
    pub fn start(
        master: &FakeMaster,
        work_dir: &std::path::Path,
        tweak: impl FnOnce(&mut agent::AgentFlags),
    ) -> KillableAgent {
        let mut flags = test_flags(master, work_dir);
        tweak(&mut flags);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the agent");
        let address = master.addr.to_string();
        runtime.spawn(async move {
            let detector = Arc::new(election::StandaloneDetector::new(&address).unwrap());
            let outcome = agent::run(flags, detector, std::future::pending()).await;
            eprintln!("agent ended: {outcome:?}");
        });
        KillableAgent {
            runtime: Some(runtime),
            work_dir: work_dir.to_path_buf(),
        }
    }

    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for KillableAgent {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct RunningAgent {
    pub work_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub join: tokio::task::JoinHandle<Result<(), agent::AgentError>>,
    launcher: Option<LauncherHost>,
}

impl RunningAgent {
    /// An agent that kills its tasks when stopped (the behaviour these tests were written for),
    /// with its launcher daemon hosted in the test process.
    pub fn start(
        master: &FakeMaster,
        name: &str,
        tweak: impl FnOnce(&mut agent::AgentFlags),
    ) -> RunningAgent {
        let work_dir = temp_work_dir(name);
        let launcher = LauncherHost::start(&work_dir);
        let mut agent = RunningAgent::start_in(master, &work_dir, tweak);
        agent.launcher = Some(launcher);
        agent
    }

    /// Like `start`, on a work directory whose launcher the caller hosts.
    pub fn start_in(
        master: &FakeMaster,
        work_dir: &std::path::Path,
        tweak: impl FnOnce(&mut agent::AgentFlags),
    ) -> RunningAgent {
        let mut flags = test_flags(master, work_dir);
        flags.kill_tasks_on_stop = true;
        tweak(&mut flags);
        let detector =
            Arc::new(election::StandaloneDetector::new(&master.addr.to_string()).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(agent::run(flags, detector, async move {
            let _ = stopped.await;
        }));
        RunningAgent {
            work_dir: work_dir.to_path_buf(),
            stop: Some(stop),
            join,
            launcher: None,
        }
    }

    /// Stops the agent and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), agent::AgentError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finished().await
    }

    /// Waits for `run` to return on its own.
    pub async fn finished(mut self) -> Result<(), agent::AgentError> {
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.join)
            .await
            .expect("the agent stops within 30 s")
            .expect("the agent task did not panic");
        if let Some(launcher) = self.launcher.take() {
            launcher.stopped().await;
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
        result
    }
}

pub fn framework_json() -> serde_json::Value {
    serde_json::json!({"user": "root", "name": "test-framework", "id": {"value": "F1"}, "failover_timeout": 60.0})
}

pub fn run_task(id: &str, command: serde_json::Value) -> MasterToAgent {
    let message = serde_json::json!({
        "type": "RUN_TASK",
        "framework": framework_json(),
        "task": {
            "name": id, "task_id": {"value": id}, "agent_id": {"value": AGENT_ID},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}},
                {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31005, "end": 31006}]}}
            ],
            "command": command
        }
    });
    serde_json::from_value(message).expect("a valid RUN_TASK")
}

pub fn kill_task(id: &str) -> MasterToAgent {
    serde_json::from_value(serde_json::json!({
        "type": "KILL_TASK", "framework_id": {"value": "F1"}, "task_id": {"value": id}
    }))
    .unwrap()
}

/// Whether a process with this pid still exists (zombies count as gone once reaped).
pub fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}
