//! (health checks) Carrying out `Effect::CheckHealth`: each check runs on a task of its own
//! (`health_checker`) and its result comes back as a driver event for `Core::health_result`.
//! The event loop also wakes when the core says the next check is due
//! (`Core::next_health_check_due`).

use super::{now, Driver, DriverEvent};
use crate::core::{HealthProbe, LaunchSpec};
use crate::health_checker::Probe;
use crate::launcher;
use std::net::IpAddr;
use std::time::Instant;

impl Driver {
    pub(super) fn run_health_check(&mut self, probe: HealthProbe) {
        if self.stopping.is_some() {
            return;
        }
        let ip: IpAddr = self
            .shared
            .info
            .advertise_ip
            .parse()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let target = {
            let core = self.shared.core();
            let Some(task) = core.task(&probe.framework_id, &probe.task_id) else {
                return;
            };
            if task.container_id != probe.container_id {
                return;
            }
            let spec = LaunchSpec {
                framework_id: probe.framework_id.clone(),
                agent_id: core.agent_id().cloned().unwrap_or_default(),
                task: task.info.clone(),
                container_id: task.container_id.clone(),
                sandbox: task.sandbox.clone(),
                checkpoint_dir: task.checkpoint_dir.clone(),
            };
            // The task's environment as its process got it: the agent's, then the task's.
            let mut env: Vec<(String, String)> = self
                .launch
                .base_env
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            env.extend(launcher::environment(&spec, &self.launch));
            Probe::new(&probe.check, ip, spec.sandbox, env)
        };
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let healthy = match target {
                Ok(target) => target.run(probe.timeout).await,
                Err(e) => Err(e),
            };
            if let Err(why) = &healthy {
                tracing::debug!(framework = %probe.framework_id, task = %probe.task_id, %why, "health check failed");
            }
            let _ = events.send(DriverEvent::HealthChecked {
                probe: Box::new(probe),
                healthy: healthy.is_ok(),
            });
        });
    }

    pub(super) fn health_checked(&mut self, probe: HealthProbe, healthy: bool) {
        self.step(|core| {
            core.health_result(
                now(),
                &probe.framework_id,
                &probe.task_id,
                probe.seq,
                healthy,
            )
        });
    }
}

/// Resolves when the next health check is due (never when none is).
pub(super) async fn health_due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
