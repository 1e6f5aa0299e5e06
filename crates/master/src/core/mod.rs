//! The master's bookkeeping as a state machine: agents, frameworks, offers and tasks.
//!
//! Every entry point takes `now` (seconds since the epoch) and returns `Effect`s for the edge to
//! carry out (events to a framework's stream, messages to an agent, streams to close). Nothing here
//! touches a socket, a clock or the disk, so the whole master can be driven by tests and simulations
//! exactly as the HTTP edge drives it.
//!
//! Frameworks, tasks and offers live only here, in the leader's memory; after a failover they are
//! rebuilt from re-registering agents and resubscribing schedulers (mesos-ha.md section 1). Only the
//! registry (`registry` crate) is durable.

mod active_tasks;
mod agents;
mod allocation;
mod health;
mod reconcile;
mod resource_tally;
mod scheduler_calls;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tally;

use allocator::Filters;
use proto::agent_protocol::{AgentInfo, MasterToAgent};
use proto::scheduler::Event;
use proto::*;
use std::collections::{BTreeMap, HashMap, VecDeque};

pub use active_tasks::ActiveTasks;
pub use resource_tally::ResourceTally;
pub use scheduler_calls::CallError;

/// Completed tasks kept per framework (`--max_completed_tasks_per_framework`).
pub const COMPLETED_TASKS_PER_FRAMEWORK_MAX: usize = 1000;
/// Completed frameworks kept (`--max_completed_frameworks`).
pub const COMPLETED_FRAMEWORKS_MAX: usize = 50;
/// Status records kept per task, newest last.
pub const STATUSES_PER_TASK_MAX: usize = 16;

/// Something the edge must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    ToFramework(FrameworkId, Event),
    /// Close the framework's stream after the events queued before this one.
    CloseFramework(FrameworkId),
    ToAgent(AgentId, MasterToAgent),
    CloseAgent(AgentId),
}

/// Settings the core needs from the master's flags.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub offer_timeout_secs: Option<f64>,
    /// `--agent_ping_timeout`: how long each ping waits for its pong.
    pub agent_ping_timeout_secs: f64,
    /// `--max_agent_ping_timeouts`: consecutive misses that make an agent unreachable.
    pub max_agent_ping_timeouts: u32,
    /// `--agent_reregister_timeout`: how long agents of the registry have to come back after a
    /// failover before they are marked unreachable.
    pub agent_reregister_timeout_secs: f64,
    pub completed_tasks_per_framework_max: usize,
    pub completed_frameworks_max: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            offer_timeout_secs: None,
            agent_ping_timeout_secs: 15.0,
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout_secs: 600.0,
            completed_tasks_per_framework_max: COMPLETED_TASKS_PER_FRAMEWORK_MAX,
            completed_frameworks_max: COMPLETED_FRAMEWORKS_MAX,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub id: AgentId,
    pub info: AgentInfo,
    /// `ip:port` of the agent's HTTP server.
    pub endpoint: String,
    pub version: String,
    pub total: ResourceBag,
    /// Resources of its non-terminal tasks.
    pub used: ResourceBag,
    /// Resources in outstanding offers.
    pub offered: ResourceBag,
    pub connected: bool,
    pub active: bool,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    /// Which stream connection currently carries messages to this agent; a stale connection's close
    /// must not disconnect a newer one.
    pub connection: u64,
    /// Pings not answered in a row (mesos-ha.md 3.4).
    pub pings_missed: u32,
    /// A ping is out and no pong has come back since.
    pub ping_outstanding: bool,
}

impl Agent {
    pub fn available(&self) -> ResourceBag {
        let mut free = self.total.clone();
        free.subtract(&self.used);
        free.subtract(&self.offered);
        free
    }

