//! The agent's runtime: owns the event loop that feeds the core and carries out its effects.
//!
//! What: `run` checks flags, prepares the work directory, binds the HTTP server, starts the master
//! link, then loops over master messages, process exits and a retry tick. Each event goes into the
//! core (under a short lock); each effect it returns is performed here: launch a process, signal
//! one, post an update. Launches run a few at a time on the blocking pool and report back; a kill
//! for a task still launching waits in the core and is delivered when the launch reports, and a
//! process's exit is always reported after its launch (its supervisor starts only then).
//!
//! Stopping: when `shutdown` resolves, or the master sends SHUTDOWN, every task's process group is
//! signalled (SIGTERM, then SIGKILL after a grace period) and reaped before `run` returns, so no
//! child outlives the agent.

use crate::core::{Core, Effect, LaunchSpec, Now};
use crate::flags::{AgentFlags, Config};
use crate::launcher::{self, LaunchContext, ProcessEvent, ProcessHandle};
use crate::master_link::{self, Link, LinkEvent, Outbound};
use crate::shared::{wall_now, AgentStatic, Shared};
use crate::{http, resources_detect, AgentError};
use election::Detector;
use proto::agent_protocol::{AgentCall, AgentInfo, MasterToAgent, PROTOCOL_VERSION};
use proto::{AgentId, FrameworkId, TaskId};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Period of the status-update retry check.
const RETRY_TICK: Duration = Duration::from_secs(1);
/// Grace period of the kills on a graceful stop.
pub const STOP_GRACE: Duration = Duration::from_secs(1);
/// Extra wait, beyond the grace period, for killed processes to be reaped.
const REAP_MARGIN: Duration = Duration::from_secs(5);
/// How long the HTTP server may take to finish in-flight requests when the agent stops.
const HTTP_DRAIN: Duration = Duration::from_secs(2);
/// Master messages buffered between the link and the driver.
const LINK_QUEUE: usize = 1024;
/// Launches (sandbox creation and spawn) running at once on the blocking pool.
fn launches_in_flight_max() -> usize {
    resources_detect::cpu_count().clamp(2, 8)
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        wall: wall_now(),
    }
}

struct Driver {
    shared: Arc<Shared>,
    launch: Arc<LaunchContext>,
    launch_permits: Arc<Semaphore>,
    /// Launches started whose `Launched` event has not arrived yet.
    launching: usize,
    processes: HashMap<(FrameworkId, TaskId), ProcessHandle>,
    events_tx: mpsc::UnboundedSender<ProcessEvent>,
    outbound: Outbound,
    /// Endpoint of the master this agent is registered with, and the id it gave.
    master: Option<(String, AgentId)>,
    /// Set while stopping: the grace period given to processes that appear now.
    stopping: Option<Duration>,
}

