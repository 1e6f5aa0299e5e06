//! What the elected Marathon instance runs (marathon-api.md §7, §8): the leader loop.
//!
//! One task owns the [`state::State`] (planner, apps, tasks) and reacts, one input at a time, to
//! REST commands (`commands`), Mesos events (`updates`, `offers`), health results (`health`) and
//! timers (a 1 s planner tick for backoff, launch timeouts, unreachable and kill retries; explicit
//! plus implicit reconciliation after every (re)subscription and every
//! `--reconciliation_interval`). Every step ends the same way ([`Leader::execute`]): the planner's
//! persistence intents are committed to the store in one fenced commit, only then are launches,
//! kills and acknowledgements sent and events published, and a fresh `ServiceView` is published.
//!
//! Mesos calls run on spawned tasks so a slow master never stalls the loop; their order relative
//! to the store is what matters, and each is spawned after the commit it depends on.

pub mod commands;
pub mod events;
pub mod health;
pub mod launch_queue;
pub mod offers;
pub mod ports;
pub mod state;
pub mod task_build;
pub mod updates;

use crate::error::MarathonError;
use crate::flags::Config;
use marathon_api::service::{Command, MarathonEvent, ServiceView};
use marathon_planner::Command as PCommand;
use marathon_store::{Leadership, Snapshot, StateStore, StoreOp};
use scheduler_client::{ClientConfig, ClientEvent, SchedulerClient};
use state::{now_ms, State};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The planner's tick (spec §7 "Other timers").
pub const TICK: Duration = Duration::from_secs(1);

/// What the leader publishes to.
#[derive(Clone)]
pub struct Outputs {
    pub view: watch::Sender<Arc<ServiceView>>,
    pub events: broadcast::Sender<MarathonEvent>,
}

/// Task ids Mesos reported that the books do not know, so a planner `Kill` can name them.
pub type UnknownTasks = BTreeMap<String, (String, Option<String>)>;

pub struct Leader {
    pub state: State,
    store: Arc<dyn StateStore>,
    out: Outputs,
    client: SchedulerClient,
    health: health::Checkers,
    health_rx: mpsc::Receiver<health::Probe>,
    /// A second reconciliation `--reconciliation_initial_delay` after each subscription: after a
    /// Mesos failover, agents re-register (and their tasks become known to the master) only after
    /// the first reconciliation was answered, and a task only they report must still be found.
    reconcile_again_at: Option<tokio::time::Instant>,
    /// When the view was last published, and whether it is behind: between events a step only
    /// marks it stale, and it is rebuilt at most every `PUBLISH_INTERVAL` (rebuilding the whole
    /// view after each of 10,000 status updates made a mass launch quadratic); answers to REST
    /// commands still publish at once.
    published_at: tokio::time::Instant,
    view_stale: bool,
    /// `PUBLISH_INTERVAL`, or longer when a rebuild took long (see [`Leader::publish`]).
    publish_interval: Duration,
}

/// The FrameworkInfo Marathon registers with (§8.2).
pub fn framework_info(config: &Config, framework_id: Option<&str>) -> proto::FrameworkInfo {
    proto::FrameworkInfo {
        user: config.mesos_user.clone(),
        name: config.framework_name.clone(),
        id: framework_id.map(proto::FrameworkId::new),
        failover_timeout: config.failover_timeout.as_secs_f64(),
        checkpoint: true,
        role: Some(config.mesos_role.clone()),
        roles: vec![],
        hostname: Some(config.hostname.clone()),
        principal: None,
        webui_url: Some(format!("http://{}:{}", config.hostname, config.http_port)),
        capabilities: vec![proto::FrameworkCapability {
            kind: "PARTITION_AWARE".into(),
        }],
        labels: None,
    }
}

