//! The driver's side of custom executors (see `core/executors.rs` for the rules): starting their
//! processes through the launcher daemon (like command tasks, so they outlive an agent restart),
//! feeding their `/api/v1/executor` streams, killing them, reporting their exits to the master,
//! and turning executor API calls (`executor_api`) into core steps.

use super::*;
use crate::core::{ExecutorCallError, ExecutorLaunch};
use crate::executor_api::{self, ApiRequest};
use crate::launcher_protocol::LaunchRequest;
use proto::ExecutorId;

/// The executor's launch request: the command as for a task, without `MESOS_TASK_ID`, with the
/// executor's variables (mesos-http-api.md section 9) under the CommandInfo's own environment.
pub(super) fn executor_request(
    launch: &ExecutorLaunch,
    ctx: &LaunchContext,
) -> Result<LaunchRequest, String> {
    let mut request = launcher::request(&launch.spec, ctx)?;
    let own: HashSet<&str> = launch
        .spec
        .task
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.iter().map(|v| v.name.as_str()).collect())
        .unwrap_or_default();
    request.env.retain(|(name, _)| name != "MESOS_TASK_ID");
    let pid = format!("slave(1)@{}", ctx.agent_endpoint);
    let ours = launch
        .env
        .iter()
        .cloned()
        .chain([("MESOS_SLAVE_PID".to_string(), pid)])
        .filter(|(name, _)| !own.contains(name.as_str()));
    for (name, value) in ours {
        match request.env.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => request.env.push((name, value)),
        }
    }
    Ok(request)
}

