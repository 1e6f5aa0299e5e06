//! Agents in the core: registration, re-registration (which rebuilds tasks and frameworks after a
//! failover, mesos-ha.md 3.5), disconnection, and the status updates they forward.

use super::scheduler_calls::framework_placeholder;
use super::*;
use proto::agent_protocol::{ReportedTask, StatusUpdate};

/// Why an agent is turned away.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentRefusal {
    #[error("agent resources are invalid: {0}")]
    BadResources(String),
    #[error("agent {0} re-registered from a different address ({1}, was {2})")]
    AddressChanged(AgentId, String, String),
}

impl Agent {
    /// A freshly (re)connected agent with no tasks or offers counted yet.
    #[allow(clippy::too_many_arguments)]
    fn connected(
        id: AgentId,
        info: AgentInfo,
        endpoint: String,
        version: String,
        total: ResourceBag,
        connection: u64,
        registered_time: f64,
        reregistered_time: Option<f64>,
    ) -> Agent {
        Agent {
            id,
            info,
            endpoint,
            version,
            total,
            used: ResourceBag::new(),
            offered: ResourceBag::new(),
            connected: true,
            active: true,
            registered_time,
            reregistered_time,
            connection,
            pings_missed: 0,
            ping_outstanding: false,
        }
    }
}

impl Core {
    /// A new agent. The edge has already written it to the registry (mesos-ha.md 3.7: "a new agent
    /// is written to the registry before it is told it is registered"), using the id from
    /// `next_agent_id`.
    pub fn next_agent_id(&mut self) -> AgentId {
        self.mint_agent_id()
    }

    pub fn register_agent(
        &mut self,
        now: f64,
        id: AgentId,
        mut info: AgentInfo,
        endpoint: String,
        version: String,
        connection: u64,
    ) -> Result<Vec<Effect>, AgentRefusal> {
        let total = ResourceBag::from_resources(&info.resources)
            .map_err(|e| AgentRefusal::BadResources(e.to_string()))?;
        info.id = Some(id.clone());
        self.counters.slave_registrations += 1;
        self.agents.insert(
            id.clone(),
            Agent::connected(
                id.clone(),
                info,
                endpoint,
                version,
                total,
                connection,
                now,
                None,
            ),
        );
        tracing::info!(agent = %id, "agent registered");
        let effects = vec![Effect::ToAgent(
            id.clone(),
            MasterToAgent::Registered {
                protocol_version: proto::agent_protocol::PROTOCOL_VERSION,
                agent_id: id,
                master_info: self.master_info.clone(),
                ping_timeout_total_secs: Some(
                    self.config.agent_ping_timeout_secs
                        * f64::from(self.config.max_agent_ping_timeouts),
                ),
            },
        )];
        // No allocation here: the next batch allocation offers the agent. Allocating per
        // registration costs O(agents) each, O(agents^2) in a re-registration storm.
        Ok(effects)
    }

