//! Scheduler calls (mesos-http-api.md section 8.3) applied to the core. Structural problems of a call
//! are answered synchronously as `CallError` (the edge maps them to 400/403/501); problems with the
//! operations themselves (bad offers, invalid tasks) arrive asynchronously as task updates, as in
//! Mesos.

use super::*;
use proto::scheduler::*;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// 400: the call is malformed or names something unknown.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the framework exists but is not subscribed on this stream.
    #[error("{0}")]
    Forbidden(String),
    /// 501: call type `UNKNOWN`.
    #[error("{0}")]
    NotImplemented(String),
}

fn bad(message: impl Into<String>) -> CallError {
    CallError::BadRequest(message.into())
}

/// The result of SUBSCRIBE: effects for the previous stream (failover) come before the new stream is
/// attached, the rest after, so SUBSCRIBED is always the new stream's first record.
#[derive(Debug)]
pub struct SubscribeOutcome {
    pub framework_id: FrameworkId,
    pub before_stream: Vec<Effect>,
    pub after_stream: Vec<Effect>,
}

/// Why a SUBSCRIBE is refused. The edge answers with an ERROR event and closes (spec 8.1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscribeError {
    #[error("Framework has been removed")]
    Removed,
    #[error("{0}")]
    Invalid(String),
}

/// A role name as Mesos accepts it: not empty, not `.`/`..`, no `/` at either end, no whitespace or
/// control characters, not starting with `-`.
fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() || role == "." || role == ".." {
        return Err(format!("role '{role}' is not a valid role name"));
    }
    if role.starts_with('-') || role.starts_with('/') || role.ends_with('/') {
        return Err(format!(
            "role '{role}' cannot start with '-' or '/', or end with '/'"
        ));
    }
    if role.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "role '{role}' contains whitespace or control characters"
        ));
    }
    Ok(())
}

impl Core {
    pub fn subscribe(
        &mut self,
        now: f64,
        mut info: FrameworkInfo,
        stream_id: String,
    ) -> Result<SubscribeOutcome, SubscribeError> {
        for role in info.effective_roles() {
            validate_role(&role).map_err(SubscribeError::Invalid)?;
        }
        if !info.failover_timeout.is_finite() || info.failover_timeout < 0.0 {
            return Err(SubscribeError::Invalid(format!(
                "framework_info.failover_timeout {} must be a non-negative number of seconds",
                info.failover_timeout
            )));
        }
        let mut before = Vec::new();
        let mut after = Vec::new();
        let framework_id = match info.id.clone() {
            Some(id) if self.is_removed_framework(&id) => return Err(SubscribeError::Removed),
            Some(id) => {
                if let Some(framework) = self.frameworks.get_mut(&id) {
                    if framework.stream_id.is_some() {
                        // One stream per framework: the old one learns it was replaced (spec 8.1).
                        before.push(Effect::ToFramework(
                            id.clone(),
                            Event::error("Framework failed over"),
                        ));
                        before.push(Effect::CloseFramework(id.clone()));
                    }
                    // On resubscribe, changes to user and checkpoint are ignored (spec 8.1).
                    info.user = framework.info.user.clone();
                    info.checkpoint = framework.info.checkpoint;
                    framework.info = info;
                    framework.reregistered_time = Some(now);
                    framework.recovered = false;
                } else {
                    // A new leader accepts an id it has never seen (mesos-ha.md 3.5).
                    self.frameworks
                        .insert(id.clone(), new_framework(id.clone(), info, now));
                }
                id
            }
            None => {
                let id = self.mint_framework_id();
                info.id = Some(id.clone());
                self.frameworks
                    .insert(id.clone(), new_framework(id.clone(), info, now));
                id
            }
        };
        let framework = self
            .frameworks
            .get_mut(&framework_id)
            .expect("inserted or found above");
        framework.info.id = Some(framework_id.clone());
        framework.stream_id = Some(stream_id);
        framework.connected = true;
        framework.active = true;
        framework.failover_deadline = None;
        framework.unregistered_time = None;
        after.push(Effect::ToFramework(
            framework_id.clone(),
            Event::subscribed(Subscribed {
                framework_id: framework_id.clone(),
                heartbeat_interval_seconds: HEARTBEAT_INTERVAL_SECS,
                master_info: Some(self.master_info.clone()),
            }),
        ));
        Ok(SubscribeOutcome {
            framework_id,
            before_stream: before,
            after_stream: after,
        })
    }

