//! The agent's runtime: owns the event loop that feeds the core and carries out its effects.
//!
//! What: `run` checks flags, prepares the work directory, binds the HTTP server, connects to the
//! launcher daemon (starting it if needed), recovers (`recovery`), starts the master link, then loops
//! over master messages, launcher events (launches, exits), checkpoint commits and a retry tick.
//! Each event goes into the core (under a short lock); its checkpoints and effects go to the group
//! commit (`commit`), and the effects are performed once their checkpoints are durable: launch a
//! process (sandbox on the blocking pool, then `LAUNCH` to the daemon), signal one, post an update,
//! acknowledge an exit to the daemon. The daemon reports a launch before its exit, on one channel,
//! so the core always learns of a process in that order.
//!
//! Stopping: when `shutdown` resolves, tasks keep running under the daemon (a restarted agent
//! re-attaches to them) unless `--kill_tasks_on_stop`; then, or when the master sends SHUTDOWN,
//! every task is killed (SIGTERM, SIGKILL after a grace period), its exit awaited and recorded, and
//! the daemon told to exit. After a master's SHUTDOWN the checkpoints are removed: the agent was
//! removed, the next start registers a new one.
//!
//! If the daemon goes away while the agent runs (someone killed it), the agent starts a new one and
//! settles its tasks again (`recovery::settle`): those it cannot find are reported lost.

mod executors; // custom executors: their processes, streams and API calls
mod health; // health checks: running them, their results
mod lifecycle;

use crate::checkpoint::{layout, Writer};
use crate::commit::{Action, GroupCommit};
use crate::core::{Core, Effect, LaunchSpec, Now};
use crate::flags::{AgentFlags, Config};
use crate::gc::Gc; // gc
use crate::isolation::{self, agent::AgentIsolation}; // isolation
use crate::launcher::{self, LaunchContext};
use crate::launcher_client::{Connection, Connector, DaemonConnector, Launcher, LauncherEvent};
use crate::launcher_protocol::decode_wait_status;
use crate::master_link::{self, Link, LinkEvent, Outbound};
use crate::recovery;
use crate::shared::{wall_now, AgentStatic, Shared};
use crate::{executor_api, http, resources_detect, AgentError};
use election::Detector;
use lifecycle::StopMode;
use proto::agent_protocol::{AgentCall, AgentInfo, MasterToAgent, PROTOCOL_VERSION};
use proto::{AgentId, ExecutorId, FrameworkId, TaskId};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Period of the status-update retry check.
const RETRY_TICK: Duration = Duration::from_secs(1);
/// Grace period of the kills on a graceful stop with `--kill_tasks_on_stop`.
pub const STOP_GRACE: Duration = Duration::from_secs(1);
/// How long the HTTP server may take to finish in-flight requests when the agent stops.
const HTTP_DRAIN: Duration = Duration::from_secs(2);
/// Most rounds of ready events handled before the next commit starts.
const DRAIN_MAX: usize = 256;
/// Master messages buffered between the link and the driver.
const LINK_QUEUE: usize = 1024;
/// Launches preparing their sandbox at once on the blocking pool.
fn launches_in_flight_max() -> usize {
    resources_detect::cpu_count().clamp(2, 8)
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        wall: wall_now(),
    }
}

/// Events of the driver's own tasks.
enum DriverEvent {
    /// A launch failed before reaching the launcher (its sandbox could not be made).
    LaunchFailed { container_id: String, error: String },
    /// A health check finished (or timed out).
    HealthChecked {
        probe: Box<crate::core::HealthProbe>,
        healthy: bool,
    },
}