    pub fn pid(&self) -> String {
        format!("slave(1)@{}", self.endpoint)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    pub state: TaskState,
    pub timestamp: f64,
    pub healthy: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub info: TaskInfo,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub executor_id: Option<ExecutorId>,
    pub state: TaskState,
    pub resources: ResourceBag,
    pub role: String,
    pub statuses: Vec<StatusRecord>,
    pub latest_status: Option<TaskStatus>,
}

#[derive(Debug, Clone)]
pub struct Framework {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    /// The current subscription stream; calls must carry it as `Mesos-Stream-Id`.
    pub stream_id: Option<String>,
    pub connected: bool,
    pub active: bool,
    /// Known only from agents' reports after a failover, not yet resubscribed.
    pub recovered: bool,
    pub suppressed: bool,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    /// When a disconnected framework is removed, unless it resubscribes first.
    pub failover_deadline: Option<f64>,
    /// Non-terminal tasks, with the running total of their resources (changed only through
    /// `ActiveTasks`' methods so the total stays right).
    pub tasks: ActiveTasks,
    pub completed_tasks: VecDeque<Task>,
    /// Tasks of partition-aware frameworks on unreachable agents (TASK_UNREACHABLE).
    pub unreachable_tasks: BTreeMap<TaskId, Task>,
    pub offers: Vec<OfferId>,
    /// Custom executors started for this framework, by agent, until they exit: a teardown must
    /// reach their agents even when no task is left there.
    pub executors: std::collections::BTreeSet<(AgentId, ExecutorId)>,
}

impl Framework {
    pub fn role(&self) -> String {
        self.info
            .effective_roles()
            .into_iter()
            .next()
            .unwrap_or_else(|| "*".to_string())
    }

    /// Resources of non-terminal tasks (kept current as tasks come and go, not recounted).
    pub fn used(&self) -> ResourceBag {
        self.tasks.used()
    }

    /// The scalar part of [`Framework::used`], in O(resource names): all DRF needs.
    pub fn used_scalars(&self) -> ResourceBag {
        self.tasks.used_scalars()
    }
}

#[derive(Debug, Clone)]
pub struct OfferRecord {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub resources: ResourceBag,
    pub created_at: f64,
}

/// Counters for `/metrics/snapshot` that are not derivable from current state.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub slave_registrations: u64,
    pub slave_reregistrations: u64,
    pub slave_removals: u64,
    pub tasks_terminal: BTreeMap<&'static str, u64>,
    pub valid_status_updates: u64,
    pub invalid_status_updates: u64,
    pub messages_scheduler_calls: u64,
    pub offers_rescinded: u64,
    pub offers_declined: u64,
    pub offers_accepted: u64,
}

/// An agent that missed its pings, kept so it can re-register (mesos-ha.md 3.4-3.6).
#[derive(Debug, Clone)]
pub struct UnreachableAgent {
    /// Unknown for agents a new leader found unreachable in the registry.
    pub info: Option<AgentInfo>,
    pub since: f64,
}

pub struct Core {
    pub master_info: MasterInfo,
    pub unreachable_agents: BTreeMap<AgentId, UnreachableAgent>,
    /// Agents the registry admitted that have not re-registered since this master was elected,
    /// with the deadline of `--agent_reregister_timeout` (mesos-ha.md 3.5).
    pub recovered_agents: BTreeMap<AgentId, (AgentInfo, f64)>,
    pub config: CoreConfig,
    pub agents: BTreeMap<AgentId, Agent>,
    pub frameworks: BTreeMap<FrameworkId, Framework>,
    pub completed_frameworks: VecDeque<Framework>,
    pub offers: HashMap<OfferId, OfferRecord>,
    pub filters: Filters,
    pub counters: Counters,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
    allocation_round: u64,
}