impl Driver {
    fn apply(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Launch(spec) => self.start_launch(*spec),
                Effect::Kill {
                    framework_id,
                    task_id,
                    grace,
                } => match self.processes.get(&(framework_id.clone(), task_id.clone())) {
                    Some(handle) => {
                        tracing::info!(framework = %framework_id, task = %task_id, ?grace, "killing task");
                        handle.kill(grace);
                    }
                    None => {
                        tracing::debug!(framework = %framework_id, task = %task_id, "kill for a task with no process")
                    }
                },
                Effect::Send(update) => {
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

    /// Runs sandbox creation and spawn on the blocking pool; the result comes back as
    /// `ProcessEvent::Launched`. A kill that arrives meanwhile waits in the core until `spawned`.
    fn start_launch(&mut self, spec: LaunchSpec) {
        self.launching += 1;
        let ctx = self.launch.clone();
        let permits = self.launch_permits.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let framework_id = spec.framework_id.clone();
            let task_id = spec.task.task_id.clone();
            let result = match permits.acquire_owned().await {
                Ok(permit) => tokio::task::spawn_blocking(move || {
                    let result = launcher::spawn(&spec, &ctx);
                    drop(permit);
                    result
                })
                .await
                .unwrap_or_else(|e| Err(format!("the launch did not complete: {e}"))),
                Err(_) => Err("the agent is stopping".to_string()),
            };
            let _ = events.send(ProcessEvent::Launched {
                framework_id,
                task_id,
                result,
            });
        });
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
                let effects = self.shared.core().registered(now(), agent_id, master_info);
                self.apply(effects);
            }
            LinkEvent::Disconnected => {
                tracing::info!("disconnected from the master; status updates queue until reregistration");
                self.master = None;
                self.shared.core().disconnected();
            }
            LinkEvent::Message(message) => return self.on_message(*message),
        }
        None
    }

    fn on_message(&mut self, message: MasterToAgent) -> Option<Result<(), AgentError>> {
        let effects = match message {
            MasterToAgent::Registered { .. } => Vec::new(), // the link turns these into `LinkEvent::Registered`
            MasterToAgent::RunTask { framework, task } => self.shared.core().run_task(now(), framework, task),
            MasterToAgent::RunTaskGroup {
                framework,
                executor,
                tasks,
            } => {
                tracing::info!(executor = %executor.executor_id, tasks = tasks.len(), "task group: running each task as a command task");
                let mut effects = Vec::new();
                for task in tasks {
                    effects.extend(self.shared.core().run_task(now(), framework.clone(), task));
                }
                effects
            }
            MasterToAgent::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self
                .shared
                .core()
                .kill_task(now(), &framework_id, &task_id, kill_policy.as_ref()),
            MasterToAgent::AcknowledgeUpdate {
                framework_id,
                task_id,
                uuid,
            } => self.shared.core().acknowledge(now(), &framework_id, &task_id, &uuid),
            MasterToAgent::ShutdownFramework { framework_id } => {
                tracing::info!(framework = %framework_id, "shutting the framework's tasks down");
                self.shared.core().shutdown_framework(now(), &framework_id)
            }
            MasterToAgent::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                tracing::info!(framework = %framework_id, executor = %executor_id, bytes = data.len(),
                    "framework message dropped: command executors take no messages");
                Vec::new()
            }
            MasterToAgent::ReconcileTasks { framework_id, task_ids } => {
                self.shared.core().reconcile(now(), &framework_id, &task_ids)
            }
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
                Vec::new()
            }
            MasterToAgent::Shutdown { message } => {
                tracing::warn!(%message, "the master asked this agent to shut down");
                return Some(Err(AgentError::ShutdownByMaster { message }));
            }
        };
        self.apply(effects);
        None
    }

    fn on_process(&mut self, event: ProcessEvent) {
        let effects = match event {
            ProcessEvent::Launched {
                framework_id,
                task_id,
                result,
            } => {
                self.launching = self.launching.saturating_sub(1);
                match result {
                    Ok(spawned) => {
                        let handle =
                            launcher::supervise(spawned, self.events_tx.clone(), framework_id.clone(), task_id.clone());
                        let pid = handle.pid;
                        tracing::info!(framework = %framework_id, task = %task_id, pid, "task launched");
                        if let Some(grace) = self.stopping {
                            handle.kill(grace);
                        }
                        self.processes.insert((framework_id.clone(), task_id.clone()), handle);
                        self.shared.core().spawned(now(), &framework_id, &task_id, pid)
                    }
                    Err(error) => {
                        tracing::warn!(framework = %framework_id, task = %task_id, %error, "task launch failed");
                        self.shared.core().spawn_failed(now(), &framework_id, &task_id, &error)
                    }
                }
            }
            ProcessEvent::Exited {
                framework_id,
                task_id,
                exit,
            } => {
                tracing::info!(framework = %framework_id, task = %task_id, ?exit, "task process exited");
                self.processes.remove(&(framework_id.clone(), task_id.clone()));
                self.shared.core().exited(now(), &framework_id, &task_id, exit)
            }
        };
        // While stopping, the end is recorded but nothing more is started or sent.
        if self.stopping.is_none() {
            self.apply(effects);
        }
    }

    /// Kills what still runs and waits until every process is reaped (or the deadline passes).
    async fn stop_processes(&mut self, events: &mut mpsc::UnboundedReceiver<ProcessEvent>, by_master: bool) {
        let grace = if by_master {
            // Each task's own grace, bounded by --executor_shutdown_grace_period.
            let effects = self.shared.core().shutdown_all(now());
            let longest = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Kill { grace, .. } => Some(*grace),
                    _ => None,
                })
                .max()
                .unwrap_or(STOP_GRACE);
            self.apply(effects);
            longest
        } else {
            STOP_GRACE
        };
        self.stopping = Some(grace);
        // Launches still waiting for their turn give up; those under way finish and are killed.
        self.launch_permits.close();
        for handle in self.processes.values() {
            handle.kill(grace);
        }
        if self.processes.is_empty() && self.launching == 0 {
            return;
        }
        tracing::info!(
            processes = self.processes.len(),
            launching = self.launching,
            ?grace,
            "stopping tasks"
        );
        let deadline = tokio::time::Instant::now() + grace + REAP_MARGIN;
        while !self.processes.is_empty() || self.launching > 0 {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(event)) => self.on_process(event),
                Ok(None) | Err(_) => break,
            }
        }
        if !self.processes.is_empty() {
            let pids: Vec<u32> = self.processes.values().map(|h| h.pid).collect();
            tracing::error!(?pids, "task processes still not reaped after SIGKILL");
        }
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
    let work_dir = std::fs::canonicalize(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let resources = resources_detect::detect(&work_dir, config.resources.as_ref());

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
    let core = Core::new(
        work_dir.clone(),
        config.executor_shutdown_grace_period,
        Box::new(uuid::Uuid::new_v4),
    );
    let shared = Arc::new(Shared::new(core, info));
    tracing::info!(%endpoint, work_dir = %work_dir.display(), resources = ?resources.flatten(), "agent starting");

    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(shared.clone());
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
        agent_info: AgentInfo {
            id: None,
            hostname: config.hostname.clone(),
            port,
            resources: resources.to_resources(None),
            attributes: config.attributes.clone(),
        },
        endpoint: endpoint.clone(),
    };
    let link_task = tokio::spawn(link.run());

    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        shared: shared.clone(),
        launch: Arc::new(LaunchContext::new(endpoint, config.hostname.clone())),
        launch_permits: Arc::new(Semaphore::new(launches_in_flight_max())),
        launching: 0,
        processes: HashMap::new(),
        events_tx,
        outbound: Outbound::new(client),
        master: None,
        stopping: None,
    };

    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(RETRY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
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
            Some(event) = events_rx.recv() => driver.on_process(event),
            _ = tick.tick() => {
                let effects = shared.core().tick(now());
                driver.apply(effects);
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
    let by_master = matches!(outcome, Err(AgentError::ShutdownByMaster { .. }));
    driver.stop_processes(&mut events_rx, by_master).await;
    let _ = http_stop_tx.send(());
    if !server.is_finished() && tokio::time::timeout(HTTP_DRAIN, &mut server).await.is_err() {
        server.abort();
    }
    tracing::info!("agent stopped");
    outcome
}
