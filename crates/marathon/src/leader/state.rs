//! The leader's books: the planner (instances, deployments, launch queue), the full app
//! definitions and their stored versions, what Mesos knows of each launched task, and the
//! `ServiceView` the REST layer reads (marathon-api.md §3-§5).
//!
//! Why two halves: the planner only knows `RunSpec`s and instance lifecycles (it is pure and knows
//! no app model), while the REST API shows full definitions, versions, host ports, agents and
//! health results. Each stored instance record carries both: `{"instance": <planner Instance>,
//! "task": <TaskRecord>}`; each stored app version is the app JSON plus its `versionInfo`.
//!
//! Invariant: the state is rebuilt from a store snapshot taken after fencing (§8.1), never from
//! memory an earlier leadership left behind.

use crate::flags::Config;
use marathon_api::service::{AppEntry, QueueEntry, ServiceView};
use marathon_model::{
    AppDefinition, HealthCheckResult, IpAddress, LastTaskFailure, PathId, Task, Timestamp,
    VersionInfo,
};
use marathon_planner::{
    Backoff, DeploymentState, Instance, KillSelection, Planner, PlannerConfig, RootGroup, RunSpec,
    Unreachable, UpgradeStrategy,
};
use marathon_store::{version_from_millis, Snapshot, StoreOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One app: its current definition (with `version` set) and every stored version.
#[derive(Debug, Clone)]
pub struct StoredApp {
    pub def: AppDefinition,
    pub version_info: VersionInfo,
    /// version (ms) -> definition, oldest first; includes the current one.
    pub versions: BTreeMap<i64, (AppDefinition, VersionInfo)>,
}

impl StoredApp {
    /// The definition a launch of `config_version` (ms of `lastConfigChangeAt`) runs: the newest
    /// stored version with that config version, else the current one.
    pub fn for_config_version(&self, config_version: u64) -> &AppDefinition {
        self.versions
            .values()
            .rev()
            .find(|(_, vi)| vi.last_config_change_at.millis() as u64 == config_version)
            .map(|(def, _)| def)
            .unwrap_or(&self.def)
    }
}

/// What Mesos knows of a launched instance (absent until the offer was accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub agent_id: String,
    pub host: String,
    pub host_ports: Vec<u32>,
    /// The app version (ms) the task runs.
    pub app_version_ms: i64,
    /// `TASK_STAGING`, `TASK_RUNNING`, ...
    pub state: String,
    pub staged_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub role: String,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
}