struct Driver {
    shared: Arc<Shared>,
    work_dir: std::path::PathBuf,
    launch: Arc<LaunchContext>,
    launch_permits: Arc<Semaphore>,
    /// Downloads of `CommandInfo.uris` (`fetcher::http_client`) and their cache.
    fetch_http: reqwest::Client,
    fetch_cache: Arc<crate::fetch_cache::FetchCache>,
    /// Stops the fetch of a container's URIs (`Effect::AbortLaunch`); entries whose fetch ended
    /// are dropped as new ones come.
    fetch_aborts: HashMap<String, oneshot::Sender<()>>,
    launcher: Arc<dyn Launcher>,
    launcher_events: mpsc::UnboundedReceiver<LauncherEvent>,
    connector: Arc<dyn Connector>,
    /// Containers launched or launching, with the task each runs.
    containers: HashMap<String, (FrameworkId, TaskId)>,
    /// Containers of custom executors, launched or launching.
    executor_containers: HashMap<String, (FrameworkId, ExecutorId)>,
    /// The open `/api/v1/executor` stream of each subscribed executor: its connection number and
    /// the sender of its records.
    executor_streams:
        HashMap<(FrameworkId, ExecutorId), (u64, mpsc::UnboundedSender<bytes::Bytes>)>,
    /// Of those, the ones whose launch is not answered yet.
    launching: HashSet<String>,
    events_tx: mpsc::UnboundedSender<DriverEvent>,
    outbound: Outbound,
    /// Endpoint of the master this agent is registered with, and the id it gave.
    master: Option<(String, AgentId)>,
    /// Set while stopping with kills: the grace period given to processes that appear now.
    stopping: Option<Duration>,
    commits: GroupCommit,
    // isolation and gc: container limits and limitation reports; completed-sandbox deletion.
    isolation: AgentIsolation,
    gc: Gc,
}

impl Driver {
    /// Runs one core step; its checkpoints and effects go to the group commit.
    fn step(&mut self, f: impl FnOnce(&mut Core) -> Vec<Effect>) {
        let (ops, effects) = {
            let mut core = self.shared.core();
            let effects = f(&mut core);
            (core.drain_checkpoints(), effects)
        };
        self.commits
            .push(ops, effects.into_iter().map(Action::Effect));
    }