/// Runs the leader until shutdown (`Ok`) or until it must stop leading (`Err`, see
/// [`MarathonError::exit_code`]). `snapshot` must be read after `fence()` (§8.1).
pub async fn run(
    config: Config,
    store: Arc<dyn StateStore>,
    snapshot: Arc<Snapshot>,
    out: Outputs,
    commands: &mut mpsc::Receiver<Command>,
    mut leadership: watch::Receiver<Leadership>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), MarathonError> {
    let (mut state, first, first_ops) = State::recover(config.clone(), &snapshot, now_ms());
    // §8.2: stored instances but no stored framework id → refuse to register.
    if state.framework_id.is_none() && !snapshot.instances.is_empty() {
        return Err(MarathonError::FrameworkIdMissing);
    }
    let mut client_config = ClientConfig::new(
        config.master.clone(),
        framework_info(&config, state.framework_id.as_deref()),
        true,
    );
    client_config.framework_id = state.framework_id.clone().map(proto::FrameworkId::new);
    client_config.zk_session_timeout = config.zk_session_timeout;
    let (client, mut mesos) = SchedulerClient::start(client_config)
        .map_err(|e| MarathonError::Other(format!("--master: {e}")))?;
    let (health_tx, health_rx) = mpsc::channel(1024);
    state.recover_deployment_groups();
    let mut leader = Leader {
        state,
        store,
        out,
        client: client.clone(),
        health: health::Checkers::new(health_tx),
        health_rx,
        reconcile_again_at: None,
        published_at: tokio::time::Instant::now(),
        view_stale: false,
        publish_interval: PUBLISH_INTERVAL,
    };
    let result = leader
        .run_loop(
            first,
            first_ops,
            commands,
            &mut leadership,
            &mut mesos,
            shutdown,
        )
        .await;
    leader.health.stop_all();
    client.stop();
    result
}