    /// The framework's stream broke. Only the current stream counts: a replaced stream closing late
    /// must not disconnect its successor (spec 8.6).
    pub fn framework_disconnected(
        &mut self,
        now: f64,
        id: &FrameworkId,
        stream_id: &str,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(framework) = self.frameworks.get_mut(id) else {
            return effects;
        };
        if framework.stream_id.as_deref() != Some(stream_id) {
            return effects;
        }
        framework.stream_id = None;
        framework.connected = false;
        framework.active = false;
        framework.unregistered_time = Some(now);
        framework.failover_deadline = Some(now + framework.info.failover_timeout);
        let offers = framework.offers.clone();
        for offer in offers {
            self.remove_offer(&offer);
        }
        tracing::info!(framework = %id, failover_timeout = framework_failover(&self.frameworks, id), "framework disconnected");
        if self
            .frameworks
            .get(id)
            .is_some_and(|f| f.info.failover_timeout == 0.0)
        {
            self.remove_framework(now, id, &mut effects);
        }
        effects
    }

    /// Checks a non-SUBSCRIBE call's framework and stream id (spec 8.3).
    pub fn authorize_call(
        &self,
        framework_id: Option<&FrameworkId>,
        stream_id: Option<&str>,
    ) -> Result<FrameworkId, CallError> {
        let id = framework_id.ok_or_else(|| bad("Expecting 'framework_id' to be present"))?;
        let stream_id = stream_id.ok_or_else(|| {
            bad("All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        })?;
        let framework = self
            .frameworks
            .get(id)
            .ok_or_else(|| bad(format!("Framework '{id}' not found")))?;
        match framework.stream_id.as_deref() {
            None => Err(CallError::Forbidden(format!("Framework '{id}' is not subscribed"))),
            Some(current) if current != stream_id => Err(bad(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID '{id}'"
            ))),
            Some(_) => Ok(id.clone()),
        }
    }

    /// Applies an authorized call. `call.kind` was checked by the edge to be a known type.
    pub fn apply_call(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        call: Call,
    ) -> Result<Vec<Effect>, CallError> {
        self.counters.messages_scheduler_calls += 1;
        let mut effects = Vec::new();
        match call.kind.as_str() {
            "TEARDOWN" => self.remove_framework(now, framework_id, &mut effects),
            "ACCEPT" => {
                let accept = call
                    .accept
                    .ok_or_else(|| bad("Expecting 'accept' to be present"))?;
                self.accept(now, framework_id, accept, &mut effects);
            }
            "DECLINE" => {
                let decline = call
                    .decline
                    .ok_or_else(|| bad("Expecting 'decline' to be present"))?;
                let refuse = proto::scheduler::Filters::refuse_seconds(decline.filters.as_ref());
                for offer_id in &decline.offer_ids {
                    if let Some(offer) = self.take_own_offer(framework_id, offer_id) {
                        self.counters.offers_declined += 1;
                        self.add_filter(
                            framework_id,
                            &offer.agent_id,
                            offer.resources,
                            now,
                            refuse,
                        );
                    }
                }
            }
            "REVIVE" => {
                if let Some(framework) = self.frameworks.get_mut(framework_id) {
                    framework.suppressed = false;
                }
                self.filters.clear_framework(framework_id);
                effects.extend(self.allocate(now));
            }
            "SUPPRESS" => {
                if let Some(framework) = self.frameworks.get_mut(framework_id) {
                    framework.suppressed = true;
                }
            }
            "KILL" => {
                let kill = call
                    .kill
                    .ok_or_else(|| bad("Expecting 'kill' to be present"))?;
                self.kill(now, framework_id, kill, &mut effects);
            }
            "SHUTDOWN" => {
                let shutdown = call
                    .shutdown
                    .ok_or_else(|| bad("Expecting 'shutdown' to be present"))?;
                self.shutdown_executor(framework_id, shutdown, &mut effects);
            }
            "ACKNOWLEDGE" => {
                let ack = call
                    .acknowledge
                    .ok_or_else(|| bad("Expecting 'acknowledge' to be present"))?;
                validate_uuid(&ack.uuid)?;
                if self.agents.get(&ack.agent_id).is_some_and(|a| a.connected) {
                    effects.push(Effect::ToAgent(
                        ack.agent_id.clone(),
                        MasterToAgent::AcknowledgeUpdate {
                            framework_id: framework_id.clone(),
                            task_id: ack.task_id,
                            uuid: ack.uuid,
                        },
                    ));
                }
            }
            "RECONCILE" => {
                let reconcile = call.reconcile.unwrap_or_default();
                self.reconcile(now, framework_id, reconcile, &mut effects);
            }
            "MESSAGE" => {
                let message = call
                    .message
                    .ok_or_else(|| bad("Expecting 'message' to be present"))?;
                if self
                    .agents
                    .get(&message.agent_id)
                    .is_some_and(|a| a.connected)
                {
                    effects.push(Effect::ToAgent(
                        message.agent_id.clone(),
                        MasterToAgent::FrameworkMessage {
                            framework_id: framework_id.clone(),
                            executor_id: message.executor_id,
                            data: message.data,
                        },
                    ));
                }
            }
            // The default allocator ignores resource requests (spec 8.3).
            "REQUEST" => {}
            "ACCEPT_INVERSE_OFFERS" | "DECLINE_INVERSE_OFFERS" => {}
            other => return Err(bad(format!("Unsupported call type '{other}'"))),
        }
        Ok(effects)
    }

    fn add_filter(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        refused: ResourceBag,
        now: f64,
        refuse_seconds: f64,
    ) {
        if refuse_seconds > 0.0 && !refused.is_empty() {
            self.filters.add(allocator::RefuseFilter {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                refused,
                expires_at: now + refuse_seconds,
            });
        }
    }

    /// Removes an offer if it exists and belongs to `framework_id`.
    fn take_own_offer(
        &mut self,
        framework_id: &FrameworkId,
        offer_id: &OfferId,
    ) -> Option<OfferRecord> {
        if self
            .offers
            .get(offer_id)
            .is_some_and(|o| &o.framework_id == framework_id)
        {
            self.remove_offer(offer_id)
        } else {
            None
        }
    }

    fn dropped_state(&self, framework_id: &FrameworkId) -> TaskState {
        if self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.is_partition_aware())
        {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        }
    }

    fn accept(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        accept: Accept,
        effects: &mut Vec<Effect>,
    ) {
        let tasks_of = |ops: &[Operation]| -> Vec<TaskInfo> {
            ops.iter()
                .flat_map(|op| {
                    let mut tasks = op
                        .launch
                        .as_ref()
                        .map(|l| l.task_infos.clone())
                        .unwrap_or_default();
                    if let Some(group) = &op.launch_group {
                        tasks.extend(group.task_group.tasks.iter().cloned());
                    }
                    tasks
                })
                .collect()
        };
        // Every offer must exist, belong to this framework, and all must be on one agent (spec 8.3).
        let mut problem = None;
        if accept.offer_ids.is_empty() {
            problem = Some("No offers were specified in ACCEPT".to_string());
        }
        let mut agent_id: Option<AgentId> = None;
        for offer_id in &accept.offer_ids {
            match self.offers.get(offer_id) {
                None => problem = problem.or(Some(format!("Offer {offer_id} is no longer valid"))),
                Some(o) if &o.framework_id != framework_id => {
                    problem = problem.or(Some(format!(
                        "Offer {offer_id} belongs to another framework"
                    )))
                }
                Some(o) => match &agent_id {
                    Some(a) if a != &o.agent_id => {
                        problem = problem.or(Some(
                            "Offers in one ACCEPT must all be on the same agent".to_string(),
                        ))
                    }
                    _ => agent_id = Some(o.agent_id.clone()),
                },
            }
        }
        let mut unique = accept.offer_ids.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != accept.offer_ids.len() {
            problem = problem.or(Some("Offer ids in ACCEPT must be unique".to_string()));
        }
        let mut offered = ResourceBag::new();
        for offer_id in &unique {
            if let Some(offer) = self.take_own_offer(framework_id, offer_id) {
                self.counters.offers_accepted += 1;
                let _ = offered.add(&offer.resources);
            }
        }
        if let Some(problem) = problem {
            let state = self.dropped_state(framework_id);
            for task in tasks_of(&accept.operations) {
                let status = master_status(
                    task.task_id.clone(),
                    state,
                    Some(task.agent_id.clone()),
                    "REASON_INVALID_OFFERS",
                    problem.clone(),
                    now,
                );
                effects.push(Effect::ToFramework(
                    framework_id.clone(),
                    Event::update(status),
                ));
            }
            return;
        }
        let Some(agent_id) = agent_id else { return };
        let mut remaining = offered;
        for operation in accept.operations {
            match operation.kind.as_str() {
                "LAUNCH" => {
                    let tasks = operation.launch.map(|l| l.task_infos).unwrap_or_default();
                    for task in tasks {
                        self.launch(
                            now,
                            framework_id,
                            &agent_id,
                            task,
                            None,
                            &mut remaining,
                            effects,
                        );
                    }
                }
                "LAUNCH_GROUP" => match operation.launch_group {
                    Some(group) => self.launch_group(
                        now,
                        framework_id,
                        &agent_id,
                        group,
                        &mut remaining,
                        effects,
                    ),
                    None => {
                        tracing::warn!(framework = %framework_id, "LAUNCH_GROUP without 'launch_group' ignored")
                    }
                },
                other => {
                    tracing::warn!(framework = %framework_id, operation = other, "offer operation not supported; ignored");
                }
            }
        }
        let refuse = proto::scheduler::Filters::refuse_seconds(accept.filters.as_ref());
        self.add_filter(framework_id, &agent_id, remaining, now, refuse);
    }

    /// Why a task cannot run, or its resources.
    fn validate_task(
        &self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task: &TaskInfo,
        in_group: bool,
    ) -> Result<ResourceBag, String> {
        if task.task_id.value.is_empty() {
            return Err("Task ID is empty".into());
        }
        if task.task_id.value.contains('/') || task.task_id.value.chars().any(char::is_control) {
            return Err(format!(
                "Task ID '{}' contains '/' or control characters",
                task.task_id
            ));
        }
        if self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.contains_key(&task.task_id))
        {
            return Err(format!("Task has duplicate ID: {}", task.task_id));
        }
        if &task.agent_id != agent_id {
            return Err(format!(
                "Task uses agent {} but the offers are for agent {agent_id}",
                task.agent_id
            ));
        }
        match (&task.command, &task.executor, in_group) {
            (Some(_), Some(_), _) => {
                return Err("Task should have at most one of 'command' or 'executor'".into())
            }
            (None, None, false) => {
                return Err("Task should have at least one of 'command' or 'executor'".into())
            }
            (None, Some(_), true) => return Err("Task in a group must not set 'executor'".into()),
            _ => {}
        }
        if let Some(command) = &task.command {
            if command.shell && command.value.as_deref().unwrap_or("").is_empty() {
                return Err("Task's 'command.value' is empty".into());
            }
        }
        let mut resources =
            ResourceBag::from_resources(&task.resources).map_err(|e| e.to_string())?;
        if let Some(executor) = &task.executor {
            let executor_resources =
                ResourceBag::from_resources(&executor.resources).map_err(|e| e.to_string())?;
            resources
                .add(&executor_resources)
                .map_err(|e| e.to_string())?;
        }
        if resources.is_empty() {
            return Err("Task uses no resources".into());
        }
        Ok(resources)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task: TaskInfo,
        executor_id: Option<ExecutorId>,
        remaining: &mut ResourceBag,
        effects: &mut Vec<Effect>,
    ) {
        let error = |status_state: TaskState, reason: &str, message: String| {
            Effect::ToFramework(
                framework_id.clone(),
                Event::update(master_status(
                    task.task_id.clone(),
                    status_state,
                    Some(task.agent_id.clone()),
                    reason,
                    message,
                    now,
                )),
            )
        };
        let resources = match self.validate_task(framework_id, agent_id, &task, false) {
            Ok(r) => r,
            Err(message) => {
                effects.push(error(TaskState::TaskError, "REASON_TASK_INVALID", message));
                return;
            }
        };
        if !remaining.contains(&resources) {
            let missing = remaining.missing_from(&resources).join(", ");
            effects.push(error(
                TaskState::TaskError,
                "REASON_TASK_INVALID",
                format!("Task uses more resources ({missing}) than available in the offer"),
            ));
            return;
        }
        if !self.agents.get(agent_id).is_some_and(|a| a.connected) {
            let state = self.dropped_state(framework_id);
            effects.push(error(
                state,
                "REASON_AGENT_DISCONNECTED",
                format!("Agent {agent_id} is not connected"),
            ));
            return;
        }
        remaining.subtract(&resources);
        let framework = self
            .frameworks
            .get(framework_id)
            .expect("authorized framework exists");
        let framework_info = framework.info.clone();
        let role = framework.role();
        self.add_task(
            now,
            framework_id,
            agent_id,
            &task,
            executor_id,
            resources,
            role,
        );
        effects.push(Effect::ToAgent(
            agent_id.clone(),
            MasterToAgent::RunTask {
                framework: framework_info,
                task,
            },
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn add_task(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        task: &TaskInfo,
        executor_id: Option<ExecutorId>,
        resources: ResourceBag,
        role: String,
    ) {
        if let Some(agent) = self.agents.get_mut(agent_id) {
            let _ = agent.used.add(&resources);
        }
        let executor_id =
            executor_id.or_else(|| task.executor.as_ref().map(|e| e.executor_id.clone()));
        if let (Some(executor_id), Some(framework)) =
            (&executor_id, self.frameworks.get_mut(framework_id))
        {
            framework
                .executors
                .insert((agent_id.clone(), executor_id.clone()));
        }
        let record = Task {
            info: task.clone(),
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id,
            state: TaskState::TaskStaging,
            resources,
            role,
            statuses: vec![StatusRecord {
                state: TaskState::TaskStaging,
                timestamp: now,
                healthy: None,
            }],
            latest_status: None,
        };
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.tasks.insert(record);
        }
    }

    fn launch_group(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        group: LaunchGroup,
        remaining: &mut ResourceBag,
        effects: &mut Vec<Effect>,
    ) {
        // A group launches all of its tasks or none (spec 8.3, LAUNCH_GROUP).
        let mut needed = match ResourceBag::from_resources(&group.executor.resources) {
            Ok(r) => r,
            Err(e) => {
                self.fail_group(
                    now,
                    framework_id,
                    &group,
                    TaskState::TaskError,
                    "REASON_TASK_GROUP_INVALID",
                    e.to_string(),
                    effects,
                );
                return;
            }
        };
        let mut per_task = Vec::new();
        for task in &group.task_group.tasks {
            match self.validate_task(framework_id, agent_id, task, true) {
                Ok(r) => {
                    let _ = needed.add(&r);
                    per_task.push(r);
                }
                Err(message) => {
                    let message = format!("Task {} is invalid: {message}", task.task_id);
                    self.fail_group(
                        now,
                        framework_id,
                        &group,
                        TaskState::TaskError,
                        "REASON_TASK_GROUP_INVALID",
                        message,
                        effects,
                    );
                    return;
                }
            }
        }
        if group.task_group.tasks.is_empty() {
            tracing::warn!(framework = %framework_id, "LAUNCH_GROUP with no tasks ignored");
            return;
        }
        if !remaining.contains(&needed) {
            let missing = remaining.missing_from(&needed).join(", ");
            let message =
                format!("Task group uses more resources ({missing}) than available in the offer");
            self.fail_group(
                now,
                framework_id,
                &group,
                TaskState::TaskError,
                "REASON_TASK_GROUP_INVALID",
                message,
                effects,
            );
            return;
        }
        if !self.agents.get(agent_id).is_some_and(|a| a.connected) {
            let state = self.dropped_state(framework_id);
            self.fail_group(
                now,
                framework_id,
                &group,
                state,
                "REASON_AGENT_DISCONNECTED",
                format!("Agent {agent_id} is not connected"),
                effects,
            );
            return;
        }
        remaining.subtract(&needed);
        let framework = self
            .frameworks
            .get(framework_id)
            .expect("authorized framework exists");
        let framework_info = framework.info.clone();
        let role = framework.role();
        for (task, resources) in group.task_group.tasks.iter().zip(per_task) {
            self.add_task(
                now,
                framework_id,
                agent_id,
                task,
                Some(group.executor.executor_id.clone()),
                resources,
                role.clone(),
            );
        }
        effects.push(Effect::ToAgent(
            agent_id.clone(),
            MasterToAgent::RunTaskGroup {
                framework: framework_info,
                executor: group.executor,
                tasks: group.task_group.tasks,
            },
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn fail_group(
        &self,
        now: f64,
        framework_id: &FrameworkId,
        group: &LaunchGroup,
        state: TaskState,
        reason: &str,
        message: String,
        effects: &mut Vec<Effect>,
    ) {
        for task in &group.task_group.tasks {
            let status = master_status(
                task.task_id.clone(),
                state,
                Some(task.agent_id.clone()),
                reason,
                message.clone(),
                now,
            );
            effects.push(Effect::ToFramework(
                framework_id.clone(),
                Event::update(status),
            ));
        }
    }

    fn kill(
        &mut self,
        now: f64,
        framework_id: &FrameworkId,
        kill: Kill,
        effects: &mut Vec<Effect>,
    ) {
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&kill.task_id))
            .cloned();
        match task {
            Some(task) if self.agents.get(&task.agent_id).is_some_and(|a| a.connected) => {
                effects.push(Effect::ToAgent(
                    task.agent_id.clone(),
                    MasterToAgent::KillTask {
                        framework_id: framework_id.clone(),
                        task_id: kill.task_id,
                        kill_policy: kill.kill_policy,
                    },
                ));
            }
            // Known task on a disconnected agent: the kill is retried by the scheduler; Mesos
            // answers nothing until the agent returns.
            Some(_) => {}
            None => {
                // Unknown task: answered like an explicit reconciliation of it (spec 8.3).
                let request = ReconcileTask {
                    task_id: kill.task_id,
                    agent_id: kill.agent_id,
                };
                self.reconcile(
                    now,
                    framework_id,
                    Reconcile {
                        tasks: vec![request],
                    },
                    effects,
                );
            }
        }
    }

    fn shutdown_executor(
        &mut self,
        framework_id: &FrameworkId,
        shutdown: Shutdown,
        effects: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        // A custom executor the master started there: the agent shuts it down (mesos-http-api.md
        // 8.4 SHUTDOWN), whether or not it still has tasks.
        if framework
            .executors
            .contains(&(shutdown.agent_id.clone(), shutdown.executor_id.clone()))
        {
            effects.push(Effect::ToAgent(
                shutdown.agent_id.clone(),
                MasterToAgent::ShutdownExecutor {
                    framework_id: framework_id.clone(),
                    executor_id: shutdown.executor_id.clone(),
                },
            ));
            return;
        }
        for task in framework.tasks.values() {
            let executor = task
                .executor_id
                .clone()
                .unwrap_or_else(|| ExecutorId::new(task.info.task_id.value.clone()));
            if executor == shutdown.executor_id && task.agent_id == shutdown.agent_id {
                effects.push(Effect::ToAgent(
                    task.agent_id.clone(),
                    MasterToAgent::KillTask {
                        framework_id: framework_id.clone(),
                        task_id: task.info.task_id.clone(),
                        kill_policy: None,
                    },
                ));
            }
        }
    }
}

fn new_framework(id: FrameworkId, info: FrameworkInfo, now: f64) -> Framework {
    Framework {
        id,
        info,
        stream_id: None,
        connected: false,
        active: false,
        recovered: false,
        suppressed: false,
        registered_time: now,
        reregistered_time: None,
        unregistered_time: None,
        failover_deadline: None,
        tasks: ActiveTasks::new(),
        completed_tasks: VecDeque::new(),
        unreachable_tasks: BTreeMap::new(),
        offers: Vec::new(),
        executors: Default::default(),
    }
}

pub(super) fn framework_placeholder(id: FrameworkId, info: FrameworkInfo, now: f64) -> Framework {
    let mut framework = new_framework(id, info, now);
    framework.recovered = true;
    framework
}

fn framework_failover(frameworks: &BTreeMap<FrameworkId, Framework>, id: &FrameworkId) -> f64 {
    frameworks
        .get(id)
        .map(|f| f.info.failover_timeout)
        .unwrap_or(0.0)
}

/// An acknowledgement's uuid is the base64 of 16 bytes.
fn validate_uuid(uuid: &str) -> Result<(), CallError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(uuid)
        .map_err(|_| bad(format!("'acknowledge.uuid' is not valid base64: '{uuid}'")))?;
    if bytes.len() != 16 {
        return Err(bad(format!(
            "'acknowledge.uuid' must encode 16 bytes, got {}",
            bytes.len()
        )));
    }
    Ok(())
}