    /// An agent that was registered before (with this master or an earlier leader) reconnects with its
    /// tasks; the master rebuilds its view from them.
    #[allow(clippy::too_many_arguments)]
    pub fn reregister_agent(
        &mut self,
        now: f64,
        id: AgentId,
        mut info: AgentInfo,
        endpoint: String,
        version: String,
        connection: u64,
        tasks: Vec<ReportedTask>,
        frameworks: Vec<FrameworkInfo>,
    ) -> Result<Vec<Effect>, AgentRefusal> {
        let total = ResourceBag::from_resources(&info.resources)
            .map_err(|e| AgentRefusal::BadResources(e.to_string()))?;
        let host_of = |e: &str| {
            e.rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or_default()
        };
        if let Some(existing) = self.agents.get(&id) {
            if host_of(&existing.endpoint) != host_of(&endpoint) {
                return Err(AgentRefusal::AddressChanged(
                    id,
                    endpoint,
                    existing.endpoint.clone(),
                ));
            }
        }
        info.id = Some(id.clone());
        self.counters.slave_reregistrations += 1;
        self.recovered_agents.remove(&id);
        let mut effects = Vec::new();
        // Offers on the agent were rescinded at disconnection; drop any still here (old connection).
        let stale: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| o.agent_id == id)
            .map(|o| o.id.clone())
            .collect();
        for offer in stale {
            self.rescind_offer(&offer, &mut effects);
        }
        let registered_time = self
            .agents
            .get(&id)
            .map(|a| a.registered_time)
            .unwrap_or(now);
        // The agent's report is authoritative for its tasks: forget what we had for it, then rebuild.
        for framework in self.frameworks.values_mut() {
            framework.tasks.retain(|t| t.agent_id != id);
        }
        self.agents.insert(
            id.clone(),
            Agent::connected(
                id.clone(),
                info,
                endpoint,
                version,
                total,
                connection,
                registered_time,
                Some(now),
            ),
        );
        for framework_info in frameworks {
            let Some(framework_id) = framework_info.id.clone() else {
                continue;
            };
            if self.is_removed_framework(&framework_id) {
                effects.push(Effect::ToAgent(
                    id.clone(),
                    MasterToAgent::ShutdownFramework { framework_id },
                ));
                continue;
            }
            self.frameworks
                .entry(framework_id.clone())
                .or_insert_with(|| framework_placeholder(framework_id, framework_info, now));
        }
        for reported in tasks {
            if reported.state.is_terminal() || self.is_removed_framework(&reported.framework_id) {
                continue;
            }
            let Ok(resources) = ResourceBag::from_resources(&reported.task.resources) else {
                continue;
            };
            let Some(framework) = self.frameworks.get_mut(&reported.framework_id) else {
                tracing::warn!(agent = %id, task = %reported.task.task_id, "reported task of a framework the agent did not describe");
                continue;
            };
            let role = framework.role();
            let executor_id = reported
                .task
                .executor
                .as_ref()
                .map(|e| e.executor_id.clone());
            if let Some(executor_id) = &executor_id {
                framework
                    .executors
                    .insert((id.clone(), executor_id.clone()));
            }
            framework.tasks.insert(Task {
                info: reported.task.clone(),
                framework_id: reported.framework_id.clone(),
                agent_id: id.clone(),
                executor_id,
                state: reported.state,
                resources: resources.clone(),
                role,
                statuses: vec![StatusRecord {
                    state: reported.state,
                    timestamp: now,
                    healthy: None,
                }],
                latest_status: reported.latest_status.clone(),
            });
            if let Some(agent) = self.agents.get_mut(&id) {
                let _ = agent.used.add(&resources);
            }
        }
        tracing::info!(agent = %id, "agent re-registered");
        effects.push(Effect::ToAgent(
            id.clone(),
            MasterToAgent::Registered {
                protocol_version: proto::agent_protocol::PROTOCOL_VERSION,
                agent_id: id,
                master_info: self.master_info.clone(),
                ping_timeout_total_secs: Some(
                    self.config.agent_ping_timeout_secs
                        * f64::from(self.config.max_agent_ping_timeouts),
                ),
            },
        ));
        // No allocation here: the next batch allocation offers the agent. Allocating per
        // registration costs O(agents) each, O(agents^2) in a re-registration storm.
        Ok(effects)
    }

    /// The agent's stream connection `connection` closed. Offers on it are rescinded and it gets no
    /// new ones; its tasks stay (mesos-ha.md 3.4: disconnection only deactivates).
    pub fn agent_disconnected(&mut self, id: &AgentId, connection: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match self.agents.get_mut(id) {
            Some(agent) if agent.connection == connection && agent.connected => {
                agent.connected = false;
                agent.active = false;
            }
            _ => return effects,
        }
        tracing::info!(agent = %id, "agent disconnected");
        let offers: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| &o.agent_id == id)
            .map(|o| o.id.clone())
            .collect();
        for offer in offers {
            self.rescind_offer(&offer, &mut effects);
        }
        effects
    }

    /// A status update forwarded by an agent. The master records the state and passes the update on
    /// to the framework, which acknowledges it to the agent through the master.
    pub fn status_update(
        &mut self,
        now: f64,
        agent_id: &AgentId,
        update: StatusUpdate,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if !self.agents.get(agent_id).is_some_and(|a| a.connected) {
            self.counters.invalid_status_updates += 1;
            return effects;
        }
        let framework_id = update.framework_id.clone();
        if self.is_removed_framework(&framework_id) {
            self.counters.invalid_status_updates += 1;
            effects.push(Effect::ToAgent(
                agent_id.clone(),
                MasterToAgent::ShutdownFramework { framework_id },
            ));
            return effects;
        }
        let Some(framework) = self.frameworks.get_mut(&framework_id) else {
            // Unknown framework (e.g. not yet resubscribed after failover): the agent retries.
            self.counters.invalid_status_updates += 1;
            return effects;
        };
        self.counters.valid_status_updates += 1;
        let mut status = update.status;
        status.agent_id = Some(agent_id.clone());
        let state = status.state;
        let known = framework
            .tasks
            .update(&status.task_id, |task| {
                // A retried update for a state we already recorded must not count twice.
                let is_new = task.latest_status.as_ref().and_then(|s| s.uuid.as_ref())
                    != status.uuid.as_ref()
                    || status.uuid.is_none();
                if is_new {
                    task.state = state;
                    task.statuses.push(StatusRecord {
                        state,
                        timestamp: status.timestamp.unwrap_or(now),
                        healthy: status.healthy,
                    });
                    if task.statuses.len() > STATUSES_PER_TASK_MAX {
                        task.statuses.remove(0);
                    }
                    task.latest_status = Some(status.clone());
                }
            })
            .is_some();
        let released = if known && state.is_terminal() {
            framework.tasks.remove(&status.task_id)
        } else {
            None
        };
        if let Some(task) = released {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.used.subtract(&task.resources);
            }
            self.count_terminal(state);
            let max = self.config.completed_tasks_per_framework_max;
            if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                push_bounded(&mut framework.completed_tasks, task, max);
            }
        }
        if self
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.connected)
        {
            effects.push(Effect::ToFramework(framework_id, Event::update(status)));
        }
        effects
    }

    /// An executor's message to its framework: a MESSAGE event if the framework is connected
    /// (best effort, spec 8.2).
    pub fn executor_message(
        &mut self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: ExecutorId,
        data: String,
    ) -> Vec<Effect> {
        if !self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.connected)
        {
            return Vec::new();
        }
        let message = proto::scheduler::Message {
            agent_id: agent_id.clone(),
            executor_id,
            data,
        };
        vec![Effect::ToFramework(
            framework_id.clone(),
            Event::message(message),
        )]
    }

    /// An executor ended; connected frameworks hear of it as FAILURE (spec 8.2).
    pub fn executor_exited(
        &mut self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: ExecutorId,
        status: i32,
    ) -> Vec<Effect> {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework
                .executors
                .remove(&(agent_id.clone(), executor_id.clone()));
        }
        if self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.connected)
        {
            vec![Effect::ToFramework(
                framework_id.clone(),
                Event::failure(proto::scheduler::Failure {
                    agent_id: Some(agent_id.clone()),
                    executor_id: Some(executor_id),
                    status: Some(status),
                }),
            )]
        } else {
            Vec::new()
        }
    }
}
