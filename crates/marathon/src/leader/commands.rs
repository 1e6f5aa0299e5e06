//! REST commands (marathon_api `service::Command`; marathon-api.md §4, §7, §3 versionInfo).
//!
//! A deploy builds the target root group from the current apps plus the changes, stamps versions
//! (new app: all three timestamps equal; scale only: `version` and `lastScalingAt`; config change
//! or restart: `version` and `lastConfigChangeAt`), assigns service ports, builds the plan, starts
//! it in the planner, and commits the app versions, the deployment and the planner's instance
//! intents in ONE store commit before answering (§9 "answer once the plan is stored").

use super::ports::assign_service_ports;
use super::state::{app_record, now_ms, put_app_op, run_spec, StoredApp};
use super::{events, Leader, UnknownTasks};
use crate::error::MarathonError;
use marathon_api::service::{AppChange, Command, CommandError, DeploymentResult, KillResult};
use marathon_model::{
    change_kind, AppDefinition, Change, PathId, Timestamp, VersionInfo, Violation,
};
use marathon_planner::{DeploymentError, DeploymentPlan, PlanOptions, RootGroup};
use marathon_store::StoreOp;
use serde_json::json;
use std::collections::BTreeMap;

type Apps = BTreeMap<PathId, (AppDefinition, VersionInfo)>;

fn not_found(app_id: &PathId) -> CommandError {
    CommandError::NotFound(format!("App '{app_id}' does not exist"))
}

fn deployment_error(e: DeploymentError) -> CommandError {
    match e {
        DeploymentError::Locked { deployment_ids } => CommandError::Locked { deployment_ids },
        DeploymentError::TooMany { max } => {
            CommandError::TooManyDeployments(format!("Max deployments exceeded ({max})"))
        }
        DeploymentError::NotFound { id } => {
            CommandError::NotFound(format!("DeploymentPlan {id} does not exist"))
        }
        other => CommandError::Invalid(vec![Violation::new("/", other.to_string())]),
    }
}

/// §7 versionInfo rules for `new` replacing `old` at `version`.
fn version_info(
    old: Option<(&AppDefinition, &VersionInfo)>,
    new: &AppDefinition,
    version: i64,
    restart: bool,
) -> Option<VersionInfo> {
    let ts = Timestamp(version);
    match old {
        None => Some(VersionInfo {
            last_scaling_at: ts,
            last_config_change_at: ts,
        }),
        Some(_) if restart => Some(VersionInfo {
            last_scaling_at: ts,
            last_config_change_at: ts,
        }),
        Some((old, vi)) => match change_kind(old, new) {
            Change::None => None,
            Change::ScaleOnly => Some(VersionInfo {
                last_scaling_at: ts,
                last_config_change_at: vi.last_config_change_at,
            }),
            Change::Restart => Some(VersionInfo {
                last_scaling_at: ts,
                last_config_change_at: ts,
            }),
        },
    }
}

impl Leader {
    /// Every app's definition and version info as it stands: the "current" side of a plan.
    fn current_apps(&self) -> Apps {
        self.state
            .apps
            .iter()
            .map(|(id, a)| (id.clone(), (a.def.clone(), a.version_info)))
            .collect()
    }

    pub(crate) async fn on_command(&mut self, command: Command) -> Result<(), MarathonError> {
        match command {
            Command::Deploy {
                changes,
                force,
                create_only,
                reply,
            } => {
                let outcome = self.deploy(changes, force, create_only).await;
                // The answer's readers (a GET right after the POST) must see what it reports.
                self.publish();
                answer(reply, outcome)
            }
            Command::KillTasks {
                task_ids,
                scale,
                wipe,
                force,
                reply,
            } => {
                let outcome = self.kill_tasks(task_ids, scale, wipe, force).await;
                // The answer's readers (a GET right after the POST) must see what it reports.
                self.publish();
                answer(reply, outcome)
            }
            Command::CancelDeployment { id, force, reply } => {
                let outcome = self.cancel(id, force).await;
                // The answer's readers (a GET right after the POST) must see what it reports.
                self.publish();
                answer(reply, outcome)
            }
            Command::ResetDelay { app_id, reply } => {
                let now = now_ms().max(0) as u64;
                if !self
                    .state
                    .planner
                    .queue(now)
                    .iter()
                    .any(|q| q.app_id == app_id.to_string())
                {
                    let _ = reply.send(Err(CommandError::NotFound(format!(
                        "Application {app_id} not found in tasks queue."
                    ))));
                    return Ok(());
                }
                let cmds = self.state.planner.handle(
                    now,
                    marathon_planner::Event::ResetDelay {
                        app_id: app_id.to_string(),
                    },
                );
                let outcome = self
                    .execute(cmds, Vec::new(), &UnknownTasks::new())
                    .await
                    .map(Ok);
                // The answer's readers (a GET right after the POST) must see what it reports.
                self.publish();
                answer(reply, outcome)
            }
            Command::GetAppVersion {
                app_id,
                version,
                reply,
            } => {
                let found = self
                    .state
                    .apps
                    .get(&app_id)
                    .and_then(|a| a.versions.get(&version.millis()))
                    .map(|(d, _)| d.clone());
                let _ = reply.send(found.ok_or_else(|| {
                    CommandError::NotFound(format!(
                        "App '{app_id}' does not exist in version {version}"
                    ))
                }));
                Ok(())
            }
            Command::Abdicate { reply } => {
                let _ = reply.send(());
                Err(MarathonError::Abdicated)
            }
        }
    }

