//! Rolling replacement, `RestartApplication` (spec §7 "Rolling replacement").
//!
//! With n = target instances and H = running+healthy instances (old and new):
//! `minHealthy = ceil(n × minimumHealthCapacity)`, `maxCapacity = floor(n × (1 + maximumOverCapacity))`;
//! if `minHealthy == maxCapacity ≤ H` at the start, one extra instance is allowed so progress is
//! possible. Old instances are killed while H stays at or above minHealthy (unhealthy first, they
//! do not lower H), old ones beyond n are killed as excess, and new ones are launched up to
//! `min(n − new, maxCapacity − active)`. Done when n new instances are ready and nothing else is
//! left.
//!
//! The rule is level-triggered: it looks only at the instances (old = another config version) and
//! the extra-capacity flag fixed when the step started, so a new leader that reloads the instances
//! and the stored deployment continues exactly where the old one stopped, never doubling.

use crate::index::AppIndex;
use crate::scale::{first_in_kill_order, sort_for_kill, Decisions};
use crate::types::{Instance, InstanceState, KillReason, RunSpec, UpgradeStrategy};

/// The bounds of a rolling replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RestartBounds {
    pub min_healthy: u32,
    pub max_capacity: u32,
}

fn unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// `minHealthy` and `maxCapacity` (plus one when `extra`), with Marathon's double arithmetic.
pub fn restart_bounds(n: u32, upgrade: &UpgradeStrategy, extra: bool) -> RestartBounds {
    let min_healthy = (n as f64 * unit(upgrade.minimum_health_capacity)).ceil() as u32;
    let max_capacity = (n as f64 * (1.0 + unit(upgrade.maximum_over_capacity))).floor() as u32;
    RestartBounds {
        min_healthy: min_healthy.min(n),
        max_capacity: max_capacity.saturating_add(extra as u32),
    }
}

/// Spec §7: "if `minHealthy == maxCapacity ≤ H`, allow one extra instance".
pub fn needs_extra_capacity(n: u32, upgrade: &UpgradeStrategy, healthy_now: usize) -> bool {
    let b = restart_bounds(n, upgrade, false);
    b.min_healthy == b.max_capacity && (b.max_capacity as usize) <= healthy_now
}

/// Vanishes at once when killed (never launched, or given up): frees capacity immediately.
fn vanishes_on_kill(i: &Instance) -> bool {
    matches!(i.state, InstanceState::Scheduled) || i.state.is_unreachable()
}

/// How many old instances a rolling replacement kills now, of those not ready and those ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OldKills {
    unready: usize,
    ready: usize,
}

/// The old instances are looked at unready first, then ready, each class in kill order. Unready
/// ones go while that keeps H ≥ minHealthy (it always does: they are not in H) or while more than
/// n old are left; ready ones while the budget H − minHealthy lasts, then as excess over n. Only
/// counts: the callers choose which (`restart_decisions`) or see that none is to go
/// (`restart_decisions_indexed`), so an event of a big app's restart never sorts its instances.
fn old_kills(n: usize, min_healthy: u32, healthy: usize, unready: usize, ready: usize) -> OldKills {
    let budget = healthy as i64 - i64::from(min_healthy);
    let old = unready + ready;
    let unready_killed = if budget >= 0 {
        unready
    } else {
        unready.min(old.saturating_sub(n))
    };
    let old_left = old - unready_killed;
    let by_budget = ready.min(budget.max(0) as usize);
    let as_excess = (ready - by_budget).min((old_left - by_budget).saturating_sub(n));
    OldKills {
        unready: unready_killed,
        ready: by_budget + as_excess,
    }
}

