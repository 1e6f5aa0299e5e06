//! The `Planner`: apps, instances, running deployments and the launch queue as one sans-IO state
//! machine (ARCHITECTURE.md invariant: no I/O, no clock; `now_ms` comes in, `Command`s go out).
//!
//! Every entry point applies its input, then *converges*: for every app the rule of its current
//! mode (keep, scale, restart, stop; see `converge.rs`) decides kills and requests from the
//! instances alone, and running deployments advance when their step's actions are complete. The
//! rules are level-triggered, so recovering from the stored apps, instances and deployments (spec
//! §8.1 "A new leader reloads it and resumes stored deployments") continues where the old leader
//! stopped: every requested instance was stored before it was launched, so none is doubled.

use crate::backoff::LaunchDelay;
use crate::deployment::{AppPhase, DeploymentState};
use crate::index::AppIndex;
use crate::plan::{Action, DeploymentPlan, PlanOptions};
use crate::queue::{OfferStats, QueueDelay, QueueEntry};
use crate::restart::{restart_bounds, RestartBounds};
use crate::types::{
    AppId, Command, DeploymentError, DeploymentId, Event, FailReason, Goal, IdSource, Instance,
    InstanceId, InstanceState, KillReason, PlanError, PlannerConfig, RootGroup, RunSpec, TaskState,
};
use std::collections::{BTreeMap, BTreeSet};

/// Bound on converge/advance rounds within one entry point (each advance starts a new step).
pub(crate) const CONVERGE_ROUNDS_MAX: usize = 64;

/// How the planner drives one app right now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    /// Keep `instances` running (no deployment action, or one still to come).
    Keep(RunSpec),
    Scale {
        spec: RunSpec,
        named: Vec<InstanceId>,
    },
    Restart {
        spec: RunSpec,
        extra: bool,
    },
    Stop,
    /// No definition: kill whatever is left (spec §8.2 "decommissioned").
    Orphan,
}

impl Mode {
    pub(crate) fn spec(&self) -> Option<&RunSpec> {
        match self {
            Mode::Keep(spec) | Mode::Scale { spec, .. } | Mode::Restart { spec, .. } => Some(spec),
            Mode::Stop | Mode::Orphan => None,
        }
    }
}

/// Result of [`Planner::cancel_deployment`].
#[derive(Debug, Clone, PartialEq)]
pub struct Cancelled {
    pub commands: Vec<Command>,
    /// With rollback: the plan reverting the affected apps, already started (store its target).
    pub rollback: Option<DeploymentPlan>,
}