    async fn deploy(
        &mut self,
        changes: Vec<AppChange>,
        force: bool,
        create_only: bool,
    ) -> Result<Result<DeploymentResult, CommandError>, MarathonError> {
        let version = self.state.next_version(now_ms());
        let current = self.current_apps();
        let mut target = current.clone();
        let mut options = PlanOptions::default();
        let mut posted = Vec::new();
        for change in changes {
            let (id, def, restart) = match change {
                AppChange::Put(def) => {
                    if create_only && target.contains_key(&def.id) {
                        return Ok(Err(CommandError::AlreadyExists(def.id)));
                    }
                    if let Some(clash) = target.keys().find(|a| {
                        **a != def.id && (a.starts_with(&def.id) || def.id.starts_with(a))
                    }) {
                        let msg =
                            format!("App '{}' conflicts with the app or group '{clash}'", def.id);
                        return Ok(Err(CommandError::Invalid(vec![Violation::new("/id", msg)])));
                    }
                    posted.push(def.clone());
                    (def.id.clone(), def, false)
                }
                AppChange::Scale { app_id, instances } => {
                    let Some((old, _)) = target.get(&app_id) else {
                        return Ok(Err(not_found(&app_id)));
                    };
                    let mut def = old.clone();
                    def.instances = instances as i64;
                    (app_id, def, false)
                }
                AppChange::Delete(app_id) => {
                    if target.remove(&app_id).is_none() {
                        return Ok(Err(not_found(&app_id)));
                    }
                    continue;
                }
                AppChange::Restart(app_id) => {
                    let Some((old, _)) = target.get(&app_id) else {
                        return Ok(Err(not_found(&app_id)));
                    };
                    options.restart.insert(app_id.to_string());
                    (app_id.clone(), old.clone(), true)
                }
                AppChange::Rollback {
                    app_id,
                    version: to,
                } => {
                    let Some(stored) = self
                        .state
                        .apps
                        .get(&app_id)
                        .and_then(|a| a.versions.get(&to.millis()))
                    else {
                        return Ok(Err(CommandError::NotFound(format!(
                            "App '{app_id}' does not exist in version {to}"
                        ))));
                    };
                    (app_id, stored.0.clone(), false)
                }
            };
            let mut def = def;
            let old = target.get(&id).cloned();
            let in_use = target
                .iter()
                .filter(|(a, _)| **a != id)
                .flat_map(|(_, (d, _))| d.port_definitions.iter().map(|p| p.port))
                .collect();
            let range = (
                self.state.config.local_port_min,
                self.state.config.local_port_max,
            );
            if let Err(i) =
                assign_service_ports(&mut def, old.as_ref().map(|(d, _)| d), &in_use, range)
            {
                let msg = format!("no free service port in {}..{}", range.0, range.1);
                return Ok(Err(CommandError::Invalid(vec![Violation::new(
                    format!("/portDefinitions({i})/port"),
                    msg,
                )])));
            }
            def.version = old.as_ref().and_then(|(d, _)| d.version);
            let Some(vi) =
                version_info(old.as_ref().map(|(d, vi)| (d, vi)), &def, version, restart)
            else {
                continue;
            };
            def.version = Some(Timestamp(version));
            target.insert(id, (def, vi));
        }
        let original = self.state.planner.apps().clone();
        let target_root: RootGroup = target
            .values()
            .map(|(d, vi)| (d.id.to_string(), run_spec(d, vi)))
            .collect();
        let id = uuid::Uuid::new_v4().to_string();
        let plan =
            match DeploymentPlan::build(id, version as u64, &original, &target_root, &options) {
                Ok(plan) => plan,
                Err(e) => {
                    return Ok(Err(CommandError::Invalid(vec![Violation::new(
                        "/",
                        e.to_string(),
                    )])))
                }
            };
        if let Err(violation) = fits_one_record(&plan) {
            return Ok(Err(CommandError::Invalid(vec![violation])));
        }
        let original_defs: Vec<AppDefinition> = current.values().map(|(d, _)| d.clone()).collect();
        let cmds =
            match self
                .state
                .planner
                .start_deployment(now_ms().max(0) as u64, plan.clone(), force)
            {
                Ok(cmds) => cmds,
                Err(e) => return Ok(Err(deployment_error(e))),
            };
        let ops = self.apply_target(&current, &target);
        self.remember_plan(&plan, &original_defs);
        for def in &posted {
            let fields = json!({"clientIp": "0.0.0.0", "uri": format!("/v2/apps{}", def.id), "appDefinition": self.state.app_json(&def.id)});
            self.emit(events::simple("api_post_event", fields));
        }
        self.emit(events::simple(
            "group_change_success",
            json!({"groupId": "/", "version": Timestamp(version)}),
        ));
        self.execute(cmds, ops, &UnknownTasks::new()).await?;
        Ok(Ok(DeploymentResult {
            deployment_id: plan.id,
            version: Timestamp(version),
        }))
    }