impl Core {
    pub fn new(master_info: MasterInfo, config: CoreConfig) -> Self {
        Core {
            master_info,
            unreachable_agents: BTreeMap::new(),
            recovered_agents: BTreeMap::new(),
            config,
            agents: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            offers: HashMap::new(),
            filters: Filters::default(),
            counters: Counters::default(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
            allocation_round: 0,
        }
    }

    fn mint_framework_id(&mut self) -> FrameworkId {
        let id = FrameworkId::new(format!(
            "{}-{:04}",
            self.master_info.id, self.next_framework
        ));
        self.next_framework += 1;
        id
    }

    fn mint_agent_id(&mut self) -> AgentId {
        let id = AgentId::new(format!("{}-S{}", self.master_info.id, self.next_agent));
        self.next_agent += 1;
        id
    }

    fn mint_offer_id(&mut self) -> OfferId {
        let id = OfferId::new(format!("{}-O{}", self.master_info.id, self.next_offer));
        self.next_offer += 1;
        id
    }

    /// Periodic work: offer and failover timeouts, filter expiry, then an allocation round.
    pub fn tick(&mut self, now: f64) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(timeout) = self.config.offer_timeout_secs {
            let expired: Vec<OfferId> = self
                .offers
                .values()
                .filter(|o| now - o.created_at >= timeout)
                .map(|o| o.id.clone())
                .collect();
            for id in expired {
                self.rescind_offer(&id, &mut effects);
            }
        }
        let removable: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.failover_deadline.is_some_and(|d| now >= d))
            .map(|f| f.id.clone())
            .collect();
        for id in removable {
            tracing::info!(framework = %id, "framework failover timeout elapsed; removing it");
            self.remove_framework(now, &id, &mut effects);
        }
        self.filters.expire(now);
        effects.extend(self.allocate(now));
        effects
    }

    /// Withdraws an offer: the framework is told (RESCIND) and the resources return to the agent.
    fn rescind_offer(&mut self, id: &OfferId, effects: &mut Vec<Effect>) {
        if let Some(offer) = self.remove_offer(id) {
            self.counters.offers_rescinded += 1;
            effects.push(Effect::ToFramework(
                offer.framework_id.clone(),
                Event::rescind(offer.id.clone()),
            ));
        }
    }

    /// Drops an offer from the books, returning its resources to the agent.
    fn remove_offer(&mut self, id: &OfferId) -> Option<OfferRecord> {
        let offer = self.offers.remove(id)?;
        if let Some(agent) = self.agents.get_mut(&offer.agent_id) {
            agent.offered.subtract(&offer.resources);
        }
        if let Some(framework) = self.frameworks.get_mut(&offer.framework_id) {
            framework.offers.retain(|o| o != id);
        }
        Some(offer)
    }

    /// Removes a framework: its offers go, its tasks are killed, and it moves to the completed list.
    pub fn remove_framework(&mut self, now: f64, id: &FrameworkId, effects: &mut Vec<Effect>) {
        let offer_ids: Vec<OfferId> = self
            .frameworks
            .get(id)
            .map(|f| f.offers.clone())
            .unwrap_or_default();
        for offer_id in offer_ids {
            self.remove_offer(&offer_id);
        }
        let Some(mut framework) = self.frameworks.remove(id) else {
            return;
        };
        let agent_ids: std::collections::BTreeSet<AgentId> = framework
            .tasks
            .values()
            .map(|t| t.agent_id.clone())
            .chain(
                framework
                    .executors
                    .iter()
                    .map(|(agent_id, _)| agent_id.clone()),
            )
            .collect();
        framework.executors.clear();
        for agent_id in agent_ids {
            if self.agents.get(&agent_id).is_some_and(|a| a.connected) {
                effects.push(Effect::ToAgent(
                    agent_id,
                    MasterToAgent::ShutdownFramework {
                        framework_id: id.clone(),
                    },
                ));
            }
        }
        for mut task in framework.tasks.take_all() {
            if let Some(agent) = self.agents.get_mut(&task.agent_id) {
                agent.used.subtract(&task.resources);
            }
            task.state = TaskState::TaskKilled;
            task.statuses.push(StatusRecord {
                state: TaskState::TaskKilled,
                timestamp: now,
                healthy: None,
            });
            self.count_terminal(TaskState::TaskKilled);
            push_bounded(
                &mut framework.completed_tasks,
                task,
                self.config.completed_tasks_per_framework_max,
            );
        }
        framework.connected = false;
        framework.active = false;
        framework.unregistered_time = Some(now);
        framework.failover_deadline = None;
        if framework.stream_id.take().is_some() {
            effects.push(Effect::CloseFramework(id.clone()));
        }
        self.filters.clear_framework(id);
        push_bounded(
            &mut self.completed_frameworks,
            framework,
            self.config.completed_frameworks_max,
        );
    }

    fn count_terminal(&mut self, state: TaskState) {
        *self
            .counters
            .tasks_terminal
            .entry(state.metric_suffix())
            .or_default() += 1;
    }

    pub fn is_removed_framework(&self, id: &FrameworkId) -> bool {
        self.completed_frameworks.iter().any(|f| &f.id == id)
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    queue.push_back(item);
    while queue.len() > max {
        queue.pop_front();
    }
}

/// A master-generated status (source SOURCE_MASTER, never acknowledged: no uuid).
pub fn master_status(
    task_id: TaskId,
    state: TaskState,
    agent_id: Option<AgentId>,
    reason: &str,
    message: impl Into<String>,
    now: f64,
) -> TaskStatus {
    let mut status = TaskStatus::new(task_id, state);
    status.source = Some(StatusSource::SourceMaster);
    status.reason = Some(reason.to_string());
    status.message = Some(message.into());
    status.agent_id = agent_id;
    status.timestamp = Some(now);
    status
}
