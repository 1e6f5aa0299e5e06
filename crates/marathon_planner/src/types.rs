//! The planner's own input and output vocabulary: run specs, instances, events, commands, errors.
//!
//! These are deliberately small and independent of the app-model crate: the caller converts its
//! full app definitions into [`RunSpec`]s (only the fields that steer scheduling, spec §2 and §7)
//! and carries out [`Command`]s. All types derive serde so the edge can persist them (instances and
//! deployments are written to ZooKeeper before the edge acts on the commands that follow).

use serde::{Deserialize, Serialize};

/// Absolute app id, e.g. `/prod/web`.
pub type AppId = String;
/// Instance id, `<safeId>.instance-<uuid>` (spec §5).
pub type InstanceId = String;
/// Deployment id (a uuid from the id source).
pub type DeploymentId = String;

/// `upgradeStrategy` (spec §2, §7 "Rolling replacement").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpgradeStrategy {
    pub minimum_health_capacity: f64,
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

/// `killSelection` (spec §2): which instance dies first on scale-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

/// `backoffSeconds`, `backoffFactor`, `maxLaunchDelaySeconds` (spec §2, §7 "Backoff").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    pub seconds: f64,
    pub factor: f64,
    pub max_launch_delay_seconds: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            seconds: 1.0,
            factor: 1.15,
            max_launch_delay_seconds: 300.0,
        }
    }
}

/// `unreachableStrategy` (spec §2, §7 "Other timers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unreachable {
    Enabled {
        inactive_after_seconds: u64,
        expunge_after_seconds: u64,
    },
    Disabled,
}

impl Default for Unreachable {
    fn default() -> Self {
        Unreachable::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

/// What the planner needs to know about an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub id: AppId,
    /// The app's `version` (ms since the epoch).
    pub version: u64,
    /// `versionInfo.lastConfigChangeAt` (ms). Instances running another config version are "old".
    pub config_version: u64,
    pub instances: u32,
    pub upgrade: UpgradeStrategy,
    pub kill_selection: KillSelection,
    pub backoff: Backoff,
    pub unreachable: Unreachable,
    pub has_health_checks: bool,
    pub dependencies: Vec<AppId>,
}

impl RunSpec {
    /// A spec with Marathon's defaults (spec §2), for tests and callers that build specs by hand.
    pub fn new(id: impl Into<AppId>, version: u64, instances: u32) -> RunSpec {
        RunSpec {
            id: id.into(),
            version,
            config_version: version,
            instances,
            upgrade: UpgradeStrategy::default(),
            kill_selection: KillSelection::default(),
            backoff: Backoff::default(),
            unreachable: Unreachable::default(),
            has_health_checks: false,
            dependencies: Vec::new(),
        }
    }
}

/// A root group as the planner sees it: app id → spec.
pub type RootGroup = std::collections::BTreeMap<AppId, RunSpec>;

/// Why an instance ended (the Mesos terminal task states, spec §7 "Backoff").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TerminalReason {
    Finished,
    Failed,
    Killed,
    Error,
    Dropped,
    Gone,
    GoneByOperator,
}

impl TerminalReason {
    /// Spec §7: FAILED, FINISHED (exit 0 counts), ERROR, DROPPED, GONE raise the launch delay;
    /// KILLED does not.
    pub fn raises_backoff(self) -> bool {
        !matches!(self, TerminalReason::Killed)
    }
}

/// Lifecycle of one instance as the planner tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceState {
    /// Requested: waiting in the launch queue for its delay to pass and an offer to fit.
    Scheduled,
    Staging,
    Starting,
    Running,
    Killing,
    /// `TASK_UNREACHABLE` / `TASK_LOST` since this time (ms).
    Unreachable {
        since_ms: u64,
    },
    /// Unreachable for longer than `inactiveAfterSeconds`: replaced, no longer counted.
    UnreachableInactive {
        since_ms: u64,
    },
    Terminal(TerminalReason),
}

impl InstanceState {
    pub fn is_terminal(self) -> bool {
        matches!(self, InstanceState::Terminal(_))
    }
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            InstanceState::Unreachable { .. } | InstanceState::UnreachableInactive { .. }
        )
    }
}

/// What the planner wants an instance to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Goal {
    Running,
    /// A kill was decided; the instance is waiting for its terminal status.
    Stopped,
}

/// Why the planner (or the API) killed an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KillReason {
    /// `DELETE /v2/apps/{id}/tasks…` without scale.
    Api,
    /// Surplus over `instances` (scale-down, or an unreachable instance that came back).
    ScaleDown,
    /// Replaced by a rolling restart.
    Upgrade,
    /// `StopApplication`.
    AppStopped,
    /// The instance's app no longer exists (spec §8.2 "decommissioned").
    Orphaned,
    /// `maxConsecutiveFailures` reached.
    HealthCheckFailed,
    /// Not `TASK_RUNNING` within `--task_launch_timeout`.
    LaunchTimeout,
    /// Mesos reported a task the planner does not know (spec §8.2).
    Unknown,
}

