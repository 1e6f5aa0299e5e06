//! Scaling and instance keeping (spec §7 "Scale", "Kill via API", "Other timers":
//! `--scale_apps_interval`).
//!
//! The same rule keeps an app at `instances` outside deployments and runs `ScaleApplication`
//! inside one: count the instances whose goal is running (not unreachable-inactive, not doomed by
//! a health kill); kill the surplus in order (explicitly named, then scheduled < unreachable <
//! staging < starting < running, ties by `killSelection`); request launches for a shortfall. A
//! scale step is done when exactly `n` counted instances are running (and healthy when the app has
//! health checks) and every killed instance is terminal.

use crate::index::AppIndex;
use crate::types::{Instance, InstanceId, InstanceState, KillReason, KillSelection};
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
pub(crate) fn sort_for_kill(
    instances: &mut [&Instance],
    selection: KillSelection,
    unready_first: Option<bool>,
) {
    // Compared in place rather than by a cloned key: this runs on every event of a big app.
    let ready = |i: &Instance| unready_first.is_some_and(|checks| i.is_ready(checks));
    instances.sort_by(|a, b| {
        ready(a)
            .cmp(&ready(b))
            .then_with(|| kill_order(selection, a, b))
    });
}

/// The first `count` of `instances` in kill order (by state, then `killSelection`, then id),
/// sorted; the rest of the slice is left in no particular order. A selection, not a full sort,
/// so that choosing one instance of thousands to replace costs a pass over them.
pub(crate) fn first_in_kill_order<'a>(
    instances: &mut [&'a Instance],
    count: usize,
    selection: KillSelection,
) -> Vec<&'a Instance> {
    let count = count.min(instances.len());
    if count == 0 {
        return Vec::new();
    }
    if count < instances.len() {
        instances.select_nth_unstable_by(count - 1, |a, b| kill_order(selection, a, b));
    }
    let mut first = instances[..count].to_vec();
    first.sort_by(|a, b| kill_order(selection, a, b));
    first
}

/// Kill order within one readiness class: state rank, then age by `selection`, then id.
fn kill_order(selection: KillSelection, a: &Instance, b: &Instance) -> std::cmp::Ordering {
    let age = |i: &Instance| match selection {
        KillSelection::YoungestFirst => Reverse(i.age_key()),
        KillSelection::OldestFirst => Reverse(u64::MAX - i.age_key()),
    };
    state_rank(a.state)
        .cmp(&state_rank(b.state))
        .then_with(|| age(a).cmp(&age(b)))
        .then_with(|| a.id.cmp(&b.id))
}

/// Counted instances: goal running, not given up, not doomed (spec §7 "Scale").
pub(crate) fn counted<'a>(instances: &[&'a Instance]) -> Vec<&'a Instance> {
    instances
        .iter()
        .copied()
        .filter(|i| i.is_counted() && !i.doomed)
        .collect()
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
            decisions
                .kills
                .push((inst.id.clone(), KillReason::ScaleDown));
        } else {
            live.push(inst);
        }
    }
    let target = target as usize;
    if live.len() > target {
        let surplus = live.len() - target;
        sort_for_kill(&mut live, selection, None);
        decisions.kills.extend(
            live.iter()
                .take(surplus)
                .map(|i| (i.id.clone(), KillReason::ScaleDown)),
        );
    } else {
        decisions.launches.resize(target - live.len(), None);
    }
    decisions
}

/// [`scale_decisions`] from the app's index when nothing has to be chosen: `named_live` are the
/// named instances still counted (killed first, in id order), and the others are at most
/// `target`, so the shortfall is launched. `None` when there is a surplus to pick by kill order.
pub(crate) fn scale_decisions_indexed(
    target: u32,
    named_live: Vec<InstanceId>,
    index: &AppIndex,
) -> Option<Decisions> {
    let others = index.live.checked_sub(named_live.len())?;
    let shortfall = (target as usize).checked_sub(others)?;
    let kills = named_live
        .into_iter()
        .map(|id| (id, KillReason::ScaleDown))
        .collect();
    Some(Decisions {
        kills,
        launches: vec![None; shortfall],
        doom: Vec::new(),
    })
}

/// Spec §7: done when `n` counted instances are running (and healthy with checks), none of them
/// named for a kill (`named_live`), and every killed one is terminal (none doomed and waiting).
pub(crate) fn scale_complete(
    target: u32,
    has_health_checks: bool,
    named_live: bool,
    index: &AppIndex,
) -> bool {
    index.live == target as usize
        && index.live_ready(has_health_checks) == index.live
        && !named_live
        && index.blocking == 0
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

    fn index(instances: &[&Instance]) -> AppIndex {
        let mut index = AppIndex::default();
        for i in instances {
            index.account(i, false, true);
        }
        index
    }

    #[test]
    fn completion_needs_health_and_terminal_kills() {
        let mut a = inst("a", InstanceState::Running, Some(10));
        assert!(scale_complete(1, false, false, &index(&[&a])));
        assert!(!scale_complete(1, false, true, &index(&[&a])));
        assert!(!scale_complete(1, true, false, &index(&[&a])));
        a.healthy = Some(true);
        assert!(scale_complete(1, true, false, &index(&[&a])));
        let mut k = inst("k", InstanceState::Running, Some(1));
        k.goal = crate::types::Goal::Stopped;
        assert!(!scale_complete(1, true, false, &index(&[&a, &k])));
    }

    #[test]
    fn indexed_decisions_agree_with_the_scan_unless_a_surplus_must_be_chosen() {
        let a = inst("a", InstanceState::Running, Some(10));
        let b = inst("b", InstanceState::Staging, Some(20));
        let all = [&a, &b];
        for target in 0..4u32 {
            for named in [vec![], vec!["a".to_string()]] {
                let scanned = scale_decisions(target, KillSelection::YoungestFirst, &named, &all);
                match scale_decisions_indexed(target, named.clone(), &index(&all)) {
                    Some(indexed) => {
                        assert_eq!(indexed, scanned, "target {target}, named {named:?}")
                    }
                    None => assert!(all.len() - named.len() > target as usize),
                }
            }
        }
    }
}
