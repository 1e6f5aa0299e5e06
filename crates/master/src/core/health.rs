//! Agent health as the leader judges it (mesos-ha.md 3.4-3.6): pings with a timeout, agents that
//! miss `max_agent_ping_timeouts` in a row (or that do not come back after a failover within
//! `agent_reregister_timeout`) are marked unreachable, and their tasks are reported with the
//! master-generated states of the spec's table 3.6. The registry write that marks an agent comes
//! first; the edge calls `mark_unreachable` once it is durable.

use super::*;
use proto::scheduler::Failure;

impl Core {
    /// One ping round, every `agent_ping_timeout`: an unanswered previous ping counts as a miss.
    /// Returns the pings to send and the agents that just exhausted their misses (to be marked
    /// unreachable in the registry, then with `mark_unreachable`).
    pub fn ping_agents(&mut self) -> (Vec<Effect>, Vec<AgentId>) {
        let mut effects = Vec::new();
        let mut exhausted = Vec::new();
        let max = self.config.max_agent_ping_timeouts.max(1);
        for agent in self.agents.values_mut() {
            if agent.ping_outstanding || !agent.connected {
                agent.pings_missed += 1;
                if agent.pings_missed >= max {
                    exhausted.push(agent.id.clone());
                    continue;
                }
            }
            if agent.connected {
                agent.ping_outstanding = true;
                effects.push(Effect::ToAgent(agent.id.clone(), MasterToAgent::Ping));
            }
        }
        (effects, exhausted)
    }

    pub fn agent_pong(&mut self, id: &AgentId) {
        if let Some(agent) = self.agents.get_mut(id) {
            agent.ping_outstanding = false;
            agent.pings_missed = 0;
        }
    }