pub(crate) fn restart_decisions(spec: &RunSpec, extra: bool, instances: &[&Instance]) -> Decisions {
    let n = spec.instances as usize;
    let checks = spec.has_health_checks;
    let bounds = restart_bounds(spec.instances, &spec.upgrade, extra);
    let is_new = |i: &Instance| i.run_spec_version == spec.config_version;
    let mut d = Decisions::default();
    let mut freed = 0usize;
    let mut kill = |d: &mut Decisions, i: &Instance, reason: KillReason| {
        if vanishes_on_kill(i) && i.is_active() {
            freed += 1;
        }
        d.kills.push((i.id.clone(), reason));
    };

    // Doomed instances are unhealthy (killing them never lowers H); old inactive ones are given up.
    for i in instances
        .iter()
        .filter(|i| i.goal == crate::types::Goal::Running)
    {
        if i.doomed && !i.state.is_terminal() {
            kill(&mut d, i, KillReason::HealthCheckFailed);
        } else if !is_new(i) && matches!(i.state, InstanceState::UnreachableInactive { .. }) {
            kill(&mut d, i, KillReason::Upgrade);
        }
    }
    let live = |new: bool| -> Vec<&Instance> {
        instances
            .iter()
            .copied()
            .filter(|i| i.is_counted() && !i.doomed && is_new(i) == new)
            .collect()
    };
    let old = live(false);
    let mut new = live(true);

    let healthy = old
        .iter()
        .chain(new.iter())
        .filter(|i| i.is_ready(checks))
        .count() as i64;
    let (mut unready, mut ready): (Vec<&Instance>, Vec<&Instance>) =
        old.iter().partition(|i| !i.is_ready(checks));
    let kills = old_kills(
        n,
        bounds.min_healthy,
        healthy as usize,
        unready.len(),
        ready.len(),
    );
    let (unready_killed, ready_killed) = (kills.unready, kills.ready);
    for i in first_in_kill_order(&mut unready, unready_killed, spec.kill_selection) {
        kill(&mut d, i, KillReason::Upgrade);
    }
    for i in first_in_kill_order(&mut ready, ready_killed, spec.kill_selection) {
        kill(&mut d, i, KillReason::Upgrade);
    }

    if new.len() > n {
        sort_for_kill(&mut new, spec.kill_selection, Some(checks));
        let surplus = new.len() - n;
        for i in new.iter().take(surplus) {
            kill(&mut d, i, KillReason::ScaleDown);
        }
    }
    let new_count = new.len().min(n);
    let active = instances
        .iter()
        .filter(|i| i.is_active())
        .count()
        .saturating_sub(freed);
    let room = (bounds.max_capacity as usize).saturating_sub(active);
    let launch = (n - new_count).min(room);
    d.launches.resize(launch, None);
    d
}

/// [`restart_decisions`] from the app's counters alone, for the usual event of a rolling restart
/// (a new instance launched, staging or starting, an old one gone), where nothing is to be
/// killed. `None` when instances must be looked at: an old one to choose for a kill, a doomed or
/// unreachable one to give up, more new ones than n. So a big app's restart walks its instances
/// only on the events that kill.
pub(crate) fn restart_decisions_indexed(
    spec: &RunSpec,
    extra: bool,
    index: &AppIndex,
) -> Option<Decisions> {
    if index.doomed_live > 0 || !index.unreachable.is_empty() {
        return None;
    }
    let n = spec.instances as usize;
    let checks = spec.has_health_checks;
    let bounds = restart_bounds(spec.instances, &spec.upgrade, extra);
    let new = index
        .live_by_version
        .get(&spec.config_version)
        .copied()
        .unwrap_or_default();
    if new.live > n {
        return None;
    }
    let old_live = index.live - new.live;
    let healthy = index.live_ready(checks);
    let old_ready = healthy - new.ready(checks);
    let kills = old_kills(
        n,
        bounds.min_healthy,
        healthy,
        old_live - old_ready,
        old_ready,
    );
    if kills.unready + kills.ready > 0 {
        return None;
    }
    let room = (bounds.max_capacity as usize).saturating_sub(index.active);
    Some(Decisions {
        launches: vec![None; (n - new.live).min(room)],
        ..Decisions::default()
    })
}