impl Leader {
    async fn run_loop(
        &mut self,
        first: Vec<PCommand>,
        first_ops: Vec<StoreOp>,
        commands: &mut mpsc::Receiver<Command>,
        leadership: &mut watch::Receiver<Leadership>,
        mesos: &mut mpsc::Receiver<ClientEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), MarathonError> {
        self.execute(first, first_ops, &UnknownTasks::new()).await?;
        self.sync_health();
        self.publish();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interval = self
            .state
            .config
            .reconciliation_interval
            .max(Duration::from_secs(1));
        let mut reconcile =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tokio::pin!(shutdown);
        loop {
            let reconcile_again_at = self.reconcile_again_at;
            let reconcile_again = async move {
                match reconcile_again_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let stale = self.view_stale;
            let publish_due = tokio::time::sleep_until(self.published_at + self.publish_interval);
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                // Wakes the loop so that a stale view is published (below) once it is due.
                _ = publish_due, if stale => {}
                _ = reconcile_again => {
                    self.reconcile_again_at = None;
                    self.reconcile();
                }
                changed = leadership.changed() => {
                    let now = if changed.is_ok() { leadership.borrow().clone() } else { Leadership::Lost };
                    if now != Leadership::Leader {
                        return Err(MarathonError::LostLeadership(format!("election says {now:?}")));
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await?,
                    None => return Ok(()),
                },
                event = mesos.recv() => match event {
                    Some(event) => self.on_mesos_batch(event, mesos).await?,
                    None => return Err(MarathonError::LostLeadership("the scheduler client stopped".into())),
                },
                Some(probe) = self.health_rx.recv() => self.on_probe(probe).await?,
                _ = tick.tick() => {
                    let cmds = self.state.planner.handle(now_ms().max(0) as u64, marathon_planner::Event::Tick);
                    self.execute(cmds, Vec::new(), &UnknownTasks::new()).await?;
                }
                _ = reconcile.tick() => self.reconcile(),
            }
            self.sync_health();
            if self.published_at.elapsed() >= self.publish_interval {
                self.publish();
            } else {
                self.view_stale = true;
            }
        }
    }

    /// `event` and the status updates queued right behind it: consecutive UPDATEs (up to
    /// `UPDATES_PER_BATCH`) go to the planner together and share one store commit; any other event
    /// is handled in its place in the order.
    async fn on_mesos_batch(
        &mut self,
        event: ClientEvent,
        mesos: &mut mpsc::Receiver<ClientEvent>,
    ) -> Result<(), MarathonError> {
        let mut batch = Vec::new();
        let mut next = Some(event);
        while let Some(event) = next.take() {
            match event {
                ClientEvent::Event(proto::scheduler::Event {
                    kind,
                    update: Some(update),
                    ..
                }) if kind == "UPDATE" => {
                    batch.push(update.status);
                    if batch.len() < UPDATES_PER_BATCH {
                        next = mesos.try_recv().ok();
                    }
                }
                other => {
                    if !batch.is_empty() {
                        self.on_statuses(std::mem::take(&mut batch)).await?;
                    }
                    self.on_mesos(other).await?;
                }
            }
        }
        if !batch.is_empty() {
            self.on_statuses(batch).await?;
        }
        Ok(())
    }

    async fn on_mesos(&mut self, event: ClientEvent) -> Result<(), MarathonError> {
        match event {
            ClientEvent::Connected {
                framework_id,
                master,
                reregistered,
            } => {
                tracing::info!(%framework_id, %master, reregistered, "subscribed to Mesos");
                self.state.mesos_master = Some(master.clone());
                if self.state.framework_id.as_deref() != Some(framework_id.as_str()) {
                    // §8.2: store the id Mesos assigned before anything else relies on it.
                    let op = StoreOp::PutFrameworkId(framework_id.value.clone());
                    self.store
                        .commit(vec![op])
                        .await
                        .map_err(MarathonError::from_store)?;
                    self.state.framework_id = Some(framework_id.value.clone());
                }
                let name = if reregistered {
                    "scheduler_reregistered_event"
                } else {
                    "scheduler_registered_event"
                };
                self.emit(events::scheduler_registered(
                    name,
                    &framework_id.value,
                    &master,
                ));
                self.reconcile();
                self.reconcile_again_at = Some(
                    tokio::time::Instant::now() + self.state.config.reconciliation_initial_delay,
                );
                if !self.state.launchable.is_empty() {
                    self.spawn_revive();
                }
            }
            ClientEvent::Event(event) => match event.kind.as_str() {
                "OFFERS" => {
                    if let Some(offers) = event.offers {
                        for offer in offers.offers {
                            self.on_offer(offer).await?;
                        }
                    }
                }
                "UPDATE" => {
                    if let Some(update) = event.update {
                        self.on_statuses(vec![update.status]).await?;
                    }
                }
                "RESCIND" | "HEARTBEAT" | "SUBSCRIBED" => {}
                "ERROR" => tracing::warn!(error = ?event.error, "Mesos sent ERROR"),
                other => tracing::debug!(kind = other, "ignoring Mesos event"),
            },
            ClientEvent::Disconnected { reason } => {
                tracing::warn!(%reason, "disconnected from Mesos; the client re-subscribes");
                self.state.mesos_master = None;
                self.emit(events::simple(
                    "scheduler_disconnected_event",
                    serde_json::json!({}),
                ));
            }
            ClientEvent::FrameworkRemoved { message } => {
                return Err(MarathonError::FrameworkRemoved(message))
            }
            ClientEvent::FailedOver { message } => {
                return Err(MarathonError::LostLeadership(format!(
                    "another scheduler took the framework over: {message}"
                )))
            }
        }
        Ok(())
    }

    /// §8.2: explicit reconciliation of every known task, then an implicit one.
    fn reconcile(&self) {
        let tasks: Vec<(proto::TaskId, Option<proto::AgentId>)> = self
            .state
            .tasks
            .values()
            .map(|t| {
                (
                    proto::TaskId::new(t.task_id.clone()),
                    Some(proto::AgentId::new(t.agent_id.clone())),
                )
            })
            .collect();
        let client = self.client.clone();
        tokio::spawn(async move {
            if !tasks.is_empty() {
                if let Err(e) = client.reconcile(tasks).await {
                    tracing::warn!(error = %e, "explicit reconciliation not sent");
                }
            }
            if let Err(e) = client.reconcile(vec![]).await {
                tracing::warn!(error = %e, "implicit reconciliation not sent");
            }
        });
    }

    fn spawn_revive(&self) {
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.revive().await {
                tracing::debug!(error = %e, "REVIVE not sent");
            }
        });
    }

    pub(crate) fn emit(&self, event: MarathonEvent) {
        let _ = self.out.events.send(event);
    }

    /// Rebuilds and publishes the view. A rebuild costs O(tasks), so between events the next one
    /// waits `PUBLISH_COST_FACTOR` times as long as this one took (at least `PUBLISH_INTERVAL`):
    /// the view never takes more than about a tenth of the loop, however many tasks there are.
    pub(crate) fn publish(&mut self) {
        let started = std::time::Instant::now();
        self.out
            .view
            .send_replace(Arc::new(self.state.view(now_ms())));
        self.publish_interval = PUBLISH_INTERVAL.max(started.elapsed() * PUBLISH_COST_FACTOR);
        self.published_at = tokio::time::Instant::now();
        self.view_stale = false;
    }

    /// Carries out planner commands: every persistence intent (plus `extra` ops) in one commit,
    /// then launches (queued for offers), kills, events (§8: "persist BEFORE acting").
    pub(crate) async fn execute(
        &mut self,
        cmds: Vec<PCommand>,
        ops: Vec<StoreOp>,
        unknown: &UnknownTasks,
    ) -> Result<(), MarathonError> {
        self.execute_with(cmds, ops, unknown, Vec::new()).await
    }

    /// [`Leader::execute`], publishing `first` right after the commit, before the commands'
    /// own events (a status update's events precede the deployment progress it causes, §6).
    pub(crate) async fn execute_with(
        &mut self,
        cmds: Vec<PCommand>,
        mut ops: Vec<StoreOp>,
        unknown: &UnknownTasks,
        first: Vec<MarathonEvent>,
    ) -> Result<(), MarathonError> {
        let mut expunged = Vec::new();
        for cmd in &cmds {
            match cmd {
                PCommand::StoreInstance(instance) => ops.push(self.state.instance_op(instance)),
                PCommand::Expunge { instance_id, .. } => {
                    ops.push(StoreOp::DeleteInstance {
                        id: instance_id.clone(),
                    });
                    expunged.push(instance_id.clone());
                }
                PCommand::StoreDeployment(d) => match serde_json::to_value(d.as_ref()) {
                    Ok(value) => ops.push(StoreOp::PutDeployment {
                        id: d.plan.id.clone(),
                        value,
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot encode a deployment"),
                },
                PCommand::RemoveDeployment { id } => {
                    ops.push(StoreOp::DeleteDeployment { id: id.clone() })
                }
                PCommand::AppTerminated { app_id } => ops.push(StoreOp::DeleteRetiredApp {
                    app_id: app_id.clone(),
                }),
                _ => {}
            }
        }
        for chunk in commit_chunks(last_op_per_instance(ops)) {
            self.store
                .commit(chunk)
                .await
                .map_err(MarathonError::from_store)?;
        }
        for event in first {
            self.emit(event);
        }
        let mut revive = false;
        for cmd in cmds {
            match cmd {
                PCommand::Launch {
                    app_id,
                    instance_id,
                    run_spec_version,
                } => {
                    revive |= self.state.launchable.is_empty();
                    self.state
                        .launchable
                        .insert(instance_id, app_id, run_spec_version);
                }
                PCommand::Kill {
                    instance_id,
                    reason,
                } => {
                    self.state.launchable.remove(&instance_id);
                    self.kill(&instance_id, reason, unknown);
                }
                PCommand::DeploymentStepStarted { id, step } => {
                    if let Some(e) =
                        events::deployment_step(&self.state, "deployment_info", &id, step)
                    {
                        self.emit(e);
                    }
                }
                PCommand::DeploymentStepSucceeded { id, step } => {
                    if let Some(e) =
                        events::deployment_step(&self.state, "deployment_step_success", &id, step)
                    {
                        self.emit(e);
                    }
                }
                PCommand::DeploymentSucceeded { id } => {
                    self.emit(events::deployment_end(
                        &self.state,
                        "deployment_success",
                        &id,
                        None,
                    ));
                    self.state.deployment_groups.remove(&id);
                }
                PCommand::DeploymentFailed { id, reason } => {
                    self.emit(events::deployment_end(
                        &self.state,
                        "deployment_failed",
                        &id,
                        Some(format!("{reason:?}")),
                    ));
                    self.state.deployment_groups.remove(&id);
                }
                PCommand::AppTerminated { app_id } => {
                    self.emit(events::simple(
                        "app_terminated_event",
                        serde_json::json!({"appId": app_id}),
                    ));
                    if let Ok(id) = marathon_model::PathId::parse(&app_id) {
                        self.state.retired.remove(&id);
                    }
                }
                PCommand::StoreInstance(_)
                | PCommand::Expunge { .. }
                | PCommand::StoreDeployment(_)
                | PCommand::RemoveDeployment { .. } => {}
            }
        }
        for id in expunged {
            self.state.tasks.remove(&id);
            self.state.launchable.remove(&id);
            self.state.health.remove(&id);
        }
        if revive {
            self.spawn_revive();
        }
        Ok(())
    }

    fn kill(
        &self,
        instance_id: &str,
        reason: marathon_planner::KillReason,
        unknown: &UnknownTasks,
    ) {
        let (task_id, agent_id, grace) = match self.state.tasks.get(instance_id) {
            Some(t) => {
                let grace = marathon_model::PathId::parse(
                    &self
                        .state
                        .planner
                        .instance(instance_id)
                        .map(|i| i.app_id.clone())
                        .unwrap_or_default(),
                )
                .ok()
                .and_then(|id| self.state.apps.get(&id))
                .and_then(|a| a.def.task_kill_grace_period_seconds);
                (t.task_id.clone(), Some(t.agent_id.clone()), grace)
            }
            None => match unknown.get(instance_id) {
                Some((task_id, agent)) => (task_id.clone(), agent.clone(), None),
                None => return, // never launched: nothing runs in Mesos
            },
        };
        tracing::info!(%task_id, ?reason, "killing task");
        let policy = grace.map(|s| proto::KillPolicy {
            grace_period: Some(proto::DurationInfo::from_secs_f64(s.max(0) as f64)),
        });
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client
                .kill(
                    proto::TaskId::new(task_id.clone()),
                    agent_id.map(proto::AgentId::new),
                    policy,
                )
                .await
            {
                tracing::warn!(%task_id, error = %e, "KILL not sent; the planner retries");
            }
        });
    }
}

