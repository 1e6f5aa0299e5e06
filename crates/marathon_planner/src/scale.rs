//! Scaling and instance keeping (spec §7 "Scale", "Kill via API", "Other timers":
//! `--scale_apps_interval`).
//!
//! The same rule keeps an app at `instances` outside deployments and runs `ScaleApplication`
//! inside one: count the instances whose goal is running (not unreachable-inactive, not doomed by
//! a health kill); kill the surplus in order (explicitly named, then scheduled < unreachable <
//! staging < starting < running, ties by `killSelection`); request launches for a shortfall. A
//! scale step is done when exactly `n` counted instances are running (and healthy when the app has
//! health checks) and every killed instance is terminal.

use crate::types::{Goal, Instance, InstanceId, InstanceState, KillReason, KillSelection};
use std::cmp::Reverse;
use std::collections::BTreeSet;

/// What one rule decided for one app; the planner applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decisions {
    pub kills: Vec<(InstanceId, KillReason)>,
    /// Each entry requests one new instance, optionally replacing an unhealthy one.
    pub launches: Vec<Option<InstanceId>>,
    /// Instances to mark for health replacement.
    pub doom: Vec<InstanceId>,
}

/// Spec §7: unreachable < staging < starting < running; requests that never launched go first.
fn state_rank(state: InstanceState) -> u8 {
    match state {
        InstanceState::Scheduled => 0,
        InstanceState::Unreachable { .. } | InstanceState::UnreachableInactive { .. } => 1,
        InstanceState::Staging => 2,
        InstanceState::Starting => 3,
        InstanceState::Running => 4,
        InstanceState::Killing => 5,
        InstanceState::Terminal(_) => 6,
    }
}

/// Sorts `instances` so the first ones are killed first. With `unready_first`, instances that are
/// not running+healthy go before all ready ones (rolling replacement kills unhealthy first).
pub(crate) fn sort_for_kill(instances: &mut [&Instance], selection: KillSelection, unready_first: Option<bool>) {
    instances.sort_by_key(|i| {
        let ready = unready_first.map(|checks| i.is_ready(checks)).unwrap_or(false);
        let age = match selection {
            KillSelection::YoungestFirst => Reverse(i.age_key()),
            KillSelection::OldestFirst => Reverse(u64::MAX - i.age_key()),
        };
        (ready, state_rank(i.state), age, i.id.clone())
    });
}

/// Counted instances: goal running, not given up, not doomed (spec §7 "Scale").
pub(crate) fn counted<'a>(instances: &[&'a Instance]) -> Vec<&'a Instance> {
    instances.iter().copied().filter(|i| i.is_counted() && !i.doomed).collect()
}

/// Keep (or scale) the app at `target` instances, killing `named` ones first.
pub(crate) fn scale_decisions(
    target: u32,
    selection: KillSelection,
    named: &[InstanceId],
    instances: &[&Instance],
) -> Decisions {
    let mut decisions = Decisions::default();
    let named: BTreeSet<&InstanceId> = named.iter().collect();
    let mut live = Vec::new();
    for inst in counted(instances) {
        if named.contains(&inst.id) {
            decisions.kills.push((inst.id.clone(), KillReason::ScaleDown));
        } else {
            live.push(inst);
        }
    }
    let target = target as usize;
    if live.len() > target {
        let surplus = live.len() - target;
        sort_for_kill(&mut live, selection, None);
        decisions.kills.extend(live.iter().take(surplus).map(|i| (i.id.clone(), KillReason::ScaleDown)));
    } else {
        decisions.launches.resize(target - live.len(), None);
    }
    decisions
}

/// Spec §7: done when `n` counted instances are running (and healthy with checks) and every
/// killed one is terminal (none doomed and waiting).
pub(crate) fn scale_complete(target: u32, has_health_checks: bool, named: &[InstanceId], instances: &[&Instance]) -> bool {
    let live = counted(instances);
    live.len() == target as usize
        && live.iter().all(|i| i.is_ready(has_health_checks) && !named.contains(&i.id))
        && instances.iter().all(|i| !i.doomed && (i.goal == Goal::Running || i.state.is_terminal()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, state: InstanceState, staged: Option<u64>) -> Instance {
        let mut i = Instance::scheduled(id.into(), "/a".into(), 1, 0);
        i.state = state;
        i.staged_at_ms = staged;
        i
    }

    #[test]
    fn kill_order_states_then_selection() {
        let a = inst("a", InstanceState::Running, Some(10));
        let b = inst("b", InstanceState::Running, Some(20));
        let c = inst("c", InstanceState::Staging, Some(5));
        let d = inst("d", InstanceState::Unreachable { since_ms: 1 }, Some(1));
        let e = inst("e", InstanceState::Starting, Some(3));
        let all = [&a, &b, &c, &d, &e];
        let young = scale_decisions(1, KillSelection::YoungestFirst, &[], &all);
        let ids: Vec<_> = young.kills.iter().map(|k| k.0.as_str()).collect();
        assert_eq!(ids, vec!["d", "c", "e", "b"]);
        let old = scale_decisions(1, KillSelection::OldestFirst, &[], &all);
        let ids: Vec<_> = old.kills.iter().map(|k| k.0.as_str()).collect();
        assert_eq!(ids, vec!["d", "c", "e", "a"]);
    }

    #[test]
    fn named_first_then_shortfall_launches() {
        let a = inst("a", InstanceState::Running, Some(10));
        let b = inst("b", InstanceState::Running, Some(20));
        let d = scale_decisions(1, KillSelection::YoungestFirst, &["a".into()], &[&a, &b]);
        assert_eq!(d.kills, vec![("a".into(), KillReason::ScaleDown)]);
        let d = scale_decisions(4, KillSelection::YoungestFirst, &[], &[&a, &b]);
        assert_eq!(d.launches.len(), 2);
    }

    #[test]
    fn completion_needs_health_and_terminal_kills() {
        let mut a = inst("a", InstanceState::Running, Some(10));
        assert!(scale_complete(1, false, &[], &[&a]));
        assert!(!scale_complete(1, true, &[], &[&a]));
        a.healthy = Some(true);
        let mut k = inst("k", InstanceState::Running, Some(1));
        k.goal = Goal::Stopped;
        assert!(!scale_complete(1, true, &[], &[&a, &k]));
    }
}