    /// Performs actions whose checkpoints are durable.
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::AckExit(container_id) => self.launcher.ack_exit(&container_id),
                Action::Effect(Effect::Launch(spec)) => {
                    if self.stopping.is_some() {
                        continue;
                    }
                    self.start_launch(*spec);
                }
                Action::Effect(Effect::Kill {
                    framework_id,
                    task_id,
                    grace,
                }) => {
                    match self
                        .container_of(&framework_id, &task_id)
                        .filter(|c| self.containers.contains_key(c) && !self.launching.contains(c))
                    {
                        Some(container_id) => {
                            tracing::info!(framework = %framework_id, task = %task_id, ?grace, "killing task");
                            self.launcher
                                .kill(&container_id, libc::SIGTERM, Some(grace));
                        }
                        None => {
                            tracing::debug!(framework = %framework_id, task = %task_id, "kill for a task with no process")
                        }
                    }
                }
                Action::Effect(Effect::AbortLaunch {
                    framework_id,
                    task_id,
                }) => {
                    let container = self.container_of(&framework_id, &task_id);
                    if let Some(abort) = container.and_then(|c| self.fetch_aborts.remove(&c)) {
                        tracing::info!(framework = %framework_id, task = %task_id, "killed while fetching its URIs; the fetch stops");
                        let _ = abort.send(());
                    }
                }
                Action::Effect(
                    effect @ (Effect::LaunchExecutor(_)
                    | Effect::SendToExecutor { .. }
                    | Effect::KillExecutor { .. }
                    | Effect::ExecutorExited { .. }),
                ) => self.perform_executor_effect(effect),
                Action::Effect(Effect::CheckHealth(probe)) => self.run_health_check(*probe),
                Action::Effect(Effect::Send(update)) => {
                    if self.stopping.is_some() {
                        continue;
                    }
                    if let Some((endpoint, agent_id)) = &self.master {
                        tracing::debug!(task = %update.status.task_id, state = update.status.state.name(), "status update to the master");
                        let call = AgentCall::StatusUpdate {
                            protocol_version: PROTOCOL_VERSION,
                            update,
                        };
                        self.outbound.post(endpoint, agent_id, call);
                    }
                }
            }
        }
    }

    /// The container id the core gave the task.
    fn container_of(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<String> {
        self.shared
            .core()
            .task(framework_id, task_id)
            .map(|t| t.container_id.value.clone())
    }

    /// Creates the sandbox on the blocking pool, then hands the process to the launcher; the
    /// outcome comes back as a launcher event. A kill that arrives meanwhile waits in the core.
    fn start_launch(&mut self, spec: LaunchSpec) {
        let container_id = spec.container_id.value.clone();
        self.containers.insert(
            container_id.clone(),
            (spec.framework_id.clone(), spec.task.task_id.clone()),
        );
        self.launching.insert(container_id.clone());
        let ctx = self.launch.clone();
        self.launch_prepared(container_id, spec.command_uris(), move |isolation| {
            let request = launcher::request(&spec, &ctx);
            // isolation: the container's cgroups and limits, joined by the daemon's hook.
            request.and_then(|mut request| {
                request.isolation = isolation.prepare_launch(&spec)?;
                Ok(request)
            })
        });
    }

    /// The launch path shared by tasks and executors: `prepare` (sandbox, isolation: blocking work)
    /// runs on the blocking pool under a launch permit, then `uris` are fetched into the sandbox
    /// (`fetcher`), then the request goes to the launcher; a failure comes back as `LaunchFailed`
    /// for the container.
    pub(crate) fn launch_prepared(
        &mut self,
        container_id: String,
        uris: Vec<serde_json::Value>,
        prepare: impl FnOnce(&AgentIsolation) -> Result<crate::launcher_protocol::LaunchRequest, String>
            + Send
            + 'static,
    ) {
        let permits = self.launch_permits.clone();
        let events = self.events_tx.clone();
        let launcher = self.launcher.clone();
        let isolation = self.isolation.clone();
        let http = self.fetch_http.clone();
        let cache = self.fetch_cache.clone();
        let (abort_tx, abort_rx) = oneshot::channel::<()>();
        if !uris.is_empty() {
            self.fetch_aborts.retain(|_, abort| !abort.is_closed());
            self.fetch_aborts.insert(container_id.clone(), abort_tx);
        }
        tokio::spawn(async move {
            let request = match permits.acquire_owned().await {
                Ok(permit) => tokio::task::spawn_blocking(move || {
                    let request = prepare(&isolation);
                    drop(permit);
                    request
                })
                .await
                .unwrap_or_else(|e| Err(format!("the launch did not complete: {e}"))),
                Err(_) => Err("the agent is stopping".to_string()),
            };
            let request = match request {
                Ok(request) if !uris.is_empty() => {
                    let fetch = async {
                        let uris = crate::fetcher::parse_uris(&uris)?;
                        crate::fetcher::fetch_all(
                            &uris,
                            &request.cwd,
                            &request.stderr,
                            &http,
                            &cache,
                        )
                        .await
                    };
                    // A dropped sender (its entry replaced or gone) disables the abort branch.
                    let fetched = tokio::select! {
                        fetched = fetch => fetched,
                        Ok(()) = abort_rx => Err("the task was killed while its URIs were fetched".to_string()),
                    };
                    fetched.map(|()| request).map_err(|e| {
                        format!("Failed to fetch all URIs for container '{container_id}': {e}")
                    })
                }
                other => other,
            };
            match request {
                Ok(request) => launcher.launch(request),
                Err(error) => {
                    let _ = events.send(DriverEvent::LaunchFailed {
                        container_id,
                        error,
                    });
                }
            }
        });
    }

    fn on_driver_event(&mut self, event: DriverEvent) {
        match event {
            DriverEvent::LaunchFailed {
                container_id,
                error,
            } => self.launch_failed(container_id, error),
            DriverEvent::HealthChecked { probe, healthy } => self.health_checked(*probe, healthy),
        }
    }

    fn launch_failed(&mut self, container_id: String, error: String) {
        let event = LauncherEvent::LaunchFailed {
            container_id: container_id.clone(),
            error: error.clone(),
        };
        if self.on_executor_launcher_event(&event) {
            return;
        }
        self.launching.remove(&container_id);
        self.isolation.launch_failed(&container_id); // isolation
        if let Some((framework_id, task_id)) = self.containers.remove(&container_id) {
            tracing::warn!(framework = %framework_id, task = %task_id, %error, "task launch failed");
            self.sandbox_done(&framework_id, &task_id); // gc
            self.step(|core| core.spawn_failed(now(), &framework_id, &task_id, &error));
        }
    }

    async fn on_launcher(&mut self, event: LauncherEvent) {
        if self.on_executor_launcher_event(&event) {
            return;
        }
        match event {
            LauncherEvent::Launched {
                container_id,
                pid,
                start_time,
            } => {
                self.launching.remove(&container_id);
                let Some((framework_id, task_id)) = self.containers.get(&container_id).cloned()
                else {
                    tracing::warn!(container = %container_id, pid, "launched a container no task claims; killing it");
                    self.launcher.kill(&container_id, libc::SIGKILL, None);
                    return;
                };
                tracing::info!(framework = %framework_id, task = %task_id, pid, "task launched");
                self.isolation.launched(&container_id, pid); // isolation
                if let Some(grace) = self.stopping {
                    self.launcher
                        .kill(&container_id, libc::SIGTERM, Some(grace));
                }
                self.step(|core| {
                    core.forked(
                        &framework_id,
                        &task_id,
                        crate::core::Forked { pid, start_time },
                    );
                    core.spawned(now(), &framework_id, &task_id, pid)
                });
            }
            LauncherEvent::LaunchFailed {
                container_id,
                error,
            } => self.launch_failed(container_id, error),
            LauncherEvent::Exited {
                container_id,
                wait_status,
            } => {
                self.launching.remove(&container_id);
                let exit = decode_wait_status(wait_status);
                if let Some((framework_id, task_id)) = self.containers.remove(&container_id) {
                    tracing::info!(framework = %framework_id, task = %task_id, ?exit, "task process exited");
                    // isolation: a container stopped at its memory limit ends TASK_FAILED with
                    // REASON_CONTAINER_LIMITATION_MEMORY instead of the plain exit.
                    let isolation = self.isolation.clone();
                    self.step(|core| {
                        isolation.exit_effects(
                            core,
                            now(),
                            &framework_id,
                            &task_id,
                            &container_id,
                            exit,
                        )
                    });
                    self.sandbox_done(&framework_id, &task_id); // gc
                }
                // Acknowledged once the terminal update is durable.
                self.commits
                    .push(Vec::new(), [Action::AckExit(container_id)]);
            }
            LauncherEvent::Disconnected => self.reconnect().await,
        }
    }

    /// gc: the task's process is gone; its sandbox's keep time starts now.
    fn sandbox_done(&mut self, framework_id: &FrameworkId, task_id: &TaskId) {
        let sandbox = {
            let core = self.shared.core();
            let live = core.task(framework_id, task_id).map(|t| t.sandbox.clone());
            // Archived already (every update acknowledged): the newest run of that task.
            live.or_else(|| {
                core.find_run(&framework_id.value, &task_id.value, crate::sandbox::LATEST)
                    .map(|t| t.sandbox.clone())
            })
        };
        if let Some(sandbox) = sandbox {
            self.gc.process_ended(&sandbox);
        }
    }

    /// Handles the events that are ready now (at most `DRAIN_MAX`), without waiting; `Some` when
    /// the agent must stop with that outcome.
    async fn drain_ready(
        &mut self,
        link: &mut mpsc::Receiver<LinkEvent>,
        events: &mut mpsc::UnboundedReceiver<DriverEvent>,
        api: &mut mpsc::UnboundedReceiver<executor_api::ApiRequest>,
    ) -> Option<Result<(), AgentError>> {
        for _ in 0..DRAIN_MAX {
            let mut progressed = false;
            if let Ok(request) = api.try_recv() {
                progressed = true;
                self.on_api(request);
            }
            if let Ok(event) = link.try_recv() {
                progressed = true;
                if let Some(outcome) = self.on_link(event) {
                    return Some(outcome);
                }
            }
            if let Ok(event) = self.launcher_events.try_recv() {
                progressed = true;
                self.on_launcher(event).await;
            }
            if let Ok(event) = events.try_recv() {
                progressed = true;
                self.on_driver_event(event);
            }
            if !progressed {
                break;
            }
        }
        None
    }

    /// Handles a link event; `Some` when the agent must stop with that outcome.
    fn on_link(&mut self, event: LinkEvent) -> Option<Result<(), AgentError>> {
        match event {
            LinkEvent::Registered {
                agent_id,
                master_info,
                endpoint,
            } => {
                self.master = Some((endpoint, agent_id.clone()));
                self.step(|core| core.registered(now(), agent_id, master_info));
            }
            LinkEvent::Disconnected => {
                tracing::info!(
                    "disconnected from the master; status updates queue until reregistration"
                );
                self.master = None;
                self.shared.core().disconnected();
            }
            LinkEvent::Message(message) => return self.on_message(*message),
        }
        None
    }

    fn on_message(&mut self, message: MasterToAgent) -> Option<Result<(), AgentError>> {
        match message {
            MasterToAgent::Registered { .. } => {} // the link turns these into `LinkEvent::Registered`
            MasterToAgent::RunTask { framework, task } => {
                self.step(|core| core.run_task(now(), framework, task))
            }
            MasterToAgent::RunTaskGroup {
                framework,
                executor,
                tasks,
            } => {
                tracing::info!(executor = %executor.executor_id, tasks = tasks.len(), "task group: running each task as a command task");
                for task in tasks {
                    let framework = framework.clone();
                    self.step(|core| core.run_task(now(), framework, task));
                }
            }
            MasterToAgent::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self
                .step(|core| core.kill_task(now(), &framework_id, &task_id, kill_policy.as_ref())),
            MasterToAgent::AcknowledgeUpdate {
                framework_id,
                task_id,
                uuid,
            } => self.step(|core| core.acknowledge(now(), &framework_id, &task_id, &uuid)),
            MasterToAgent::ShutdownFramework { framework_id } => {
                tracing::info!(framework = %framework_id, "shutting the framework's tasks down");
                self.step(|core| core.shutdown_framework(now(), &framework_id));
            }
            MasterToAgent::ShutdownExecutor {
                framework_id,
                executor_id,
            } => {
                tracing::info!(framework = %framework_id, executor = %executor_id, "shutting the executor down");
                self.step(|core| {
                    if core.executor(&framework_id, &executor_id).is_some() {
                        core.shutdown_executor(now(), &framework_id, &executor_id)
                    } else {
                        // A command task's executor carries the task's id.
                        let task_id = proto::TaskId::new(executor_id.value.clone());
                        core.kill_task(now(), &framework_id, &task_id, None)
                    }
                });
            }
            MasterToAgent::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                self.step(|core| core.framework_message(&framework_id, &executor_id, data));
            }
            MasterToAgent::ReconcileTasks {
                framework_id,
                task_ids,
            } => self.step(|core| core.reconcile(now(), &framework_id, &task_ids)),
            MasterToAgent::Ping => {
                if let Some((endpoint, agent_id)) = &self.master {
                    self.outbound.post(
                        endpoint,
                        agent_id,
                        AgentCall::Pong {
                            protocol_version: PROTOCOL_VERSION,
                        },
                    );
                }
            }
            MasterToAgent::Shutdown { message } => {
                tracing::warn!(%message, "the master asked this agent to shut down");
                return Some(Err(AgentError::ShutdownByMaster { message }));
            }
        }
        None
    }
}