/// Bytes of instance records one commit carries at most (ZooKeeper takes about 1 MB per request).
const COMMIT_INSTANCE_BYTES_MAX: usize = 512 * 1024;

/// Splits one step's store ops into commits ZooKeeper accepts: everything but instance records
/// (app versions, deployments, the framework id) goes first, in one commit, then the instance
/// records in commits of at most `COMMIT_INSTANCE_BYTES_MAX`. Nothing is acted on before the last
/// commit, and a leader that dies between two of them loses only instance records of this step,
/// which the recovered planner derives again from the stored apps and deployments (it launches
/// what their instance counts ask for), so a scale to 10,000 instances is no longer one request
/// over ZooKeeper's limit that stops the leader.
fn commit_chunks(ops: Vec<StoreOp>) -> Vec<Vec<StoreOp>> {
    let is_instance = |op: &StoreOp| {
        matches!(
            op,
            StoreOp::PutInstance { .. } | StoreOp::DeleteInstance { .. }
        )
    };
    let (instances, others): (Vec<StoreOp>, Vec<StoreOp>) =
        ops.into_iter().partition(|op| is_instance(op));
    let mut chunks = Vec::new();
    let mut current = others;
    let mut bytes = 0usize;
    for op in instances {
        let size = match &op {
            StoreOp::PutInstance { value, .. } => {
                serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0) + 256
            }
            _ => 256,
        };
        if bytes + size > COMMIT_INSTANCE_BYTES_MAX && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(op);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// The view is rebuilt at most this often between REST commands.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// Between events, the view waits this many times its last rebuild's duration (at least
/// `PUBLISH_INTERVAL`) before it is rebuilt again.
const PUBLISH_COST_FACTOR: u32 = 10;

/// Status updates handled (and committed) together at most.
const UPDATES_PER_BATCH: usize = 256;

/// One commit writes each instance once: when a batch stored an instance several times (STARTING,
/// then RUNNING) only its last record counts, in the position of its first.
fn last_op_per_instance(ops: Vec<StoreOp>) -> Vec<StoreOp> {
    let key = |op: &StoreOp| match op {
        StoreOp::PutInstance { id, .. } | StoreOp::DeleteInstance { id } => Some(id.clone()),
        _ => None,
    };
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(id) = key(op) {
            last.insert(id, i);
        }
    }
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Option<StoreOp>> = Vec::with_capacity(ops.len());
    let mut ops: Vec<Option<StoreOp>> = ops.into_iter().map(Some).collect();
    for i in 0..ops.len() {
        let Some(id) = ops[i].as_ref().and_then(key) else {
            out.push(ops[i].take());
            continue;
        };
        if placed.contains_key(&id) {
            continue;
        }
        let last_index = last.get(&id).copied().unwrap_or(i);
        placed.insert(id, out.len());
        out.push(ops[last_index].take());
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn a_big_step_is_committed_in_chunks_under_the_request_limit_with_the_rest_first() {
        let mut ops: Vec<StoreOp> = (0..10_000)
            .map(|i| StoreOp::PutInstance {
                id: format!("i{i}"),
                value: serde_json::json!({"padding": "x".repeat(200)}),
            })
            .collect();
        ops.push(StoreOp::PutFrameworkId("f".into()));
        let chunks = commit_chunks(ops);
        assert!(chunks.len() > 4, "{} chunks", chunks.len());
        assert!(
            matches!(chunks[0][0], StoreOp::PutFrameworkId(_)),
            "non-instance ops first"
        );
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 10_001);
        for chunk in &chunks {
            let bytes: usize = chunk
                .iter()
                .map(|op| match op {
                    StoreOp::PutInstance { value, .. } => {
                        serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0)
                    }
                    _ => 0,
                })
                .sum();
            assert!(bytes < 900 * 1024, "{bytes}");
        }
        assert!(commit_chunks(Vec::new()).is_empty());
    }

    #[test]
    fn an_instance_stored_twice_in_a_batch_is_written_once_with_its_last_record() {
        let put = |id: &str, n: i64| StoreOp::PutInstance {
            id: id.into(),
            value: serde_json::json!(n),
        };
        let ops = vec![
            put("a", 1),
            StoreOp::PutFrameworkId("f".into()),
            put("b", 1),
            put("a", 2),
            StoreOp::DeleteInstance { id: "b".into() },
        ];
        let out = last_op_per_instance(ops);
        assert_eq!(out.len(), 3);
        assert!(
            matches!(&out[0], StoreOp::PutInstance { id, value } if id == "a" && value == &serde_json::json!(2))
        );
        assert!(matches!(&out[1], StoreOp::PutFrameworkId(_)));
        assert!(matches!(&out[2], StoreOp::DeleteInstance { id } if id == "b"));
    }
}