    /// Makes the books' apps equal `target`; returns the store ops that do the same.
    fn apply_target(&mut self, current: &Apps, target: &Apps) -> Vec<StoreOp> {
        let mut ops = Vec::new();
        let max = self.state.config.zk_max_versions.max(1) as usize;
        for (id, (def, vi)) in target {
            if current
                .get(id)
                .is_some_and(|(d, _)| d.version == def.version)
            {
                continue;
            }
            ops.push(put_app_op(def, vi));
            if !current.contains_key(id) && self.state.retired.remove(id).is_some() {
                // Back (a rollback, or created again): no longer kept for a rollback.
                ops.push(StoreOp::DeleteRetiredApp {
                    app_id: id.to_string(),
                });
            }
            let ms = def.version.map(|v| v.millis()).unwrap_or(0);
            let app = self
                .state
                .apps
                .entry(id.clone())
                .or_insert_with(|| StoredApp {
                    def: def.clone(),
                    version_info: *vi,
                    versions: BTreeMap::new(),
                });
            app.def = def.clone();
            app.version_info = *vi;
            app.versions.insert(ms, (def.clone(), *vi));
            while app.versions.len() > max {
                app.versions.pop_first();
            }
        }
        for id in current.keys().filter(|id| !target.contains_key(*id)) {
            // The store removes the app's task failure with it (and so do the books).
            ops.push(StoreOp::DeleteApp {
                app_id: id.to_string(),
            });
            self.state.last_failures.remove(id);
            if let Some(app) = self.state.apps.remove(id) {
                // Kept (in the store too, so a new leader can still roll the deployment back)
                // until the deployment has stopped the app.
                ops.push(StoreOp::PutRetiredApp {
                    app_id: id.to_string(),
                    value: app_record(&app.def, &app.version_info),
                });
                self.state.retired.insert(id.clone(), app);
            }
        }
        ops
    }

    /// Keeps the [compat] event plan (with `original`/`target` groups) of a started deployment.
    fn remember_plan(&mut self, plan: &DeploymentPlan, original: &[AppDefinition]) {
        let target: Vec<&AppDefinition> = self.state.apps.values().map(|a| &a.def).collect();
        let original: Vec<&AppDefinition> = original.iter().collect();
        let groups = (
            self.state.group_json(&original, plan.version as i64),
            self.state.group_json(&target, plan.version as i64),
        );
        self.state.deployment_groups.insert(
            plan.id.clone(),
            events::plan_with_groups(plan, groups.0, groups.1),
        );
    }

    async fn kill_tasks(
        &mut self,
        task_ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
    ) -> Result<Result<KillResult, CommandError>, MarathonError> {
        let mut ids: Vec<String> = Vec::new();
        for t in &task_ids {
            let Ok(parsed) = marathon_model::TaskId::parse(t) else {
                continue;
            };
            let id = parsed.instance.to_string();
            if self.state.planner.instance(&id).is_some() && !ids.contains(&id) {
                ids.push(id);
            }
        }
        let killed = ids.iter().filter_map(|i| self.state.task_view(i)).collect();
        let now = now_ms();
        if !scale {
            let cmds = self.state.planner.handle(
                now.max(0) as u64,
                marathon_planner::Event::KillRequested {
                    instance_ids: ids,
                    wipe,
                },
            );
            self.execute(cmds, Vec::new(), &UnknownTasks::new()).await?;
            return Ok(Ok(KillResult {
                killed,
                deployment: None,
            }));
        }
        let version = self.state.next_version(now);
        let plan = match self.state.planner.plan_kill_and_scale(version as u64, &ids) {
            Ok(plan) => plan,
            Err(e) => {
                return Ok(Err(CommandError::Invalid(vec![Violation::new(
                    "/",
                    e.to_string(),
                )])))
            }
        };
        let current = self.current_apps();
        let mut target = current.clone();
        for (app_id, spec) in &plan.target {
            let Ok(id) = PathId::parse(app_id) else {
                continue;
            };
            if let Some((def, vi)) = target.get_mut(&id) {
                if def.instances != spec.instances as i64 {
                    def.instances = spec.instances as i64;
                    def.version = Some(Timestamp(version));
                    vi.last_scaling_at = Timestamp(version);
                }
            }
        }
        let original_defs: Vec<AppDefinition> = current.values().map(|(d, _)| d.clone()).collect();
        if let Err(violation) = fits_one_record(&plan) {
            return Ok(Err(CommandError::Invalid(vec![violation])));
        }
        let cmds = match self
            .state
            .planner
            .start_deployment(now.max(0) as u64, plan.clone(), force)
        {
            Ok(cmds) => cmds,
            Err(e) => return Ok(Err(deployment_error(e))),
        };
        let ops = self.apply_target(&current, &target);
        self.remember_plan(&plan, &original_defs);
        self.execute(cmds, ops, &UnknownTasks::new()).await?;
        let deployment = Some(DeploymentResult {
            deployment_id: plan.id,
            version: Timestamp(version),
        });
        Ok(Ok(KillResult {
            killed: vec![],
            deployment,
        }))
    }