    /// Agents of the registry that did not re-register in time after a failover.
    pub fn overdue_recovered_agents(&self, now: f64) -> Vec<AgentId> {
        self.recovered_agents
            .iter()
            .filter(|(_, (_, deadline))| now >= *deadline)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Agents the registry holds as unreachable when this master is elected (mesos-ha.md 3.5).
    pub fn recover_unreachable(&mut self, marks: impl IntoIterator<Item = (AgentId, f64)>) {
        for (id, since) in marks {
            self.unreachable_agents
                .entry(id)
                .or_insert(UnreachableAgent { info: None, since });
        }
    }

    /// Records the registry's agents at election; they have until the deadline to re-register.
    pub fn recover_agents(&mut self, now: f64, agents: Vec<AgentInfo>) {
        let deadline = now + self.config.agent_reregister_timeout_secs;
        for info in agents {
            if let Some(id) = info.id.clone() {
                if !self.agents.contains_key(&id) {
                    self.recovered_agents.insert(id, (info, deadline));
                }
            }
        }
    }

    /// The agent is unreachable (already recorded in the registry): its offers go, each task gets
    /// the spec's state (TASK_UNREACHABLE for partition-aware frameworks, TASK_LOST otherwise),
    /// connected frameworks get FAILURE with the agent id, and its stream is closed so it must
    /// re-register when it comes back.
    pub fn mark_unreachable(&mut self, now: f64, id: &AgentId) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some((info, _)) = self.recovered_agents.remove(id) {
            // After a failover the master has no task list for it: only FAILURE (spec 3.5).
            self.unreachable_agents.insert(
                id.clone(),
                UnreachableAgent {
                    info: Some(info),
                    since: now,
                },
            );
            self.failure_to_all(id, &mut effects);
            return effects;
        }
        let offers: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| &o.agent_id == id)
            .map(|o| o.id.clone())
            .collect();
        for offer in offers {
            self.rescind_offer(&offer, &mut effects);
        }
        let Some(agent) = self.agents.remove(id) else {
            return effects;
        };
        tracing::warn!(agent = %id, "agent unreachable");
        self.counters.slave_removals += 1;
        self.unreachable_agents.insert(
            id.clone(),
            UnreachableAgent {
                info: Some(agent.info.clone()),
                since: now,
            },
        );
        self.report_agent_tasks(
            now,
            id,
            TaskState::TaskUnreachable,
            "REASON_AGENT_REMOVED",
            "Agent is unreachable",
            &mut effects,
        );
        self.failure_to_all(id, &mut effects);
        effects.push(Effect::CloseAgent(id.clone()));
        effects
    }

    /// An operator marked the agent gone (MARK_AGENT_GONE, already in the registry): its tasks are
    /// TASK_GONE_BY_OPERATOR (partition-aware) or TASK_LOST, and the agent is told to shut down.
    pub fn mark_gone(&mut self, now: f64, id: &AgentId) -> Vec<Effect> {
        let mut effects = Vec::new();
        let offers: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| &o.agent_id == id)
            .map(|o| o.id.clone())
            .collect();
        for offer in offers {
            self.rescind_offer(&offer, &mut effects);
        }
        self.recovered_agents.remove(id);
        self.unreachable_agents.remove(id);
        let was_connected = self.agents.remove(id).is_some_and(|a| a.connected);
        self.counters.slave_removals += 1;
        // Tasks already reported unreachable move on to gone as well.
        for framework in self.frameworks.values_mut() {
            let back: Vec<TaskId> = framework
                .unreachable_tasks
                .values()
                .filter(|t| &t.agent_id == id)
                .map(|t| t.info.task_id.clone())
                .collect();
            for task_id in back {
                if let Some(task) = framework.unreachable_tasks.remove(&task_id) {
                    framework.tasks.insert(task);
                }
            }
        }
        self.report_agent_tasks(
            now,
            id,
            TaskState::TaskGoneByOperator,
            "REASON_AGENT_REMOVED_BY_OPERATOR",
            "Agent was marked gone by an operator",
            &mut effects,
        );
        self.failure_to_all(id, &mut effects);
        if was_connected {
            effects.push(Effect::ToAgent(
                id.clone(),
                MasterToAgent::Shutdown {
                    message: "Agent has been marked gone".into(),
                },
            ));
            effects.push(Effect::CloseAgent(id.clone()));
        }
        effects
    }

    /// Every task of `id` leaves the agent's books: partition-aware frameworks hear `aware_state`
    /// (TASK_UNREACHABLE tasks are kept aside to come back), the others TASK_LOST (mesos-ha.md 3.6).
    fn report_agent_tasks(
        &mut self,
        now: f64,
        id: &AgentId,
        aware_state: TaskState,
        reason: &str,
        message: &str,
        effects: &mut Vec<Effect>,
    ) {
        let max = self.config.completed_tasks_per_framework_max;
        let mut terminal = Vec::new();
        for framework in self.frameworks.values_mut() {
            let partition_aware = framework.info.is_partition_aware();
            let on_agent: Vec<TaskId> = framework
                .tasks
                .values()
                .filter(|t| &t.agent_id == id)
                .map(|t| t.info.task_id.clone())
                .collect();
            for task_id in on_agent {
                let Some(mut task) = framework.tasks.remove(&task_id) else {
                    continue;
                };
                let state = if partition_aware {
                    aware_state
                } else {
                    TaskState::TaskLost
                };
                let mut status = master_status(
                    task_id.clone(),
                    state,
                    Some(id.clone()),
                    reason,
                    message,
                    now,
                );
                if state == TaskState::TaskUnreachable {
                    status.unreachable_time = Some(DurationInfo::from_secs_f64(now));
                }
                task.state = state;
                task.statuses.push(StatusRecord {
                    state,
                    timestamp: now,
                    healthy: None,
                });
                task.latest_status = Some(status.clone());
                if framework.connected {
                    effects.push(Effect::ToFramework(
                        framework.id.clone(),
                        Event::update(status),
                    ));
                }
                if state == TaskState::TaskLost {
                    terminal.push(state);
                }
                if aware_state == TaskState::TaskUnreachable {
                    // Kept aside whatever the framework was told, to come back if the agent
                    // re-registers (Mesos keeps them under `unreachable_tasks` too).
                    framework.unreachable_tasks.insert(task_id, task);
                } else {
                    if state != TaskState::TaskLost {
                        terminal.push(state);
                    }
                    push_bounded(&mut framework.completed_tasks, task, max);
                }
            }
        }
        for state in terminal {
            self.count_terminal(state);
        }
    }

    fn failure_to_all(&self, id: &AgentId, effects: &mut Vec<Effect>) {
        for framework in self.frameworks.values().filter(|f| f.connected) {
            effects.push(Effect::ToFramework(
                framework.id.clone(),
                Event::failure(Failure {
                    agent_id: Some(id.clone()),
                    executor_id: None,
                    status: None,
                }),
            ));
        }
    }

    /// An unreachable agent re-registered (since Mesos 1.5): its tasks come back and each
    /// framework hears their latest state with REASON_AGENT_REREGISTERED (mesos-ha.md 3.6).
    /// Call after `reregister_agent` rebuilt its tasks.
    pub fn agent_reachable_again(&mut self, now: f64, id: &AgentId) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.unreachable_agents.remove(id).is_none() {
            return effects;
        }
        for framework in self.frameworks.values_mut() {
            framework.unreachable_tasks.retain(|_, t| &t.agent_id != id);
            if !framework.connected {
                continue;
            }
            for task in framework.tasks.values().filter(|t| &t.agent_id == id) {
                let mut status = master_status(
                    task.info.task_id.clone(),
                    task.state,
                    Some(id.clone()),
                    "REASON_AGENT_REREGISTERED",
                    "Agent re-registered",
                    now,
                );
                status.executor_id = task.executor_id.clone();
                effects.push(Effect::ToFramework(
                    framework.id.clone(),
                    Event::update(status),
                ));
            }
        }
        effects
    }
}