/// See `crate::run`.
pub async fn run(
    flags: AgentFlags,
    detector: Arc<dyn Detector>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    let config = Config::from_flags(&flags)?;
    std::fs::create_dir_all(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let work_dir =
        std::fs::canonicalize(&config.work_dir).map_err(|source| AgentError::WorkDir {
            path: config.work_dir.clone(),
            source,
        })?;
    let resources = resources_detect::detect(&work_dir, config.resources.as_ref());
    let fetch_cache = crate::fetch_cache::FetchCache::start(
        config.fetcher_cache_dir.clone(),
        config.fetcher_cache_size,
    )
    .map_err(|e| AgentError::BadFlag {
        flag: "fetcher_cache_dir",
        message: format!("cannot prepare {}: {e}", config.fetcher_cache_dir.display()),
    })?;

    let bind = std::net::SocketAddr::new(config.bind_ip, config.port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| AgentError::Bind {
            address: bind.to_string(),
            source,
        })?;
    let bound_port = listener
        .local_addr()
        .map_err(|source| AgentError::Bind {
            address: bind.to_string(),
            source,
        })?
        .port();
    let port = config.advertise_port.unwrap_or(bound_port);

    let info = AgentStatic {
        flags: flags.to_map(),
        hostname: config.hostname.clone(),
        advertise_ip: config.advertise_ip.to_string(),
        port,
        resources: resources.clone(),
        attributes: config.attributes.clone(),
        start_time: wall_now(),
        started: Instant::now(),
    };
    let endpoint = info.endpoint();
    let agent_info = AgentInfo {
        id: None,
        hostname: config.hostname.clone(),
        port,
        resources: resources.to_resources(None),
        attributes: config.attributes.clone(),
    };
    let mut core = Core::new(
        work_dir.clone(),
        config.executor_shutdown_grace_period,
        Box::new(uuid::Uuid::new_v4),
    );
    core.set_executor_config(config.executors);
    core.set_agent_info(agent_info.clone());
    let shared = Arc::new(Shared::new(core, info));
    tracing::info!(%endpoint, work_dir = %work_dir.display(), resources = ?resources.flatten(), "agent starting");
    // isolation: says at start which isolation runs (a WARN when cgroups fall back to posix).
    let isolation = AgentIsolation::start(&config.isolation);

    // Recovery: the launcher first (it knows which processes still run), then the checkpoints.
    let connector: Arc<dyn Connector> = Arc::new(DaemonConnector {
        work_dir: work_dir.clone(),
        program: config.launcher_program.clone(),
    });
    let Connection {
        launcher,
        events: launcher_events,
    } = connector.connect().await.map_err(AgentError::Recovery)?;
    let prepared = recovery::prepare(config.recover, &work_dir, &agent_info, launcher.as_ref())
        .await
        .map_err(AgentError::Recovery)?;
    let writer = Arc::new(Writer::new(
        layout::meta_dir(&work_dir),
        agent_info.clone(),
        prepared.next_sequence,
        shared.recovery_errors.clone(),
    ));
    let mut commits = GroupCommit::new(writer, shared.recovery_errors.clone());
    {
        let mut core = shared.core();
        let report_exit = |core: &mut crate::core::Core,
                           now,
                           fw: &proto::FrameworkId,
                           task: &proto::TaskId,
                           container: &str,
                           exit| {
            isolation.report_recovered_exit(core, now, fw, task, container, exit)
        };
        let recovered = prepared.apply(&mut core, now(), launcher.as_ref(), &report_exit);
        shared
            .recovery_errors
            .fetch_add(recovered.errors as u64, Ordering::Relaxed);
        let settled = recovered.settled;
        let actions = settled
            .effects
            .into_iter()
            .map(Action::Effect)
            .chain(settled.ack_exits.into_iter().map(Action::AckExit));
        commits.push(core.drain_checkpoints(), actions);
        if let Some(id) = core.agent_id() {
            tracing::info!(agent = %id, tasks = core.live_tasks().count(), cleaned = recovered.cleaned,
                took = ?shared.info.started.elapsed(), "recovery done; reregistering");
        }
    }

    // isolation: re-attach the containers recovery found running; remove groups nobody claims.
    let mut recovered_containers: Vec<(String, isolation::Limits, Option<u32>)> = shared
        .core()
        .live_tasks()
        .filter_map(|t| match t.process {
            crate::core::Process::Running { pid } => Some((
                t.container_id.value.clone(),
                isolation::Limits::from_task(&t.info),
                Some(pid),
            )),
            _ => None,
        })
        .collect();
    {
        // Custom executors' containers too (limits from the executor's resources).
        let core = shared.core();
        let agent_id = core.agent_id().cloned().unwrap_or_default();
        for executor in core.live_executors() {
            if let crate::core::Process::Running { pid } = executor.process {
                let task = crate::core::process_task(&executor.info, &agent_id);
                recovered_containers.push((
                    executor.container_id.value.clone(),
                    isolation::Limits::from_task(&task),
                    Some(pid),
                ));
            }
        }
    }
    {
        let isolation = isolation.clone();
        let _ =
            tokio::task::spawn_blocking(move || isolation.recovered(&recovered_containers)).await;
    }
    // gc: every sandbox on disk is scheduled by its completion time (its mtime, or the recovered
    // terminal update's time when later).
    let known_completions = Gc::known_completions(&shared.core());
    let gc = Gc::start(work_dir.clone(), config.gc, known_completions).await;

    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    // isolation: /monitor/statistics joins the agent's endpoints.
    let (api_tx, mut api_rx) = mpsc::unbounded_channel();
    let router = http::router(shared.clone())
        .merge(isolation.router(shared.clone()))
        .merge(executor_api::router(api_tx));
    let mut server = tokio::spawn(async move {
        // Small records on streams must not wait for the peer's delayed ACK (Nagle).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = http_stop_rx.await;
            })
            .await
    });

    let client = master_link::http_client();
    let (link_tx, mut link_rx) = mpsc::channel(LINK_QUEUE);
    let link = Link {
        shared: shared.clone(),
        detector,
        events: link_tx,
        client: client.clone(),
        backoff_factor: config.registration_backoff_factor,
        agent_info,
        endpoint: endpoint.clone(),
    };
    let link_task = tokio::spawn(link.run());

    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        shared: shared.clone(),
        work_dir,
        launch: Arc::new(LaunchContext::new(endpoint, config.hostname.clone())),
        launch_permits: Arc::new(Semaphore::new(launches_in_flight_max())),
        fetch_http: crate::fetcher::http_client(),
        fetch_cache,
        fetch_aborts: HashMap::new(),
        launcher,
        launcher_events,
        connector,
        containers: HashMap::new(),
        executor_containers: HashMap::new(),
        executor_streams: HashMap::new(),
        launching: HashSet::new(),
        events_tx,
        outbound: Outbound::new(client),
        master: None,
        stopping: None,
        commits,
        isolation, // isolation
        gc,        // gc
    };
    driver.containers = driver.running_containers();
    driver.executor_containers = driver.running_executor_containers();

    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(RETRY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        // Everything already waiting is handled before a commit starts, so a burst (a thousand
        // RUN_TASKs, their acknowledgements, their launches) shares a few commits.
        if let Some(outcome) = driver
            .drain_ready(&mut link_rx, &mut events_rx, &mut api_rx)
            .await
        {
            break outcome;
        }
        let ready = driver.commits.kick();
        driver.perform(ready);
        let health_due = driver.shared.core().next_health_check_due();
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("agent stopping");
                break Ok(());
            }
            event = link_rx.recv() => match event {
                Some(event) => {
                    if let Some(outcome) = driver.on_link(event) {
                        break outcome;
                    }
                }
                None => break Err(AgentError::Internal("the master link stopped".into())),
            },
            event = driver.launcher_events.recv() => {
                driver.on_launcher(event.unwrap_or(LauncherEvent::Disconnected)).await;
            }
            Some(event) = events_rx.recv() => driver.on_driver_event(event),
            Some(request) = api_rx.recv() => driver.on_api(request),
            actions = driver.commits.done(), if driver.commits.in_flight() => driver.perform(actions),
            _ = health::health_due(health_due) => driver.step(|core| core.health_tick(now())),
            _ = tick.tick() => {
                driver.step(|core| core.tick(now()));
                let core = driver.shared.core();
                driver.gc.tick(&core); // gc
            }
            result = &mut server => {
                let message = match result {
                    Ok(Ok(())) => "the HTTP server stopped".to_string(),
                    Ok(Err(e)) => format!("the HTTP server failed: {e}"),
                    Err(e) => format!("the HTTP server task failed: {e}"),
                };
                break Err(AgentError::Internal(message));
            }
        }
    };

    link_task.abort();
    let mode = match &outcome {
        Err(AgentError::ShutdownByMaster { .. }) => StopMode::ByMaster,
        _ if config.kill_tasks_on_stop => StopMode::KillTasks,
        _ => StopMode::KeepTasks,
    };
    driver.stop(mode, &mut events_rx).await;
    let _ = http_stop_tx.send(());
    if !server.is_finished() && tokio::time::timeout(HTTP_DRAIN, &mut server).await.is_err() {
        server.abort();
    }
    tracing::info!("agent stopped");
    outcome
}