/// The leader's state. Fields are public to the `leader` modules, which each handle one concern.
pub struct State {
    pub config: Config,
    pub planner: Planner,
    pub apps: BTreeMap<PathId, StoredApp>,
    /// Apps stopped by a deployment, kept for a rollback that brings them back (in the store too,
    /// their last definition only, until the app has stopped or is back).
    pub retired: BTreeMap<PathId, StoredApp>,
    /// instance id -> task.
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Instances the planner allowed to launch (`Command::Launch`), waiting for an offer.
    pub launchable: super::launch_queue::LaunchQueue,
    /// `lastTaskFailure` per app, mirrored by the store's task failure records (one per app, written
    /// in the commit of the status update that observed it; removed with the app).
    pub last_failures: BTreeMap<PathId, LastTaskFailure>,
    /// instance id -> one result per Marathon-level health check.
    pub health: BTreeMap<String, Vec<Option<HealthCheckResult>>>,
    pub framework_id: Option<String>,
    /// Agents seen in offers (hostname, attributes), for constraints of placed instances.
    pub agents: BTreeMap<String, marathon_model::AgentInfo>,
    pub mesos_master: Option<String>,
    /// Event plans (with the [compat] `original`/`target` groups), by deployment id.
    pub deployment_groups: BTreeMap<String, Value>,
    last_version_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn format_ts(ms: u64) -> String {
    Timestamp(ms as i64).to_string()
}

/// Deterministic in shape, unique in value: planner ids (instance suffixes, deployment ids) are
/// uuids so task ids parse (§5 "Task ids").
fn uuid_ids() -> Box<dyn marathon_planner::IdSource + Send> {
    Box::new(|| uuid::Uuid::new_v4().to_string())
}

pub fn planner_config(config: &Config) -> PlannerConfig {
    PlannerConfig {
        task_launch_timeout_ms: config.task_launch_timeout.as_millis() as u64,
        max_running_deployments: config.max_running_deployments as usize,
        ..PlannerConfig::default()
    }
}

/// The planner's view of an app (spec §2, §7): only what steers scheduling.
pub fn run_spec(def: &AppDefinition, vi: &VersionInfo) -> RunSpec {
    let version = def
        .version
        .map(|v| v.millis())
        .unwrap_or(vi.last_config_change_at.millis());
    RunSpec {
        id: def.id.to_string(),
        version: version.max(0) as u64,
        config_version: vi.last_config_change_at.millis().max(0) as u64,
        instances: def.instances.clamp(0, u32::MAX as i64) as u32,
        upgrade: UpgradeStrategy {
            minimum_health_capacity: def.upgrade_strategy.minimum_health_capacity,
            maximum_over_capacity: def.upgrade_strategy.maximum_over_capacity,
        },
        kill_selection: match def.kill_selection {
            marathon_model::KillSelection::YoungestFirst => KillSelection::YoungestFirst,
            marathon_model::KillSelection::OldestFirst => KillSelection::OldestFirst,
        },
        backoff: Backoff {
            seconds: def.backoff_seconds as f64,
            factor: def.backoff_factor,
            max_launch_delay_seconds: def.max_launch_delay_seconds as f64,
        },
        unreachable: match def.unreachable_strategy {
            marathon_model::UnreachableStrategy::Disabled => Unreachable::Disabled,
            marathon_model::UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => Unreachable::Enabled {
                inactive_after_seconds: inactive_after_seconds.max(0) as u64,
                expunge_after_seconds: expunge_after_seconds.max(0) as u64,
            },
        },
        has_health_checks: !def.health_checks.is_empty(),
        dependencies: def.dependencies.iter().map(|d| d.to_string()).collect(),
    }
}

// ---- store records ------------------------------------------------------------------------------

pub fn app_record(def: &AppDefinition, vi: &VersionInfo) -> Value {
    let mut v = def.to_json();
    if let Value::Object(m) = &mut v {
        m.insert("versionInfo".into(), json!(vi));
    }
    v
}

pub fn put_app_op(def: &AppDefinition, vi: &VersionInfo) -> StoreOp {
    let ms = def.version.map(|v| v.millis()).unwrap_or(0).max(0) as u64;
    StoreOp::PutApp {
        app_id: def.id.to_string(),
        version: version_from_millis(ms),
        value: app_record(def, vi),
    }
}

fn decode_app(value: &Value) -> Result<(AppDefinition, VersionInfo), String> {
    let def = AppDefinition::from_stored_json(value).map_err(|e| format!("{e:?}"))?;
    let version = def.version.ok_or("no version")?;
    let ts = |key: &str| {
        value
            .get("versionInfo")
            .and_then(|vi| vi.get(key))
            .and_then(Value::as_str)
            .and_then(|s| Timestamp::parse(s).ok())
    };
    let vi = VersionInfo {
        last_scaling_at: ts("lastScalingAt").unwrap_or(version),
        last_config_change_at: ts("lastConfigChangeAt").unwrap_or(version),
    };
    Ok((def, vi))
}

pub fn instance_record(instance: &Instance, task: Option<&TaskRecord>) -> Value {
    json!({"instance": instance, "task": task})
}

/// The store op keeping `failure` as its app's last task failure.
pub fn put_failure_op(failure: &LastTaskFailure) -> Option<StoreOp> {
    match serde_json::to_value(failure) {
        Ok(value) => Some(StoreOp::PutTaskFailure {
            app_id: failure.app_id.to_string(),
            value,
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a task failure");
            None
        }
    }
}

/// The apps kept for a rollback of a recovered deployment, and the delete ops for the other
/// records (their deployment ended before the previous leader could delete them, or unreadable).
fn recover_retired(
    snapshot: &Snapshot,
    apps: &BTreeMap<PathId, StoredApp>,
    affected: &BTreeSet<String>,
) -> (BTreeMap<PathId, StoredApp>, Vec<StoreOp>) {
    let mut retired = BTreeMap::new();
    let mut stale = Vec::new();
    for (app_id, value) in &snapshot.retired_apps {
        let id = PathId::parse(app_id)
            .ok()
            .filter(|id| !apps.contains_key(id) && affected.contains(app_id));
        match (id, decode_app(value)) {
            (Some(id), Ok((def, vi))) => {
                let versions = BTreeMap::from([(
                    def.version.map(|v| v.millis()).unwrap_or(0),
                    (def.clone(), vi),
                )]);
                retired.insert(
                    id,
                    StoredApp {
                        def,
                        version_info: vi,
                        versions,
                    },
                );
            }
            (_, decoded) => {
                if let Err(e) = decoded {
                    tracing::error!(%app_id, error = %e, "stored retired app is unreadable; deleting it");
                }
                stale.push(StoreOp::DeleteRetiredApp {
                    app_id: app_id.clone(),
                });
            }
        }
    }
    (retired, stale)
}

/// The stored last task failures of stored apps, and the delete ops for the others: records an
/// older build left behind when it removed their app (it knew nothing of them), or unreadable ones.
fn recover_failures(
    snapshot: &Snapshot,
    apps: &BTreeMap<PathId, StoredApp>,
) -> (BTreeMap<PathId, LastTaskFailure>, Vec<StoreOp>) {
    let mut failures = BTreeMap::new();
    let mut stale = Vec::new();
    for (app_id, value) in &snapshot.task_failures {
        let decoded =
            serde_json::from_value::<LastTaskFailure>(value.clone()).map_err(|e| e.to_string());
        match (PathId::parse(app_id), decoded) {
            (Ok(id), Ok(failure)) if apps.contains_key(&id) && failure.app_id == id => {
                failures.insert(id, failure);
            }
            (_, decoded) => {
                if let Err(e) = decoded {
                    tracing::error!(%app_id, error = %e, "stored task failure is unreadable; deleting it");
                }
                stale.push(StoreOp::DeleteTaskFailure {
                    app_id: app_id.clone(),
                });
            }
        }
    }
    (failures, stale)
}

impl State {
    /// Rebuilds the books from a snapshot taken after fencing, and recovers the planner; returns
    /// the planner's first commands (relaunch requests, resumed deployments) and store ops (stale
    /// records to delete) for the caller to run.
    pub fn recover(
        config: Config,
        snapshot: &Snapshot,
        now: i64,
    ) -> (State, Vec<marathon_planner::Command>, Vec<StoreOp>) {
        let mut apps = BTreeMap::new();
        for (app_id, versions) in &snapshot.apps {
            let Ok(id) = PathId::parse(app_id) else {
                tracing::error!(%app_id, "stored app id does not parse; ignoring it");
                continue;
            };
            let mut all = BTreeMap::new();
            for (version, value) in versions {
                match decode_app(value) {
                    Ok((def, vi)) => {
                        all.insert(def.version.map(|v| v.millis()).unwrap_or(0), (def, vi));
                    }
                    Err(e) => {
                        tracing::error!(%app_id, %version, error = %e, "stored app version is unreadable; ignoring it")
                    }
                }
            }
            if let Some((def, vi)) = all.values().next_back().cloned() {
                apps.insert(
                    id,
                    StoredApp {
                        def,
                        version_info: vi,
                        versions: all,
                    },
                );
            }
        }
        let mut instances = Vec::new();
        let mut tasks = BTreeMap::new();
        for (id, value) in &snapshot.instances {
            match serde_json::from_value::<Instance>(
                value.get("instance").cloned().unwrap_or(Value::Null),
            ) {
                Ok(instance) => {
                    if let Some(task) = value.get("task").filter(|t| !t.is_null()) {
                        match serde_json::from_value::<TaskRecord>(task.clone()) {
                            Ok(task) => {
                                tasks.insert(instance.id.clone(), task);
                            }
                            Err(e) => {
                                tracing::error!(instance = %id, error = %e, "stored task record is unreadable")
                            }
                        }
                    }
                    instances.push(instance);
                }
                Err(e) => {
                    tracing::error!(instance = %id, error = %e, "stored instance is unreadable; ignoring it")
                }
            }
        }
        let mut deployments = Vec::new();
        for (id, value) in &snapshot.deployments {
            match serde_json::from_value::<DeploymentState>(value.clone()) {
                Ok(d) => deployments.push(d),
                Err(e) => {
                    tracing::error!(deployment = %id, error = %e, "stored deployment is unreadable; ignoring it")
                }
            }
        }
        let root: RootGroup = apps
            .values()
            .map(|a| (a.def.id.to_string(), run_spec(&a.def, &a.version_info)))
            .collect();
        let (planner, cmds) = Planner::recover(
            planner_config(&config),
            uuid_ids(),
            root,
            instances,
            deployments,
            now.max(0) as u64,
        );
        let last_version_ms = apps
            .values()
            .filter_map(|a| a.def.version)
            .map(|v| v.millis())
            .max()
            .unwrap_or(0);
        let (last_failures, mut stale_ops) = recover_failures(snapshot, &apps);
        let affected: BTreeSet<String> = planner
            .deployments()
            .flat_map(|d| d.affected_apps())
            .collect();
        let (retired, stale_retired) = recover_retired(snapshot, &apps, &affected);
        stale_ops.extend(stale_retired);
        let state = State {
            config,
            planner,
            apps,
            retired,
            tasks,
            launchable: super::launch_queue::LaunchQueue::new(),
            last_failures,
            health: BTreeMap::new(),
            framework_id: snapshot.framework_id.clone(),
            agents: BTreeMap::new(),
            mesos_master: None,
            deployment_groups: BTreeMap::new(),
            last_version_ms,
        };
        (state, cmds, stale_ops)
    }

    /// A fresh version timestamp: now, but always after every version given out before, so two
    /// changes within one millisecond still get distinct versions.
    pub fn next_version(&mut self, now: i64) -> i64 {
        self.last_version_ms = now.max(self.last_version_ms + 1);
        self.last_version_ms
    }

    /// The store op for an instance as the planner and Mesos currently know it.
    pub fn instance_op(&self, instance: &Instance) -> StoreOp {
        StoreOp::PutInstance {
            id: instance.id.clone(),
            value: instance_record(instance, self.tasks.get(&instance.id)),
        }
    }

    /// The `Task` JSON of an instance (§5), if it was launched.
    pub fn task_view(&self, instance_id: &str) -> Option<Task> {
        let rec = self.tasks.get(instance_id)?;
        let app_id = PathId::parse(
            &self
                .planner
                .instance(instance_id)
                .map(|i| i.app_id.clone())
                .unwrap_or_default(),
        )
        .ok()
        .or_else(|| {
            marathon_model::TaskId::parse(&rec.task_id)
                .ok()
                .map(|t| t.app_id().clone())
        })?;
        let service_ports = self.service_ports_of(&app_id);
        Some(self.task_of(instance_id, rec, app_id, &service_ports))
    }

    /// The service ports of an app's definitions (§2 `portDefinitions`).
    fn service_ports_of(&self, app_id: &PathId) -> Vec<u32> {
        self.apps
            .get(app_id)
            .map(|a| {
                a.def
                    .port_definitions
                    .iter()
                    .map(|p| p.port.clamp(0, 65535) as u32)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `Task` of a launched instance of `app_id`.
    fn task_of(
        &self,
        instance_id: &str,
        rec: &TaskRecord,
        app_id: PathId,
        service_ports: &[u32],
    ) -> Task {
        let mut service_ports = service_ports.to_vec();
        while service_ports.len() < rec.host_ports.len() {
            service_ports.push(0);
        }
        let ips = if rec.ip_addresses.is_empty() {
            vec![rec.host.clone()]
        } else {
            rec.ip_addresses.clone()
        };
        Task {
            id: rec.task_id.clone(),
            app_id,
            host: rec.host.clone(),
            state: rec.state.clone(),
            slave_id: rec.agent_id.clone(),
            staged_at: Some(Timestamp(rec.staged_at_ms)),
            started_at: rec.started_at_ms.map(Timestamp),
            version: Timestamp(rec.app_version_ms),
            ports: rec.host_ports.clone(),
            service_ports,
            ip_addresses: ips
                .iter()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
                .map(|ip| IpAddress::new(ip))
                .collect(),
            health_check_results: self.health_results(instance_id),
            local_volumes: vec![],
            role: rec.role.clone(),
            region: None,
            zone: None,
        }
    }

    /// The task's `healthCheckResults`: Marathon's own checks (HTTP/TCP), else the verdict of the
    /// agent-run Mesos check (COMMAND, MESOS_HTTP, MESOS_TCP) carried by its last status update.
    fn health_results(&self, instance_id: &str) -> Vec<HealthCheckResult> {
        let own: Vec<HealthCheckResult> = self
            .health
            .get(instance_id)
            .map(|r| r.iter().flatten().cloned().collect())
            .unwrap_or_default();
        if !own.is_empty() {
            return own;
        }
        match self.planner.instance(instance_id).and_then(|i| i.healthy) {
            Some(alive) => vec![HealthCheckResult {
                alive,
                consecutive_failures: u32::from(!alive),
                first_success: None,
                last_success: None,
                last_failure: None,
                last_failure_cause: None,
                instance_id: instance_id.to_string(),
            }],
            None => Vec::new(),
        }
    }

    /// The AppInfo JSON used inside queue items and events (definition plus versionInfo).
    pub fn app_json(&self, app_id: &PathId) -> Value {
        match self.apps.get(app_id) {
            Some(app) => {
                let status = marathon_model::AppStatus {
                    version_info: Some(app.version_info),
                    ..Default::default()
                };
                app.def.to_app_info(&status)
            }
            None => json!({"id": app_id.to_string()}),
        }
    }

    /// A group as deployment events show it [compat]: `{"id":"/","apps":[…],"groups":[],…}`.
    pub fn group_json(&self, apps: &[&AppDefinition], version: i64) -> Value {
        let apps: Vec<Value> = apps.iter().map(|d| d.to_json()).collect();
        json!({"id": "/", "apps": apps, "groups": [], "pods": [], "dependencies": [], "version": Timestamp(version)})
    }

    /// Everything the REST layer shows, as of now.
    pub fn view(&self, now: i64) -> ServiceView {
        let mut view = ServiceView {
            framework_id: self.framework_id.clone(),
            ..ServiceView::default()
        };
        view.mesos_leader_url = self.mesos_master.as_ref().map(|m| format!("http://{m}"));
        for (id, app) in &self.apps {
            let versions = app.versions.keys().map(|v| Timestamp(*v)).collect();
            view.apps.insert(
                id.clone(),
                AppEntry {
                    definition: app.def.clone(),
                    version_info: app.version_info,
                    versions,
                },
            );
        }
        // App by app, so the app's id and service ports are worked out once, not per task.
        for app in self.planner.instance_app_ids() {
            let instances = self.planner.instances_of(app);
            let Ok(app_id) = PathId::parse(app) else {
                for task in instances.iter().filter_map(|i| self.task_view(&i.id)) {
                    view.tasks
                        .entry(task.app_id.clone())
                        .or_default()
                        .push(task);
                }
                continue;
            };
            let service_ports = self.service_ports_of(&app_id);
            let tasks: Vec<Task> = instances
                .iter()
                .filter_map(|i| {
                    self.tasks
                        .get(&i.id)
                        .map(|rec| self.task_of(&i.id, rec, app_id.clone(), &service_ports))
                })
                .collect();
            if !tasks.is_empty() {
                view.tasks.entry(app_id).or_default().extend(tasks);
            }
        }
        let mut deployments: Vec<&DeploymentState> = self.planner.deployments().collect();
        deployments.sort_by_key(|d| (d.started_at_ms, d.plan.id.clone()));
        for d in deployments {
            view.deployments
                .push(marathon_planner::json::deployment_json(d, &format_ts));
            for app in d.affected_apps() {
                if let Ok(id) = PathId::parse(&app) {
                    view.deployments_by_app
                        .entry(id)
                        .or_default()
                        .push(d.plan.id.clone());
                }
            }
        }
        view.last_failures = self.last_failures.clone();
        for entry in self.planner.queue(now.max(0) as u64) {
            let Ok(app_id) = PathId::parse(&entry.app_id) else {
                continue;
            };
            if !self.apps.contains_key(&app_id) {
                continue;
            }
            let item = marathon_planner::json::queue_entry_json(
                &entry,
                self.app_json(&app_id),
                &format_ts,
            );
            view.queue.push(QueueEntry {
                app_id,
                item,
                last_unused_offers: vec![],
            });
        }
        view
    }

    /// Service ports in use by apps other than `except` (§2 `portDefinitions`).
    pub fn service_ports_in_use(&self, except: &PathId) -> BTreeSet<i64> {
        self.apps
            .iter()
            .filter(|(id, _)| *id != except)
            .flat_map(|(_, a)| a.def.port_definitions.iter().map(|p| p.port))
            .filter(|p| *p != 0)
            .collect()
    }
}

impl State {
    /// Event plans for deployments resumed from the store (their groups are the current apps).
    pub fn recover_deployment_groups(&mut self) {
        let defs: Vec<&AppDefinition> = self.apps.values().map(|a| &a.def).collect();
        let group = self.group_json(&defs, now_ms());
        let plans: Vec<(String, Value)> = self
            .planner
            .deployments()
            .map(|d| {
                (
                    d.plan.id.clone(),
                    super::events::plan_with_groups(&d.plan, group.clone(), group.clone()),
                )
            })
            .collect();
        self.deployment_groups.extend(plans);
    }
}