/// A decided kill, kept on the instance so kills are retried and rate limits can count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KillInfo {
    pub reason: KillReason,
    /// When the last `Kill` command for it was emitted (ms).
    pub sent_at_ms: u64,
}

/// One instance of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub app_id: AppId,
    /// `config_version` of the spec it runs.
    pub run_spec_version: u64,
    pub state: InstanceState,
    /// Latest health result (`None` = unknown / no checks).
    pub healthy: Option<bool>,
    pub goal: Goal,
    pub kill: Option<KillInfo>,
    pub created_at_ms: u64,
    pub staged_at_ms: Option<u64>,
    pub started_at_ms: Option<u64>,
    pub agent: Option<String>,
    /// The health checker asked for a kill (`maxConsecutiveFailures` reached).
    pub health_kill_requested: bool,
    /// Chosen for a health replacement (counted against the per-app health-kill limit).
    pub doomed: bool,
    /// This instance was launched to replace an unhealthy one (replace before kill).
    pub replaces: Option<InstanceId>,
}

impl Instance {
    /// A freshly requested instance.
    pub fn scheduled(
        id: InstanceId,
        app_id: AppId,
        run_spec_version: u64,
        now_ms: u64,
    ) -> Instance {
        Instance {
            id,
            app_id,
            run_spec_version,
            state: InstanceState::Scheduled,
            healthy: None,
            goal: Goal::Running,
            kill: None,
            created_at_ms: now_ms,
            staged_at_ms: None,
            started_at_ms: None,
            agent: None,
            health_kill_requested: false,
            doomed: false,
            replaces: None,
        }
    }

    /// Goal running and not given up (terminal / inactive): the instances that count toward
    /// `instances` (spec §7 "Scale"). Doomed instances are counted separately by the caller.
    pub fn is_counted(&self) -> bool {
        self.goal == Goal::Running
            && !self.state.is_terminal()
            && !matches!(self.state, InstanceState::UnreachableInactive { .. })
    }

    /// Holds resources or may still: everything not terminal and not inactive-unreachable.
    pub fn is_active(&self) -> bool {
        !self.state.is_terminal()
            && !matches!(self.state, InstanceState::UnreachableInactive { .. })
    }

    /// Running and, when the app has health checks, healthy.
    pub fn is_ready(&self, has_health_checks: bool) -> bool {
        self.state == InstanceState::Running && (!has_health_checks || self.healthy == Some(true))
    }

    /// When it was launched, or requested if it never was (for kill ordering).
    pub fn age_key(&self) -> u64 {
        self.staged_at_ms.unwrap_or(self.created_at_ms)
    }
}

/// Mesos task states as they arrive in status updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    Staging,
    Starting,
    Running,
    Killing,
    Finished,
    Failed,
    Killed,
    Error,
    Lost,
    Dropped,
    Unreachable,
    Gone,
    GoneByOperator,
    Unknown,
}

impl TaskState {
    pub fn terminal_reason(self) -> Option<TerminalReason> {
        Some(match self {
            TaskState::Finished => TerminalReason::Finished,
            TaskState::Failed => TerminalReason::Failed,
            TaskState::Killed => TerminalReason::Killed,
            TaskState::Error => TerminalReason::Error,
            TaskState::Dropped => TerminalReason::Dropped,
            TaskState::Gone => TerminalReason::Gone,
            TaskState::GoneByOperator => TerminalReason::GoneByOperator,
            _ => return None,
        })
    }
}

/// Events the edge feeds in. Each is applied with the `now_ms` passed beside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A Mesos status update (also from reconciliation). `healthy` comes from Mesos-side checks.
    StatusUpdate {
        instance_id: InstanceId,
        state: TaskState,
        healthy: Option<bool>,
        agent: Option<String>,
    },
    /// A Marathon-side health result. `kill` = `maxConsecutiveFailures` reached.
    HealthChanged {
        instance_id: InstanceId,
        healthy: Option<bool>,
        kill: bool,
    },
    /// Timers: unreachable, launch timeout, backoff expiry, kill retries.
    Tick,
    /// The edge matched an offer and is about to send LAUNCH (it stores the resulting
    /// `StoreInstance` before sending).
    LaunchAccepted {
        instance_id: InstanceId,
        agent: String,
    },
    /// API kill without scale (`scale=true` goes through [`crate::Planner::plan_kill_and_scale`]).
    /// `wipe` forgets the instance at once.
    KillRequested {
        instance_ids: Vec<InstanceId>,
        wipe: bool,
    },
    /// `DELETE /v2/queue/{appId}/delay`.
    ResetDelay { app_id: AppId },
    /// Offer-matching statistics for `/v2/queue`.
    OfferProcessed {
        app_id: AppId,
        used: bool,
        reject_reasons: Vec<String>,
    },
}