pub struct Planner {
    pub(crate) config: PlannerConfig,
    pub(crate) ids: Box<dyn IdSource + Send>,
    pub(crate) apps: RootGroup,
    pub(crate) instances: BTreeMap<InstanceId, Instance>,
    pub(crate) by_app: BTreeMap<AppId, BTreeSet<InstanceId>>,
    /// Per-app counters over `instances` (`index.rs`), so rules need not scan them.
    pub(crate) index: BTreeMap<AppId, AppIndex>,
    pub(crate) deployments: BTreeMap<DeploymentId, DeploymentState>,
    pub(crate) delays: BTreeMap<AppId, LaunchDelay>,
    pub(crate) offers: BTreeMap<AppId, OfferStats>,
    /// Times of recent health dooms per app (sliding window; not stored).
    pub(crate) health_dooms: BTreeMap<AppId, Vec<u64>>,
    /// Instances for which `Launch` was emitted by this planner incarnation.
    pub(crate) requested: BTreeSet<InstanceId>,
    /// Apps whose definition is gone while instances may remain; `AppTerminated` when empty.
    pub(crate) stopping: BTreeSet<AppId>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("apps", &self.apps.len())
            .field("instances", &self.instances.len())
            .field("deployments", &self.deployments.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Planner {
    pub fn new(config: PlannerConfig, ids: Box<dyn IdSource + Send>) -> Planner {
        Planner {
            config,
            ids,
            apps: RootGroup::new(),
            instances: BTreeMap::new(),
            by_app: BTreeMap::new(),
            index: BTreeMap::new(),
            deployments: BTreeMap::new(),
            delays: BTreeMap::new(),
            offers: BTreeMap::new(),
            health_dooms: BTreeMap::new(),
            requested: BTreeSet::new(),
            stopping: BTreeSet::new(),
        }
    }

    /// Rebuilds the planner from stored state (what a new leader loads) and continues: emits
    /// `Launch` again for requested instances and resumes deployments.
    pub fn recover(
        config: PlannerConfig,
        ids: Box<dyn IdSource + Send>,
        apps: RootGroup,
        instances: Vec<Instance>,
        deployments: Vec<DeploymentState>,
        now_ms: u64,
    ) -> (Planner, Vec<Command>) {
        let mut planner = Planner::new(config, ids);
        let mut cmds = Vec::new();
        planner.apps = apps;
        for instance in instances {
            if instance.state.is_terminal() {
                cmds.push(Command::Expunge {
                    instance_id: instance.id.clone(),
                    app_id: instance.app_id.clone(),
                });
            } else {
                planner.insert_instance(instance);
            }
        }
        for mut deployment in deployments {
            deployment.current_step = deployment.current_step.min(deployment.plan.steps.len());
            for action in deployment.plan.steps.iter().flat_map(|s| &s.actions) {
                if let Action::StopApplication { app } = action {
                    planner.stopping.insert(app.id.clone());
                }
            }
            planner
                .deployments
                .insert(deployment.plan.id.clone(), deployment);
        }
        let orphans: Vec<AppId> = planner
            .by_app
            .keys()
            .filter(|a| !planner.apps.contains_key(*a))
            .cloned()
            .collect();
        planner.stopping.extend(orphans);
        planner.converge_all(now_ms, &mut cmds);
        (planner, cmds)
    }

    /// Applies one event.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Command> {
        let mut cmds = Vec::new();
        match event {
            Event::StatusUpdate {
                instance_id,
                state,
                healthy,
                agent,
            } => self.on_status(now_ms, &instance_id, state, healthy, agent, &mut cmds),
            Event::HealthChanged {
                instance_id,
                healthy,
                kill,
            } => {
                let stored = self.update_instance(&instance_id, |inst| {
                    inst.healthy = healthy;
                    if healthy == Some(true) {
                        inst.health_kill_requested = false;
                        inst.doomed = false;
                    } else if kill && healthy == Some(false) {
                        inst.health_kill_requested = true;
                    }
                    inst.clone()
                });
                if let Some(inst) = stored {
                    cmds.push(Command::StoreInstance(inst));
                }
            }
            Event::Tick => self.retry_kills(now_ms, &mut cmds),
            Event::LaunchAccepted { instance_id, agent } => {
                self.on_launch_accepted(now_ms, &instance_id, agent, &mut cmds)
            }
            Event::KillRequested { instance_ids, wipe } => {
                for id in instance_ids {
                    self.kill_instance(&id, KillReason::Api, now_ms, &mut cmds);
                    if wipe {
                        self.forget(&id, &mut cmds);
                    }
                }
            }
            Event::ResetDelay { app_id } => {
                self.delays.remove(&app_id);
            }
            Event::OfferProcessed {
                app_id,
                used,
                reject_reasons,
            } => {
                if self.by_app.contains_key(&app_id) || self.apps.contains_key(&app_id) {
                    self.offers
                        .entry(app_id)
                        .or_default()
                        .record(used, &reject_reasons, now_ms);
                }
            }
        }
        self.converge_all(now_ms, &mut cmds);
        cmds
    }

    fn on_status(
        &mut self,
        now_ms: u64,
        id: &str,
        state: TaskState,
        healthy: Option<bool>,
        agent: Option<String>,
        cmds: &mut Vec<Command>,
    ) {
        if !self.instances.contains_key(id) {
            // Spec §8.2: tasks Mesos reports that the planner does not know are killed.
            if state.terminal_reason().is_none() {
                cmds.push(Command::Kill {
                    instance_id: id.to_string(),
                    reason: KillReason::Unknown,
                });
            }
            return;
        }
        let Some(inst) = self.update_instance(id, |inst| {
            Self::apply_status(inst, now_ms, state, healthy, agent);
            inst.clone()
        }) else {
            return;
        };
        if let Some(reason) = state.terminal_reason() {
            let (app_id, goal) = (inst.app_id.clone(), inst.goal);
            if goal == Goal::Running && reason.raises_backoff() {
                if let Some(spec) = self.mode(&app_id).spec().cloned() {
                    let previous = self.delays.get(&app_id);
                    let delay = LaunchDelay::after_failure(
                        previous,
                        &spec.backoff,
                        spec.config_version,
                        now_ms,
                    );
                    self.delays.insert(app_id, delay);
                }
            }
            self.forget(id, cmds);
        } else {
            cmds.push(Command::StoreInstance(inst));
        }
    }

    /// What a status update changes on the instance itself.
    fn apply_status(
        inst: &mut Instance,
        now_ms: u64,
        state: TaskState,
        healthy: Option<bool>,
        agent: Option<String>,
    ) {
        if healthy.is_some() {
            inst.healthy = healthy;
        }
        if agent.is_some() {
            inst.agent = agent;
        }
        match state {
            TaskState::Staging | TaskState::Starting => {
                inst.staged_at_ms.get_or_insert(now_ms);
                inst.state = if state == TaskState::Staging {
                    InstanceState::Staging
                } else {
                    InstanceState::Starting
                };
            }
            TaskState::Running => {
                inst.staged_at_ms.get_or_insert(now_ms);
                inst.started_at_ms.get_or_insert(now_ms);
                inst.state = InstanceState::Running;
            }
            TaskState::Killing => inst.state = InstanceState::Killing,
            TaskState::Lost | TaskState::Unreachable | TaskState::Unknown
                if !inst.state.is_unreachable() =>
            {
                inst.state = InstanceState::Unreachable { since_ms: now_ms };
            }
            _ => {}
        }
    }

    fn on_launch_accepted(
        &mut self,
        now_ms: u64,
        id: &str,
        agent: String,
        cmds: &mut Vec<Command>,
    ) {
        match self.instances.get(id) {
            Some(inst) if inst.state == InstanceState::Scheduled && self.requested.contains(id) => {
                self.set_requested(id, false);
                let stored = self.update_instance(id, |inst| {
                    inst.state = InstanceState::Staging;
                    inst.staged_at_ms = Some(now_ms);
                    inst.agent = Some(agent);
                    inst.clone()
                });
                cmds.extend(stored.map(Command::StoreInstance));
            }
            Some(_) => {}
            // Expunged meanwhile: the edge must not launch it.
            None => cmds.push(Command::Kill {
                instance_id: id.to_string(),
                reason: KillReason::Unknown,
            }),
        }
    }

    fn retry_kills(&mut self, now_ms: u64, cmds: &mut Vec<Command>) {
        let retry = self.config.kill_retry_ms;
        // Only instances with a kill in flight (index), in id order as before.
        let mut killing: Vec<InstanceId> = self
            .index
            .values()
            .flat_map(|i| i.killing.iter().cloned())
            .collect();
        killing.sort();
        for id in killing {
            let Some(inst) = self.instances.get_mut(&id) else {
                continue;
            };
            if let (Goal::Stopped, Some(kill)) = (inst.goal, inst.kill.as_mut()) {
                if !inst.state.is_terminal() && now_ms >= kill.sent_at_ms.saturating_add(retry) {
                    // `sent_at_ms` is not indexed, so it may change in place.
                    kill.sent_at_ms = now_ms;
                    cmds.push(Command::Kill {
                        instance_id: inst.id.clone(),
                        reason: kill.reason,
                    });
                }
            }
        }
    }

    // ---- deployments -------------------------------------------------------------------------

    /// Running deployments that touch any of `apps`.
    pub fn locked_by(&self, apps: &BTreeSet<AppId>) -> Vec<DeploymentId> {
        self.deployments
            .values()
            .filter(|d| d.affected_apps().iter().any(|a| apps.contains(a)))
            .map(|d| d.plan.id.clone())
            .collect()
    }

    /// Starts `plan` (spec §7 "Locking & force"). Returns `Locked` when a running deployment
    /// touches an affected app and `force` is false; with `force` those are cancelled where they
    /// stand (no rollback) and the new plan runs from the real state.
    pub fn start_deployment(
        &mut self,
        now_ms: u64,
        plan: DeploymentPlan,
        force: bool,
    ) -> Result<Vec<Command>, DeploymentError> {
        if self.deployments.contains_key(&plan.id) {
            return Err(DeploymentError::DuplicateId { id: plan.id });
        }
        let conflicts = self.locked_by(&plan.affected_apps());
        if !conflicts.is_empty() && !force {
            return Err(DeploymentError::Locked {
                deployment_ids: conflicts,
            });
        }
        let max = self.config.max_running_deployments;
        if !plan.is_noop() && self.deployments.len() - conflicts.len() >= max {
            return Err(DeploymentError::TooMany { max });
        }
        let mut cmds = Vec::new();
        for id in conflicts {
            self.deployments.remove(&id);
            cmds.push(Command::RemoveDeployment { id: id.clone() });
            cmds.push(Command::DeploymentFailed {
                id,
                reason: FailReason::Superseded {
                    by: plan.id.clone(),
                },
            });
        }
        for (id, spec) in &plan.target {
            self.apps.insert(id.clone(), spec.clone());
            self.stopping.remove(id);
        }
        for id in plan
            .original
            .keys()
            .filter(|id| !plan.target.contains_key(*id))
        {
            self.apps.remove(id);
            self.stopping.insert(id.clone());
        }
        if plan.is_noop() {
            cmds.push(Command::DeploymentSucceeded { id: plan.id });
        } else {
            let mut state = DeploymentState {
                plan,
                current_step: 0,
                restart_extra: BTreeSet::new(),
                started_at_ms: now_ms,
            };
            self.enter_step(&mut state);
            cmds.push(Command::StoreDeployment(Box::new(state.clone())));
            cmds.push(Command::DeploymentStepStarted {
                id: state.plan.id.clone(),
                step: 1,
            });
            self.deployments.insert(state.plan.id.clone(), state);
        }
        self.converge_all(now_ms, &mut cmds);
        Ok(cmds)
    }

    /// `DELETE /v2/deployments/{id}`: stops the deployment where it stands; with `rollback` a new
    /// deployment reverting its apps to their original specs is started and returned.
    pub fn cancel_deployment(
        &mut self,
        now_ms: u64,
        id: &str,
        rollback: bool,
    ) -> Result<Cancelled, DeploymentError> {
        let Some(deployment) = self.deployments.get(id) else {
            return Err(DeploymentError::NotFound { id: id.to_string() });
        };
        let rollback_plan = if rollback {
            let mut from = self.apps.clone();
            for action in deployment.plan.steps.iter().flat_map(|s| &s.actions) {
                if let Action::StopApplication { app } = action {
                    if self.by_app.contains_key(&app.id) {
                        // Still stopping: present, but on its way to no instances. As such the
                        // rollback plan scales it back up, so its target (what the caller stores
                        // and the planner keeps) names it; as it was, the app stayed removed.
                        from.insert(
                            app.id.clone(),
                            RunSpec {
                                instances: 0,
                                ..app.clone()
                            },
                        );
                    }
                }
            }
            let mut target = from.clone();
            for app in deployment.affected_apps() {
                match deployment.plan.original.get(&app) {
                    Some(spec) => target.insert(app, spec.clone()),
                    None => target.remove(&app),
                };
            }
            Some(DeploymentPlan::build(
                self.ids.next_id(),
                now_ms,
                &from,
                &target,
                &PlanOptions::default(),
            )?)
        } else {
            None
        };
        self.deployments.remove(id);
        let mut commands = vec![
            Command::RemoveDeployment { id: id.to_string() },
            Command::DeploymentFailed {
                id: id.to_string(),
                reason: FailReason::Cancelled,
            },
        ];
        if let Some(plan) = &rollback_plan {
            commands.extend(self.start_deployment(now_ms, plan.clone(), false)?);
        } else {
            self.converge_all(now_ms, &mut commands);
        }
        Ok(Cancelled {
            commands,
            rollback: rollback_plan,
        })
    }

    /// `DELETE …/tasks?scale=true`: a plan that kills `instance_ids` and lowers `instances` by the
    /// number of counted instances killed per app. The caller stores `plan.target` and starts it.
    pub fn plan_kill_and_scale(
        &mut self,
        now_ms: u64,
        instance_ids: &[InstanceId],
    ) -> Result<DeploymentPlan, PlanError> {
        let mut kill: BTreeMap<AppId, Vec<InstanceId>> = BTreeMap::new();
        for id in instance_ids {
            let inst = self
                .instances
                .get(id)
                .ok_or_else(|| PlanError::UnknownInstance {
                    instance_id: id.clone(),
                })?;
            if inst.is_counted() && self.apps.contains_key(&inst.app_id) {
                kill.entry(inst.app_id.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        let mut target = self.apps.clone();
        for (app, ids) in &kill {
            if let Some(spec) = target.get_mut(app) {
                spec.instances = spec.instances.saturating_sub(ids.len() as u32);
                spec.version = now_ms;
            }
        }
        DeploymentPlan::build(
            self.ids.next_id(),
            now_ms,
            &self.apps,
            &target,
            &PlanOptions {
                kill,
                ..Default::default()
            },
        )
    }

    /// Decides step-start facts: the +1 rule for restarts, backoff reset (spec §7).
    pub(crate) fn enter_step(&mut self, state: &mut DeploymentState) {
        state.restart_extra.clear();
        let actions: Vec<Action> = state.current_actions().to_vec();
        for action in actions {
            if let Action::RestartApplication { app } = action {
                self.delays.remove(&app.id);
                let healthy = self.index_of(&app.id).live_ready(app.has_health_checks);
                if crate::restart::needs_extra_capacity(app.instances, &app.upgrade, healthy) {
                    state.restart_extra.insert(app.id.clone());
                }
            }
        }
    }

    /// Advances deployments whose current step is complete; true when any step changed.
    pub(crate) fn advance_deployments(&mut self, cmds: &mut Vec<Command>) -> bool {
        let mut changed = false;
        let ids: Vec<DeploymentId> = self.deployments.keys().cloned().collect();
        for id in ids {
            let Some(mut state) = self.deployments.remove(&id) else {
                continue;
            };
            let complete = state
                .current_actions()
                .iter()
                .all(|a| self.action_complete(a));
            if !complete {
                self.deployments.insert(id, state);
                continue;
            }
            changed = true;
            cmds.push(Command::DeploymentStepSucceeded {
                id: id.clone(),
                step: state.current_step + 1,
            });
            state.current_step += 1;
            if state.is_finished() {
                cmds.push(Command::RemoveDeployment { id: id.clone() });
                cmds.push(Command::DeploymentSucceeded { id });
            } else {
                self.enter_step(&mut state);
                cmds.push(Command::StoreDeployment(Box::new(state.clone())));
                cmds.push(Command::DeploymentStepStarted {
                    id: id.clone(),
                    step: state.current_step + 1,
                });
                self.deployments.insert(id, state);
            }
        }
        changed
    }

    fn action_complete(&self, action: &Action) -> bool {
        match action {
            Action::StartApplication { .. } => true,
            Action::StopApplication { app } => self.index_of(&app.id).total == 0,
            Action::ScaleApplication { app, kill } => {
                let named_live = kill.iter().any(|id| {
                    self.instances
                        .get(id)
                        .is_some_and(|i| i.is_counted() && !i.doomed)
                });
                crate::scale::scale_complete(
                    app.instances,
                    app.has_health_checks,
                    named_live,
                    self.index_of(&app.id),
                )
            }
            Action::RestartApplication { app } => {
                // Complete means exactly n active instances, all new and ready: the counter
                // rules out most events without a walk.
                self.index_of(&app.id).active == app.instances as usize
                    && crate::restart::restart_complete(app, &self.app_instances(&app.id))
            }
        }
    }

    /// The mode of `app_id` (at most one deployment touches an app).
    pub(crate) fn mode(&self, app_id: &str) -> Mode {
        for deployment in self.deployments.values() {
            match deployment.app_phase(app_id) {
                AppPhase::NotAffected | AppPhase::Done => continue,
                AppPhase::Current(action) => {
                    return match action {
                        Action::StartApplication { app } => Mode::Keep(app.clone()),
                        Action::StopApplication { .. } => Mode::Stop,
                        Action::ScaleApplication { app, kill } => Mode::Scale {
                            spec: app.clone(),
                            named: kill.clone(),
                        },
                        Action::RestartApplication { app } => {
                            // Decided at the step start; also granted later if the condition
                            // arises (old instances turned healthy), else the restart could stall.
                            let extra = deployment.restart_extra.contains(app_id) || {
                                let healthy =
                                    self.index_of(app_id).live_ready(app.has_health_checks);
                                crate::restart::needs_extra_capacity(
                                    app.instances,
                                    &app.upgrade,
                                    healthy,
                                )
                            };
                            Mode::Restart {
                                spec: app.clone(),
                                extra,
                            }
                        }
                    };
                }
                AppPhase::Pending { started } => {
                    return match (
                        deployment.plan.original.get(app_id),
                        deployment.plan.target.get(app_id),
                    ) {
                        (Some(original), _) => Mode::Keep(original.clone()),
                        (None, Some(target)) if started => Mode::Keep(RunSpec {
                            instances: 0,
                            ..target.clone()
                        }),
                        _ => Mode::Orphan,
                    }
                }
            }
        }
        match self.apps.get(app_id) {
            Some(spec) => Mode::Keep(spec.clone()),
            None => Mode::Orphan,
        }
    }

    // ---- instance book-keeping ---------------------------------------------------------------

    /// The app's instances in id order. Ids the planner makes start with the app's safe id and a
    /// dot, so they sit together in `instances`: one walk over that range instead of a lookup per
    /// id (which compared long, mostly equal ids thousands of times per event of a big app). When
    /// the walk does not find every id `by_app` lists (ids from elsewhere), the lookups decide.
    pub(crate) fn app_instances(&self, app_id: &str) -> Vec<&Instance> {
        let Some(ids) = self.by_app.get(app_id) else {
            return Vec::new();
        };
        let prefix = format!("{}.", crate::converge::safe_id(app_id));
        let walked: Vec<&Instance> = self
            .instances
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(id, _)| id.starts_with(&prefix))
            .map(|(_, instance)| instance)
            .filter(|instance| instance.app_id == app_id)
            .collect();
        // Every instance of the app is in `by_app` (the index invariant), so equal counts mean
        // equal sets.
        if walked.len() == ids.len() {
            return walked;
        }
        ids.iter().filter_map(|id| self.instances.get(id)).collect()
    }

    pub(crate) fn insert_instance(&mut self, instance: Instance) {
        if let Some(previous) = self.instances.remove(&instance.id) {
            self.index_remove(&previous);
        }
        self.by_app
            .entry(instance.app_id.clone())
            .or_default()
            .insert(instance.id.clone());
        self.index_insert(&instance);
        self.instances.insert(instance.id.clone(), instance);
    }

    /// Removes an instance from the books and the store.
    pub(crate) fn forget(&mut self, id: &str, cmds: &mut Vec<Command>) {
        if let Some(inst) = self.instances.remove(id) {
            self.index_remove(&inst);
            if let Some(ids) = self.by_app.get_mut(&inst.app_id) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_app.remove(&inst.app_id);
                }
            }
            self.requested.remove(id);
            cmds.push(Command::Expunge {
                instance_id: inst.id,
                app_id: inst.app_id,
            });
        }
    }

    // ---- queries -------------------------------------------------------------------------------

    pub fn apps(&self) -> &RootGroup {
        &self.apps
    }

    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.get(id)
    }