impl Driver {
    /// Runs a core step that may refuse (an executor call); its checkpoints and effects go to the
    /// group commit either way.
    fn try_step(
        &mut self,
        f: impl FnOnce(&mut Core) -> Result<Vec<Effect>, ExecutorCallError>,
    ) -> Result<(), ExecutorCallError> {
        let (ops, outcome) = {
            let mut core = self.shared.core();
            let outcome = f(&mut core);
            (core.drain_checkpoints(), outcome)
        };
        let (effects, result) = match outcome {
            Ok(effects) => (effects, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        self.commits
            .push(ops, effects.into_iter().map(Action::Effect));
        result
    }

    /// Performs an executor effect (its checkpoints are durable).
    pub(super) fn perform_executor_effect(&mut self, effect: Effect) {
        match effect {
            Effect::LaunchExecutor(launch) => {
                if self.stopping.is_none() {
                    self.start_executor_launch(*launch);
                }
            }
            Effect::SendToExecutor {
                framework_id,
                executor_id,
                event,
            } => {
                let key = (framework_id, executor_id);
                match self.executor_streams.get(&key) {
                    Some((_, events)) => {
                        tracing::debug!(framework = %key.0, executor = %key.1, event = %event.kind, "event to the executor");
                        let _ = events.send(executor_api::record(&event));
                    }
                    None => {
                        tracing::info!(framework = %key.0, executor = %key.1, event = %event.kind, "executor not connected; event dropped")
                    }
                }
            }
            Effect::KillExecutor {
                framework_id,
                executor_id,
                grace,
            } => {
                let container = self
                    .shared
                    .core()
                    .executor(&framework_id, &executor_id)
                    .map(|e| e.container_id.value.clone());
                let known = container.filter(|c| {
                    self.executor_containers.contains_key(c) && !self.launching.contains(c)
                });
                match known {
                    Some(container_id) if grace.is_zero() => {
                        tracing::info!(framework = %framework_id, executor = %executor_id, "killing executor");
                        self.launcher.kill(&container_id, libc::SIGKILL, None);
                    }
                    Some(container_id) => {
                        tracing::info!(framework = %framework_id, executor = %executor_id, ?grace, "killing executor");
                        self.launcher
                            .kill(&container_id, libc::SIGTERM, Some(grace));
                    }
                    None => {
                        tracing::debug!(framework = %framework_id, executor = %executor_id, "kill for an executor with no process")
                    }
                }
            }
            Effect::ExecutorExited {
                framework_id,
                executor_id,
                status,
            } => {
                if self.stopping.is_some() {
                    return;
                }
                if let Some((endpoint, agent_id)) = &self.master {
                    let call = AgentCall::ExecutorExited {
                        protocol_version: PROTOCOL_VERSION,
                        framework_id,
                        executor_id,
                        status,
                    };
                    self.outbound.post(endpoint, agent_id, call);
                }
            }
            other => tracing::error!(effect = ?other, "not an executor effect"),
        }
    }

    /// Like `start_launch`, for an executor's process.
    fn start_executor_launch(&mut self, launch: ExecutorLaunch) {
        let container_id = launch.spec.container_id.value.clone();
        self.executor_containers.insert(
            container_id.clone(),
            (launch.spec.framework_id.clone(), launch.executor_id.clone()),
        );
        self.launching.insert(container_id.clone());
        let ctx = self.launch.clone();
        // isolation: limits from the executor's resources
        self.launch_prepared(container_id, launch.spec.command_uris(), move |isolation| {
            executor_request(&launch, &ctx).and_then(|mut request| {
                request.isolation = isolation.prepare_launch(&launch.spec)?;
                Ok(request)
            })
        });
    }

    /// A launcher event about an executor's container; `false` if the container is no executor's.
    pub(super) fn on_executor_launcher_event(&mut self, event: &LauncherEvent) -> bool {
        match event {
            LauncherEvent::Launched {
                container_id,
                pid,
                start_time,
            } => {
                let Some((framework_id, executor_id)) =
                    self.executor_containers.get(container_id).cloned()
                else {
                    return false;
                };
                self.launching.remove(container_id);
                tracing::info!(framework = %framework_id, executor = %executor_id, pid, "executor launched");
                self.isolation.launched(container_id, *pid); // isolation
                if let Some(grace) = self.stopping {
                    self.launcher.kill(container_id, libc::SIGTERM, Some(grace));
                }
                let (pid, start_time) = (*pid, *start_time);
                self.step(|core| {
                    core.executor_forked(
                        &framework_id,
                        &executor_id,
                        crate::core::Forked { pid, start_time },
                    );
                    core.executor_spawned(&framework_id, &executor_id, pid)
                });
                true
            }
            LauncherEvent::LaunchFailed {
                container_id,
                error,
            } => {
                let Some((framework_id, executor_id)) =
                    self.executor_containers.remove(container_id)
                else {
                    return false;
                };
                self.launching.remove(container_id);
                self.isolation.launch_failed(container_id); // isolation
                tracing::warn!(framework = %framework_id, executor = %executor_id, %error, "executor launch failed");
                self.executor_streams
                    .remove(&(framework_id.clone(), executor_id.clone()));
                self.step(|core| {
                    core.executor_spawn_failed(now(), &framework_id, &executor_id, error)
                });
                true
            }
            LauncherEvent::Exited {
                container_id,
                wait_status,
            } => {
                let Some((framework_id, executor_id)) =
                    self.executor_containers.remove(container_id)
                else {
                    return false;
                };
                self.launching.remove(container_id);
                self.isolation.launch_failed(container_id); // isolation: release the container
                let exit = decode_wait_status(*wait_status);
                let sandbox = self
                    .shared
                    .core()
                    .executor(&framework_id, &executor_id)
                    .map(|e| e.sandbox.clone());
                // The stream ends: the process behind it is gone.
                self.executor_streams
                    .remove(&(framework_id.clone(), executor_id.clone()));
                self.step(|core| core.executor_exited(now(), &framework_id, &executor_id, exit));
                if let Some(sandbox) = sandbox {
                    self.gc.process_ended(&sandbox); // gc
                }
                self.commits
                    .push(Vec::new(), [Action::AckExit(container_id.clone())]);
                true
            }
            LauncherEvent::Disconnected => false,
        }
    }

    /// A call from an executor.
    pub(super) fn on_api(&mut self, request: ApiRequest) {
        match request {
            ApiRequest::Subscribe {
                framework_id,
                executor_id,
                connection,
                subscribe,
                events,
                reply,
            } => {
                let key = (framework_id.clone(), executor_id.clone());
                // A newer subscription replaces (and so ends) an older stream.
                let previous = self
                    .executor_streams
                    .insert(key.clone(), (connection, events));
                let result = self.try_step(|core| {
                    core.executor_subscribe(
                        now(),
                        &framework_id,
                        &executor_id,
                        connection,
                        subscribe,
                    )
                });
                if result.is_err() {
                    match previous {
                        Some(previous) => {
                            self.executor_streams.insert(key, previous);
                        }
                        None => {
                            self.executor_streams.remove(&key);
                        }
                    }
                }
                let _ = reply.send(result);
            }
            ApiRequest::Unsubscribed {
                framework_id,
                executor_id,
                connection,
            } => {
                let key = (framework_id, executor_id);
                if self
                    .executor_streams
                    .get(&key)
                    .is_some_and(|(c, _)| *c == connection)
                {
                    self.executor_streams.remove(&key);
                }
                self.shared
                    .core()
                    .executor_unsubscribed(&key.0, &key.1, connection);
            }
            ApiRequest::Update {
                framework_id,
                executor_id,
                status,
                reply,
            } => {
                tracing::debug!(framework = %framework_id, executor = %executor_id, task = %status.task_id,
                    state = status.state.name(), "update from an executor");
                let result = self.try_step(|core| {
                    core.executor_update(now(), &framework_id, &executor_id, status)
                });
                let _ = reply.send(result);
            }
            ApiRequest::Message {
                framework_id,
                executor_id,
                data,
                reply,
            } => {
                let result = self
                    .shared
                    .core()
                    .executor_may_send(&framework_id, &executor_id);
                if result.is_ok() {
                    match &self.master {
                        Some((endpoint, agent_id)) => {
                            let call = AgentCall::ExecutorMessage {
                                protocol_version: PROTOCOL_VERSION,
                                framework_id,
                                executor_id,
                                data,
                            };
                            self.outbound.post(endpoint, agent_id, call);
                        }
                        None => tracing::info!(framework = %framework_id, executor = %executor_id,
                            "executor message while no master is known; dropped (best effort)"),
                    }
                }
                let _ = reply.send(result);
            }
        }
    }

    /// The longest shutdown grace period of the executors that run (for a stop that kills).
    pub(super) fn executor_grace_max(&self) -> Option<Duration> {
        let core = self.shared.core();
        let default = core.shutdown_grace();
        core.live_executors()
            .map(|e| {
                e.info.shutdown_grace_period.map_or(default, |d| {
                    Duration::from_nanos(d.nanoseconds.max(0) as u64)
                })
            })
            .max()
    }

    /// The containers of executors whose process runs, per the core.
    pub(super) fn running_executor_containers(&self) -> HashMap<String, (FrameworkId, ExecutorId)> {
        self.shared
            .core()
            .live_executors()
            .filter(|e| matches!(e.process, crate::core::Process::Running { .. }))
            .map(|e| {
                (
                    e.container_id.value.clone(),
                    (e.framework_id.clone(), e.info.executor_id.clone()),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{AgentId, ContainerId, TaskInfo};

    #[test]
    fn executor_requests_carry_the_executor_environment_under_the_command_one() {
        let base =
            std::env::temp_dir().join(format!("tepui-executor-launch-{}", uuid::Uuid::new_v4()));
        let task: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "e1", "task_id": {"value": "e1"}, "agent_id": {"value": "S1"},
            "command": {"value": "python3 exec.py", "environment": {"variables": [
                {"name": "MESOS_CHECKPOINT", "value": "from-the-command"}, {"name": "MODE", "value": "x"}]}}
        }))
        .unwrap();
        let launch = ExecutorLaunch {
            spec: LaunchSpec {
                framework_id: FrameworkId::new("F1"),
                agent_id: AgentId::new("S1"),
                task,
                container_id: ContainerId::new("c1"),
                sandbox: base.join("sandbox"),
                checkpoint_dir: base.join("meta"),
            },
            executor_id: ExecutorId::new("e1"),
            env: vec![
                ("MESOS_EXECUTOR_ID".into(), "e1".into()),
                ("MESOS_CHECKPOINT".into(), "1".into()),
            ],
        };
        let ctx = LaunchContext {
            agent_endpoint: "127.0.0.1:5051".into(),
            hostname: "h".into(),
            base_env: vec![],
        };
        let request = executor_request(&launch, &ctx).unwrap();
        let get = |k: &str| {
            request
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MESOS_EXECUTOR_ID"), Some("e1"));
        assert_eq!(get("MESOS_TASK_ID"), None);
        assert_eq!(get("MESOS_AGENT_ENDPOINT"), Some("127.0.0.1:5051"));
        assert_eq!(get("MESOS_SLAVE_PID"), Some("slave(1)@127.0.0.1:5051"));
        assert_eq!(get("MESOS_CHECKPOINT"), Some("from-the-command"));
        assert_eq!(get("MODE"), Some("x"));
        assert_eq!(request.argv, vec!["sh", "-c", "python3 exec.py"]);
        let _ = std::fs::remove_dir_all(base);
    }
}