/// Why a deployment ended without success.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailReason {
    /// `DELETE /v2/deployments/{id}` (with or without rollback).
    Cancelled,
    /// A forced deployment touching the same apps took over.
    Superseded { by: DeploymentId },
}

/// What the edge must do, **in order**. Store/Remove/Expunge are persistence intents: the edge
/// writes them before carrying out any later command, so a new leader that loads the store never
/// doubles instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    StoreInstance(Instance),
    /// Forget the instance (store and launch queue).
    Expunge {
        instance_id: InstanceId,
        app_id: AppId,
    },
    StoreDeployment(Box<crate::deployment::DeploymentState>),
    RemoveDeployment {
        id: DeploymentId,
    },
    /// The instance is requested: the offer-matching edge may launch it now.
    Launch {
        app_id: AppId,
        instance_id: InstanceId,
        run_spec_version: u64,
    },
    Kill {
        instance_id: InstanceId,
        reason: KillReason,
    },
    /// `deployment_info`; `step` is 1-based.
    DeploymentStepStarted {
        id: DeploymentId,
        step: usize,
    },
    /// `deployment_step_success`.
    DeploymentStepSucceeded {
        id: DeploymentId,
        step: usize,
    },
    DeploymentSucceeded {
        id: DeploymentId,
    },
    DeploymentFailed {
        id: DeploymentId,
        reason: FailReason,
    },
    /// `app_terminated_event`: the app was stopped and its last instance is gone.
    AppTerminated {
        app_id: AppId,
    },
}

/// Named limits and timeouts (flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannerConfig {
    /// `--task_launch_timeout` (ms).
    pub task_launch_timeout_ms: u64,
    /// `--max_running_deployments`.
    pub max_running_deployments: usize,
    /// Re-send a kill that got no terminal status after this long.
    pub kill_retry_ms: u64,
    /// Health kills per app are limited within this sliding window.
    pub health_kill_window_ms: u64,
}

/// `--task_launch_timeout` default (spec §8.4).
pub const TASK_LAUNCH_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// `--max_running_deployments` default (spec §7).
pub const MAX_RUNNING_DEPLOYMENTS_DEFAULT: usize = 100;
pub const KILL_RETRY_MS_DEFAULT: u64 = 30_000;
pub const HEALTH_KILL_WINDOW_MS_DEFAULT: u64 = 60_000;

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            task_launch_timeout_ms: TASK_LAUNCH_TIMEOUT_MS_DEFAULT,
            max_running_deployments: MAX_RUNNING_DEPLOYMENTS_DEFAULT,
            kill_retry_ms: KILL_RETRY_MS_DEFAULT,
            health_kill_window_ms: HEALTH_KILL_WINDOW_MS_DEFAULT,
        }
    }
}

/// Source of fresh unique ids (uuids in production, a counter in tests).
pub trait IdSource {
    fn next_id(&mut self) -> String;
}

impl<F: FnMut() -> String> IdSource for F {
    fn next_id(&mut self) -> String {
        self()
    }
}

/// A deterministic id source: `<prefix>-<n>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqIds {
    pub prefix: String,
    pub next: u64,
}

impl SeqIds {
    pub fn new(prefix: impl Into<String>) -> SeqIds {
        SeqIds {
            prefix: prefix.into(),
            next: 0,
        }
    }
}

impl IdSource for SeqIds {
    fn next_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }
}

/// Plan construction errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The caller answers 422.
    #[error("dependency cycle between apps: {apps:?}")]
    DependencyCycle { apps: Vec<AppId> },
    #[error("unknown instance {instance_id}")]
    UnknownInstance { instance_id: InstanceId },
}

/// Deployment start/cancel errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    /// 409 "App is locked by one or more deployments".
    #[error("app is locked by deployments {deployment_ids:?}")]
    Locked { deployment_ids: Vec<DeploymentId> },
    /// 403 beyond `--max_running_deployments`.
    #[error("too many running deployments (at most {max})")]
    TooMany { max: usize },
    /// 404 "DeploymentPlan <id> does not exist".
    #[error("deployment {id} does not exist")]
    NotFound { id: DeploymentId },
    #[error("a deployment with id {id} is already running")]
    DuplicateId { id: DeploymentId },
    #[error(transparent)]
    Plan(#[from] PlanError),
}