    /// Ids of the apps that have instances.
    pub fn instance_app_ids(&self) -> impl Iterator<Item = &AppId> {
        self.by_app.keys()
    }

    pub fn instances_of(&self, app_id: &str) -> Vec<&Instance> {
        self.app_instances(app_id)
    }

    pub fn deployments(&self) -> impl Iterator<Item = &DeploymentState> {
        self.deployments.values()
    }

    pub fn deployment(&self, id: &str) -> Option<&DeploymentState> {
        self.deployments.get(id)
    }

    /// Ids of running deployments touching `app_id` (AppInfo `deployments`).
    pub fn app_deployments(&self, app_id: &str) -> Vec<DeploymentId> {
        self.locked_by(&[app_id.to_string()].into())
    }

    /// Bounds of the rolling restart `app_id` is in, if any.
    pub fn restart_bounds(&self, app_id: &str) -> Option<RestartBounds> {
        match self.mode(app_id) {
            Mode::Restart { spec, extra } => {
                Some(restart_bounds(spec.instances, &spec.upgrade, extra))
            }
            _ => None,
        }
    }

    /// `/v2/queue`: apps with requested instances or a running launch delay.
    pub fn queue(&self, now_ms: u64) -> Vec<QueueEntry> {
        let mut out = Vec::new();
        let app_ids: BTreeSet<&AppId> = self.by_app.keys().chain(self.delays.keys()).collect();
        for app_id in app_ids {
            let waiting = &self.index_of(app_id).waiting;
            let config_version = self.mode(app_id).spec().map(|s| s.config_version);
            let left_ms = match (self.delays.get(app_id), config_version) {
                (Some(d), Some(v)) => d.time_left_ms(v, now_ms),
                _ => 0,
            };
            if waiting.is_empty() && left_ms == 0 {
                continue;
            }
            out.push(QueueEntry {
                app_id: app_id.clone(),
                count: waiting.len() as u32,
                delay: QueueDelay {
                    time_left_seconds: left_ms as f64 / 1000.0,
                    overdue: left_ms == 0,
                },
                since_ms: waiting
                    .first()
                    .map(|(created_at, _)| *created_at)
                    .unwrap_or(now_ms),
                offers: self.offers.get(app_id).cloned().unwrap_or_default(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PlannerConfig, SeqIds};

    fn ids(instances: Vec<&Instance>) -> Vec<&str> {
        instances.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn an_apps_instances_are_found_whatever_their_ids_and_neighbours() {
        let mut planner = Planner::new(PlannerConfig::default(), Box::new(SeqIds::default()));
        let add = |planner: &mut Planner, id: &str, app: &str| {
            planner.insert_instance(Instance::scheduled(id.into(), app.into(), 1, 0));
        };
        // `/a_b` and `/a/b` share the safe id `a_b`; `/a_b.x` starts with `a_b.` as well.
        add(&mut planner, "a_b.instance-2", "/a_b");
        add(&mut planner, "a_b.instance-1", "/a/b");
        add(&mut planner, "a_b.instance-3", "/a_b");
        add(&mut planner, "a_b.x.instance-1", "/a_b.x");
        assert_eq!(
            ids(planner.app_instances("/a_b")),
            ["a_b.instance-2", "a_b.instance-3"]
        );
        assert_eq!(ids(planner.app_instances("/a/b")), ["a_b.instance-1"]);
        assert_eq!(ids(planner.app_instances("/a_b.x")), ["a_b.x.instance-1"]);
        // An id that does not start with the safe id (restored from elsewhere) is still found.
        add(&mut planner, "legacy-task-7", "/a_b");
        assert_eq!(
            ids(planner.app_instances("/a_b")),
            ["a_b.instance-2", "a_b.instance-3", "legacy-task-7"]
        );
        assert!(planner.app_instances("/none").is_empty());
    }
}
