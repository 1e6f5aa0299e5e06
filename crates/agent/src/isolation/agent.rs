//! The agent's use of its isolator: the few calls the driver and recovery make (each call site in
//! `driver.rs` is marked `// isolation:`).
//!
//! Launch: `prepare_launch` (blocking, next to the sandbox work) creates the container's cgroups
//! with their limits and returns the `LaunchRequest.isolation` value; the launcher daemon's
//! `JoinCgroups` hook (`daemon.rs`) puts the child into them before exec. `launched` tells the
//! isolator the leader's pid (the posix memory check needs it).
//! Exit: `exit_effects` asks the isolator whether the container hit a limit (before anything is
//! cleaned up, so the kernel's OOM counter is still there) and turns the exit into the core's
//! `limited` (TASK_FAILED, `REASON_CONTAINER_LIMITATION_MEMORY`) or its usual `exited`; the
//! container's cgroups are then removed on the blocking pool.
//! Restart: `recovered` re-attaches the containers recovery found running, and removes the
//! groups of containers nobody claims.

use super::{from_flags, statistics, IsolationConfig, Isolator, Limits};
use crate::core::{Core, Effect, Exit, LaunchSpec, Now};
use crate::shared::Shared;
use proto::{FrameworkId, TaskId};
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct AgentIsolation {
    isolator: Arc<dyn Isolator>,
}

impl AgentIsolation {
    /// Builds the isolator `--isolation` asks for and says at start what runs: a fallback (cgroups
    /// asked for but unusable) is logged as a WARN naming the reason, never silently.
    pub fn start(config: &IsolationConfig) -> AgentIsolation {
        let chosen = from_flags(config);
        if let Some(warning) = &chosen.warning {
            tracing::warn!("{warning}");
        }
        tracing::info!(isolation = %chosen.isolator.name(), "task isolation");
        AgentIsolation {
            isolator: chosen.isolator,
        }
    }

    /// Blocking (cgroup directories and files): run it on the blocking pool with the sandbox
    /// work. Returns the value for `LaunchRequest.isolation`; an error fails the launch.
    pub fn prepare_launch(&self, spec: &LaunchSpec) -> Result<serde_json::Value, String> {
        let limits = Limits::from_task(&spec.task);
        let prepared = self
            .isolator
            .prepare(&spec.container_id.value, &limits)
            .map_err(|e| format!("cannot isolate the container: {e}"))?;
        Ok(prepared.spawn_isolation().to_value())
    }

    /// The launcher started the container's leader.
    pub fn launched(&self, container_id: &str, pid: u32) {
        if let Err(e) = self.isolator.isolate(container_id, pid) {
            tracing::warn!(container = container_id, pid, error = %e, "the isolator cannot watch the container");
        }
    }

    /// Recovery found the container's exit recorded: re-adopt its groups (they still hold the OOM
    /// counter) so that `exit_effects` can tell a limitation; a container without groups is fine.
    pub fn recover_exited(&self, container_id: &str, limits: &Limits) {
        if let Err(e) = self.isolator.recover(container_id, limits, None) {
            tracing::debug!(container = container_id, error = %e, "no isolation state for an exited container");
        }
    }

    /// Recovery's exit reporter (`recovery::ExitReporter`): the limitation if the container was
    /// stopped at one, else the plain exit.
    pub fn report_recovered_exit(
        &self,
        core: &mut Core,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        container_id: &str,
        exit: Exit,
    ) -> Vec<Effect> {
        if let Some(task) = core.task(framework_id, task_id) {
            self.recover_exited(container_id, &Limits::from_task(&task.info));
        }
        self.exit_effects(core, now, framework_id, task_id, container_id, exit)
    }

    /// The launch failed: release what `prepare_launch` set up.
    pub fn launch_failed(&self, container_id: &str) {
        self.cleanup_later(container_id);
    }

    /// The container's leader exited: the terminal update's effects (a memory limitation makes it
    /// TASK_FAILED with `REASON_CONTAINER_LIMITATION_MEMORY`), then the container is cleaned up.
    #[allow(clippy::too_many_arguments)]
    pub fn exit_effects(
        &self,
        core: &mut Core,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        container_id: &str,
        exit: Exit,
    ) -> Vec<Effect> {
        // One small file read at most (the OOM counter); it must come before the cleanup.
        let limitation = self.isolator.limitation(container_id);
        self.cleanup_later(container_id);
        match limitation {
            Some(limitation) => {
                tracing::warn!(framework = %framework_id, task = %task_id, container = container_id,
                    message = %limitation.message, "task stopped at its limit");
                core.limited(
                    now,
                    framework_id,
                    task_id,
                    limitation.reason,
                    &limitation.message,
                )
            }
            None => core.exited(now, framework_id, task_id, exit),
        }
    }

    /// After recovery (blocking): re-attach the containers that still run (or whose exit is still
    /// to be reported: their cgroups hold the OOM counter), and remove the groups of any other.
    pub fn recovered(&self, containers: &[(String, Limits, Option<u32>)]) {
        for (container_id, limits, pid) in containers {
            if let Err(e) = self.isolator.recover(container_id, limits, *pid) {
                tracing::warn!(container = %container_id, error = %e, "cannot re-attach the container's isolation");
            }
        }
        for leftover in self.isolator.leftover_containers() {
            tracing::info!(container = %leftover, "removing the cgroups of a container no task claims");
            if let Err(e) = self.isolator.cleanup(&leftover) {
                tracing::warn!(container = %leftover, error = %e, "cannot remove a leftover container's cgroups");
            }
        }
    }

    /// After settling with a new launcher daemon: containers not in `running` are gone; remove
    /// their groups (on the blocking pool).
    pub fn retain(&self, running: std::collections::HashSet<String>) {
        for container_id in self.isolator.containers() {
            if !running.contains(&container_id) {
                self.cleanup_later(&container_id);
            }
        }
    }

    /// `/monitor/statistics`: merge into the agent's router.
    pub fn router(&self, shared: Arc<Shared>) -> axum::Router {
        statistics::router(shared, self.isolator.clone())
    }

    fn cleanup_later(&self, container_id: &str) {
        let isolator = self.isolator.clone();
        let container_id = container_id.to_string();
        // Kills stragglers and retries rmdir for a bounded time: never on the event loop.
        tokio::task::spawn_blocking(move || {
            if let Err(e) = isolator.cleanup(&container_id) {
                tracing::warn!(container = %container_id, error = %e, "container cleanup incomplete");
            }
        });
    }
}