    async fn cancel(
        &mut self,
        id: String,
        force: bool,
    ) -> Result<Result<Option<DeploymentResult>, CommandError>, MarathonError> {
        let now = now_ms();
        let cancelled = match self
            .state
            .planner
            .cancel_deployment(now.max(0) as u64, &id, !force)
        {
            Ok(c) => c,
            Err(e) => return Ok(Err(deployment_error(e))),
        };
        let Some(plan) = cancelled.rollback else {
            self.execute(cancelled.commands, Vec::new(), &UnknownTasks::new())
                .await?;
            return Ok(Ok(None));
        };
        // Make the stored apps what the rollback drives them to.
        let version = self.state.next_version(now);
        let current = self.current_apps();
        let mut target = current.clone();
        for app_id in plan.affected_apps() {
            let Ok(pid) = PathId::parse(&app_id) else {
                continue;
            };
            match plan.target.get(&app_id) {
                Some(spec) => {
                    let stored = self
                        .state
                        .apps
                        .get(&pid)
                        .or_else(|| self.state.retired.get(&pid));
                    let found = stored.and_then(|a| {
                        a.versions.values().find(|(d, _)| {
                            d.version.map(|v| v.millis()) == Some(spec.version as i64)
                        })
                    });
                    if let Some((def, vi)) = found.cloned() {
                        let mut def = def;
                        def.version = Some(Timestamp(version));
                        target.insert(pid, (def, vi));
                    }
                }
                None => {
                    target.remove(&pid);
                }
            }
        }
        let original_defs: Vec<AppDefinition> = current.values().map(|(d, _)| d.clone()).collect();
        let revived: Vec<PathId> = target
            .keys()
            .filter(|p| !self.state.apps.contains_key(*p))
            .cloned()
            .collect();
        for pid in revived {
            if let Some(app) = self.state.retired.get(&pid).cloned() {
                self.state.apps.insert(pid, app);
            }
        }
        let ops = self.apply_target(&current, &target);
        self.remember_plan(&plan, &original_defs);
        self.execute(cancelled.commands, ops, &UnknownTasks::new())
            .await?;
        Ok(Ok(Some(DeploymentResult {
            deployment_id: plan.id,
            version: Timestamp(plan.version as i64),
        })))
    }
}

/// Replies with the command's outcome; a fatal error answers 503 and ends the leadership.
fn answer<T>(
    reply: tokio::sync::oneshot::Sender<Result<T, CommandError>>,
    outcome: Result<Result<T, CommandError>, MarathonError>,
) -> Result<(), MarathonError> {
    match outcome {
        Ok(result) => {
            let _ = reply.send(result);
            Ok(())
        }
        Err(e) => {
            let _ = reply.send(Err(CommandError::Unavailable(e.to_string())));
            Err(e)
        }
    }
}

/// A running deployment is stored as one record (≤ `marathon_store::RECORD_BYTES_MAX`): a change
/// touching so many apps that its plan would not fit is refused before anything is applied (422),
/// never left to fail at the store, which would stop the leader.
fn fits_one_record(plan: &DeploymentPlan) -> Result<(), Violation> {
    // The stored state adds the step position and a few ids to the plan.
    const STATE_OVERHEAD_BYTES: usize = 4096;
    let bytes = serde_json::to_vec(plan)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes.saturating_add(STATE_OVERHEAD_BYTES) > marathon_store::RECORD_BYTES_MAX {
        let apps = plan.affected_apps().len();
        return Err(Violation::new(
            "/",
            format!("this change touches {apps} apps, more than one deployment can hold; deploy them in smaller groups"),
        ));
    }
    Ok(())
}
