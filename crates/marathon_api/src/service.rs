//! The seam between the REST layer (`http/`) and the leader (`leader/`).
//!
//! What: the leader publishes an immutable [`ServiceView`] after every change (a `watch`), which
//! the REST layer reads without locks or waiting; changes go the other way as [`Command`]s, each
//! answered on a oneshot once the leader has *stored* the result (marathon-api.md §9: "answer
//! changing calls promptly, once the plan is stored"). Events for `/v2/events` travel on a
//! broadcast channel, already rendered.
//!
//! Why: the REST layer never touches the planner, the store or Mesos, so it can be tested against
//! a hand-built view and a fake command handler, and the leader never blocks on an HTTP client.

use marathon_model::Violation;
use marathon_model::{AppDefinition, LastTaskFailure, PathId, Task, Timestamp, VersionInfo};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// What the leader knows, as the REST API shows it.
#[derive(Debug, Clone, Default)]
pub struct ServiceView {
    /// Current definition of every app, by id.
    pub apps: BTreeMap<PathId, AppEntry>,
    /// Every known instance's task, by app.
    pub tasks: BTreeMap<PathId, Vec<Task>>,
    /// Running deployments, rendered as GET /v2/deployments elements (§5), oldest first.
    pub deployments: Vec<serde_json::Value>,
    /// Ids of the running deployments touching each app.
    pub deployments_by_app: BTreeMap<PathId, Vec<String>>,
    /// `lastTaskFailure` per app.
    pub last_failures: BTreeMap<PathId, LastTaskFailure>,
    /// `/v2/queue` items, rendered (§4), one per app with instances waiting to launch.
    pub queue: Vec<QueueEntry>,
    /// The Mesos framework id, once registered.
    pub framework_id: Option<String>,
    /// `http://host:port` of the Mesos leader the scheduler is connected to, if any.
    pub mesos_leader_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AppEntry {
    pub definition: AppDefinition,
    pub version_info: VersionInfo,
    /// Stored versions, oldest first (at most `--zk_max_versions`).
    pub versions: Vec<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub app_id: PathId,
    /// The rendered queue item (`app`, `count`, `delay`, `since`, `processedOffersSummary`, and with
    /// `embed=lastUnusedOffers` the extra fields in `last_unused_offers`).
    pub item: serde_json::Value,
    pub last_unused_offers: Vec<serde_json::Value>,
}

/// One change to the set of apps, as the REST layer parsed and validated it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a few per request; boxing would change the seam
pub enum AppChange {
    /// Create or replace (the full, validated definition; `version` is set by the leader).
    Put(AppDefinition),
    /// Only `instances` of an existing app (PUT `{"instances":n}`, scale by DELETE tasks?scale=true).
    Scale { app_id: PathId, instances: u32 },
    /// StopApplication: kill every instance, then forget the app and its versions.
    Delete(PathId),
    /// RestartApplication without a config change (`POST /v2/apps/{id}/restart`).
    Restart(PathId),
    /// Back to a stored version (`PUT {"version":ts}`).
    Rollback { app_id: PathId, version: Timestamp },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentResult {
    pub deployment_id: String,
    pub version: Timestamp,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// 404 with this message (`App '/x' does not exist`, ...).
    #[error("{0}")]
    NotFound(String),
    /// 409: POST of an existing app id.
    #[error("An app with id [{0}] already exists.")]
    AlreadyExists(PathId),
    /// 409: touches apps locked by these deployments and `force` was not given.
    #[error("App is locked by one or more deployments.")]
    Locked { deployment_ids: Vec<String> },
    /// 422 with details (e.g. an app id equal to a group, a dependency cycle).
    #[error("Object is not valid")]
    Invalid(Vec<Violation>),
    /// 403: `--max_running_deployments` reached.
    #[error("{0}")]
    TooManyDeployments(String),
    /// 503: this instance is not (or no longer) the leader, or the store failed.
    #[error("{0}")]
    Unavailable(String),
}

/// A change asked for through the REST API.
#[derive(Debug)]
pub enum Command {
    /// Deploy changes as one deployment. `create_only`: POST (409 when an app exists).
    Deploy {
        changes: Vec<AppChange>,
        force: bool,
        create_only: bool,
        reply: oneshot::Sender<Result<DeploymentResult, CommandError>>,
    },
    /// Kill tasks by id (unknown ids skipped). `scale`: lower `instances` by the number killed, as a
    /// deployment; else replacements are launched. `wipe`: forget the instances too.
    KillTasks {
        task_ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
        reply: oneshot::Sender<Result<KillResult, CommandError>>,
    },
    /// DELETE /v2/deployments/{id}: `force` stops it in place (Ok(None)); else a rollback
    /// deployment is started and returned.
    CancelDeployment {
        id: String,
        force: bool,
        reply: oneshot::Sender<Result<Option<DeploymentResult>, CommandError>>,
    },
    /// DELETE /v2/queue/{app}/delay.
    ResetDelay {
        app_id: PathId,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// DELETE /v2/leader: step down (the process exits shortly after, for its supervisor).
    Abdicate { reply: oneshot::Sender<()> },
    /// GET /v2/apps/{id}/versions/{ts} for a stored version other than the current one: the
    /// definition as stored (`NotFound` when the store has no such version).
    GetAppVersion {
        app_id: PathId,
        version: Timestamp,
        reply: oneshot::Sender<Result<AppDefinition, CommandError>>,
    },
}

#[derive(Debug, Clone)]
pub struct KillResult {
    /// The killed tasks as they were (scale=false).
    pub killed: Vec<Task>,
    /// The scale-down deployment (scale=true).
    pub deployment: Option<DeploymentResult>,
}

/// One event for `/v2/events`: its `eventType` and the whole one-line JSON payload (with
/// `eventType` and `timestamp`).
#[derive(Debug, Clone)]
pub struct MarathonEvent {
    pub event_type: String,
    pub payload: Arc<str>,
}

/// Who leads Marathon, as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderState {
    /// This instance leads; its `host:port`.
    Leading(String),
    /// Another instance leads.
    Following(String),
    /// No leader known.
    Unknown,
}

/// What the REST layer holds.
#[derive(Clone)]
pub struct ServiceHandle {
    pub view: watch::Receiver<Arc<ServiceView>>,
    pub commands: mpsc::Sender<Command>,
    pub events: broadcast::Sender<MarathonEvent>,
    pub leader: watch::Receiver<LeaderState>,
    /// This instance's `host:port` (`--hostname`:`--http_port`).
    pub self_address: String,
    /// `/v2/info` material that does not change while running.
    pub info: Arc<InfoConfig>,
}

/// The flags `/v2/info` reports (§8.3).
#[derive(Debug, Clone, Default)]
pub struct InfoConfig {
    pub master: String,
    pub zk: String,
    pub ha: bool,
    pub hostname: String,
    pub http_port: u16,
    pub framework_name: String,
    pub failover_timeout_secs: u64,
    pub mesos_role: String,
    pub mesos_user: String,
    pub local_port_min: u32,
    pub local_port_max: u32,
    pub task_launch_timeout_ms: u64,
    pub reconciliation_initial_delay_ms: u64,
    pub reconciliation_interval_ms: u64,
    pub scale_apps_initial_delay_ms: u64,
    pub scale_apps_interval_ms: u64,
    pub leader_proxy_connection_timeout_ms: u64,
    pub leader_proxy_read_timeout_ms: u64,
    pub max_instances_per_offer: u32,
    pub zk_timeout_ms: u64,
    pub zk_session_timeout_ms: u64,
    pub zk_max_versions: u32,
    pub max_running_deployments: u32,
    pub decline_offer_duration_ms: u64,
}
