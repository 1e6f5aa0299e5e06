//! Health-driven replacement (spec §2.1 `maxConsecutiveFailures`, §7; issue: "replace an unhealthy
//! task before killing it when capacity allows, and kills for health are rate-limited, so a checker
//! that is itself cut off never kills a whole app").
//!
//! The edge reports `HealthChanged { healthy: false, kill: true }` when an instance reached
//! `maxConsecutiveFailures`. The planner *dooms* at most [`health_kill_limit`] instances per app at
//! a time and within a sliding window; a doomed instance stops counting toward `instances`, so a
//! replacement is requested first (tagged `replaces`), and the doomed one is killed once that
//! replacement is ready, or at once when the app is at its maximum capacity. A checker that is cut
//! off marks everything unhealthy: replacements then never turn healthy either, so nothing beyond
//! the limit is ever killed.

use crate::scale::{counted, Decisions};
use crate::types::{Goal, Instance, InstanceId, KillReason, RunSpec};

/// Divisor for the per-app health-kill limit: at most 10% of instances (at least one).
pub const HEALTH_KILL_PERCENT_DIVISOR: u32 = 10;

/// How many health kills may be in flight (and started within the window) per app.
pub fn health_kill_limit(instances: u32) -> usize {
    (instances / HEALTH_KILL_PERCENT_DIVISOR).max(1) as usize
}

/// Instances to doom now, given `recent` dooms inside the window.
pub(crate) fn doom_decisions(
    spec: &RunSpec,
    instances: &[&Instance],
    recent: usize,
) -> Vec<InstanceId> {
    let limit = health_kill_limit(spec.instances);
    let in_flight = instances
        .iter()
        .filter(|i| !i.state.is_terminal())
        .filter(|i| {
            (i.goal == Goal::Running && i.doomed)
                || (i.goal == Goal::Stopped
                    && i.kill
                        .is_some_and(|k| k.reason == KillReason::HealthCheckFailed))
        })
        .count();
    let allowance = limit.saturating_sub(in_flight.max(recent));
    let mut candidates: Vec<&Instance> = instances
        .iter()
        .copied()
        .filter(|i| {
            i.is_counted() && !i.doomed && i.health_kill_requested && i.healthy == Some(false)
        })
        .collect();
    candidates.sort_by_key(|i| (i.age_key(), i.id.clone()));
    candidates
        .into_iter()
        .take(allowance)
        .map(|i| i.id.clone())
        .collect()
}

/// Replace-before-kill for doomed instances, outside rolling restarts.
pub(crate) fn replace_decisions(
    spec: &RunSpec,
    max_capacity: u32,
    instances: &[&Instance],
) -> Decisions {
    let mut d = Decisions::default();
    let mut live = counted(instances).len();
    let mut active = instances.iter().filter(|i| i.is_active()).count();
    for doomed in instances
        .iter()
        .filter(|i| i.doomed && i.goal == Goal::Running && !i.state.is_terminal())
    {
        let replacement = instances.iter().find(|r| {
            r.replaces.as_deref() == Some(doomed.id.as_str()) && r.is_counted() && !r.doomed
        });
        match replacement {
            Some(r) => {
                if r.is_ready(spec.has_health_checks) {
                    d.kills
                        .push((doomed.id.clone(), KillReason::HealthCheckFailed));
                }
            }
            None if live < spec.instances as usize && active < max_capacity as usize => {
                d.launches.push(Some(doomed.id.clone()));
                live += 1;
                active += 1;
            }
            None => d
                .kills
                .push((doomed.id.clone(), KillReason::HealthCheckFailed)),
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::InstanceState;

    #[test]
    fn limit_is_ten_percent_at_least_one() {
        assert_eq!(health_kill_limit(0), 1);
        assert_eq!(health_kill_limit(9), 1);
        assert_eq!(health_kill_limit(25), 2);
    }

    #[test]
    fn dooms_only_up_to_the_limit() {
        let spec = RunSpec {
            has_health_checks: true,
            ..RunSpec::new("/a", 1, 20)
        };
        let all: Vec<Instance> = (0..20)
            .map(|n| {
                let mut i = Instance::scheduled(format!("i{n:02}"), "/a".into(), 1, 0);
                i.state = InstanceState::Running;
                i.healthy = Some(false);
                i.health_kill_requested = true;
                i
            })
            .collect();
        let refs: Vec<&Instance> = all.iter().collect();
        assert_eq!(doom_decisions(&spec, &refs, 0).len(), 2);
        assert_eq!(doom_decisions(&spec, &refs, 1).len(), 1);
        assert_eq!(doom_decisions(&spec, &refs, 2).len(), 0);
    }
}