/// Done when n new instances are ready and nothing else holds resources.
pub(crate) fn restart_complete(spec: &RunSpec, instances: &[&Instance]) -> bool {
    let mut new = 0usize;
    for i in instances {
        if i.state.is_terminal() {
            continue;
        }
        let counted_new = i.is_counted() && !i.doomed && i.run_spec_version == spec.config_version;
        if counted_new {
            if !i.is_ready(spec.has_health_checks) {
                return false;
            }
            new += 1;
        } else if !(matches!(i.state, InstanceState::UnreachableInactive { .. })
            && i.run_spec_version == spec.config_version)
        {
            return false;
        }
    }
    new == spec.instances as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_formulas() {
        let s = |m, o| UpgradeStrategy {
            minimum_health_capacity: m,
            maximum_over_capacity: o,
        };
        assert_eq!(
            restart_bounds(4, &s(1.0, 1.0), false),
            RestartBounds {
                min_healthy: 4,
                max_capacity: 8
            }
        );
        assert_eq!(
            restart_bounds(4, &s(0.5, 0.0), false),
            RestartBounds {
                min_healthy: 2,
                max_capacity: 4
            }
        );
        assert_eq!(
            restart_bounds(4, &s(0.0, 0.0), false),
            RestartBounds {
                min_healthy: 0,
                max_capacity: 4
            }
        );
        assert_eq!(
            restart_bounds(4, &s(1.0, 0.0), true),
            RestartBounds {
                min_healthy: 4,
                max_capacity: 5
            }
        );
        assert!(needs_extra_capacity(4, &s(1.0, 0.0), 4));
        assert!(!needs_extra_capacity(4, &s(1.0, 0.0), 3));
        assert!(!needs_extra_capacity(4, &s(1.0, 1.0), 4));
        assert_eq!(
            restart_bounds(3, &s(f64::NAN, 7.0), false),
            RestartBounds {
                min_healthy: 0,
                max_capacity: 6
            }
        );
    }

    /// The rule as first written: sort every old instance, then walk them (kept as the reference
    /// the counting version must agree with).
    fn old_kills_by_sorting(
        spec: &RunSpec,
        instances: &[&Instance],
    ) -> Vec<crate::types::InstanceId> {
        let n = spec.instances as usize;
        let checks = spec.has_health_checks;
        let bounds = restart_bounds(spec.instances, &spec.upgrade, false);
        let live = |new: bool| -> Vec<&Instance> {
            instances
                .iter()
                .copied()
                .filter(|i| {
                    i.is_counted()
                        && !i.doomed
                        && (i.run_spec_version == spec.config_version) == new
                })
                .collect()
        };
        let mut old = live(false);
        let healthy = old
            .iter()
            .chain(live(true).iter())
            .filter(|i| i.is_ready(checks))
            .count() as i64;
        let mut budget = healthy - bounds.min_healthy as i64;
        sort_for_kill(&mut old, spec.kill_selection, Some(checks));
        let mut old_left = old.len();
        let mut kills = Vec::new();
        for i in &old {
            let kill_it = if i.is_ready(checks) {
                if budget > 0 {
                    budget -= 1;
                    true
                } else {
                    old_left > n
                }
            } else {
                budget >= 0 || old_left > n
            };
            if kill_it {
                kills.push(i.id.clone());
                old_left -= 1;
            }
        }
        kills
    }

    /// A random spec of config version 10 (instances, checks, kill selection, bounds).
    fn random_spec(rng: &mut allocator::SplitMix64, instances_max: u64) -> RunSpec {
        use crate::types::KillSelection;
        let mut spec = RunSpec::new("/a", 10, 1 + rng.below(instances_max) as u32);
        spec.has_health_checks = rng.below(2) == 0;
        spec.kill_selection = if rng.below(2) == 0 {
            KillSelection::YoungestFirst
        } else {
            KillSelection::OldestFirst
        };
        spec.upgrade.minimum_health_capacity = rng.below(5) as f64 / 4.0;
        spec.upgrade.maximum_over_capacity = rng.below(5) as f64 / 4.0;
        spec
    }

    /// Up to `count_max` instances of `/a`, each new (version 10) one time in `new_one_in`, in
    /// one of `states`, with random health, goal (one in `stopped_one_in` stopped) and doom (one
    /// in `doomed_one_in`; 0 for none).
    fn random_instances(
        rng: &mut allocator::SplitMix64,
        count_max: u64,
        states: &[InstanceState],
        new_one_in: u64,
        stopped_one_in: u64,
        doomed_one_in: u64,
    ) -> Vec<Instance> {
        use crate::types::Goal;
        (0..rng.below(count_max))
            .map(|k| {
                let version = if rng.below(new_one_in) == 0 { 10 } else { 9 };
                let mut i = Instance::scheduled(
                    format!("a.instance-{k:03}"),
                    "/a".into(),
                    version,
                    rng.below(4),
                );
                i.state = states[rng.below(states.len() as u64) as usize];
                i.staged_at_ms = (rng.below(2) == 0).then(|| rng.below(4));
                i.healthy = [None, Some(true), Some(false)][rng.below(3) as usize];
                i.goal = if rng.below(stopped_one_in) == 0 {
                    Goal::Stopped
                } else {
                    Goal::Running
                };
                i.doomed = doomed_one_in > 0 && rng.below(doomed_one_in) == 0;
                i
            })
            .collect()
    }

    #[test]
    fn the_counters_decide_as_the_instances_do_whenever_they_decide() {
        let states = [
            InstanceState::Scheduled,
            InstanceState::Staging,
            InstanceState::Starting,
            InstanceState::Running,
            InstanceState::Running,
            InstanceState::Running,
            InstanceState::Killing,
            InstanceState::Terminal(crate::types::TerminalReason::Killed),
        ];
        let mut decided = 0;
        for seed in 1..=2000u64 {
            let mut rng = allocator::SplitMix64::new(seed);
            let spec = random_spec(&mut rng, 8);
            let extra = rng.below(4) == 0;
            let owned = random_instances(&mut rng, 16, &states, 2, 10, 20);
            let mut index = AppIndex::default();
            for i in &owned {
                index.account(i, false, true);
            }
            let instances: Vec<&Instance> = owned.iter().collect();
            if let Some(by_counters) = restart_decisions_indexed(&spec, extra, &index) {
                decided += 1;
                assert_eq!(
                    by_counters,
                    restart_decisions(&spec, extra, &instances),
                    "seed {seed}"
                );
            }
        }
        // Most random sets have a kill to choose; enough do not for the comparison to mean something.
        assert!(decided > 100, "the counters decided only {decided} times");
    }

    #[test]
    fn counting_kills_agrees_with_sorting_every_old_instance() {
        let states = [
            InstanceState::Scheduled,
            InstanceState::Staging,
            InstanceState::Starting,
            InstanceState::Running,
            InstanceState::Running,
            InstanceState::Killing,
            InstanceState::Unreachable { since_ms: 5 },
        ];
        for seed in 1..=300u64 {
            let mut rng = allocator::SplitMix64::new(seed);
            let spec = random_spec(&mut rng, 12);
            let owned = random_instances(&mut rng, 30, &states, 3, 8, 0);
            let instances: Vec<&Instance> = owned.iter().collect();
            let counted: Vec<crate::types::InstanceId> =
                restart_decisions(&spec, false, &instances)
                    .kills
                    .into_iter()
                    .filter(|(_, reason)| *reason == KillReason::Upgrade)
                    .map(|(id, _)| id)
                    .collect();
            assert_eq!(
                counted,
                old_kills_by_sorting(&spec, &instances),
                "seed {seed}"
            );
        }
    }
}
