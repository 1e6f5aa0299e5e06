//! Per-app counters and sets derived from the instances, kept current on every change, so the
//! rules that run after each event (`converge.rs`) cost O(changes), not O(instances of the app).
//!
//! Why: converging after every status update by scanning all of an app's instances made a mass
//! launch quadratic (10,000 instances of one app ran at ~21 tasks/s). Each figure here is a sum
//! over the app's instances of a function of one instance (and whether `Launch` was emitted for
//! it), so an instance's contribution is taken out before it changes and put back after
//! ([`AppIndex::account`]); `Planner::index_agrees_with_recount` rebuilds everything from scratch
//! for tests. Every mutation of a stored instance goes through `Planner::insert_instance`,
//! `Planner::update_instance`, `Planner::set_requested` or `Planner::forget`.

use crate::planner::Planner;
use crate::types::{AppId, Goal, Instance, InstanceId, InstanceState};
use std::collections::{BTreeMap, BTreeSet};

/// What the rules need to know about one app's instances without looking at each of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppIndex {
    pub total: usize,
    /// `is_active()`: holds resources or may still.
    pub active: usize,
    /// Goal running and not terminal: what stopping an app still has to kill.
    pub goal_running: usize,
    /// Counted toward `instances`: `is_counted() && !doomed` (spec §7 "Scale").
    pub live: usize,
    /// Live and `TASK_RUNNING` (ready without health checks).
    pub live_running: usize,
    /// Live, running and healthy (ready with health checks).
    pub live_running_healthy: usize,
    /// Keeps a scale step from completing: doomed, or stopped and not yet terminal.
    pub blocking: usize,
    /// Carries a health verdict (`doomed` or `health_kill_requested`).
    pub health_marked: usize,
    /// Doomed, goal running, not terminal: waits for its replacement (`health.rs`).
    pub doomed_live: usize,
    /// Could be doomed now: counted, not doomed, kill requested by the checker, unhealthy.
    pub doom_candidates: usize,
    /// Scheduled with goal running and no `Launch` emitted yet, by id.
    pub unrequested: BTreeSet<InstanceId>,
    /// Scheduled with goal running, by (requested at, id): `/v2/queue` count and `since`.
    pub waiting: BTreeSet<(u64, InstanceId)>,
    /// Goal running, staging or starting, by (staged at, id): launch timeouts.
    pub launching: BTreeSet<(u64, InstanceId)>,
    /// Unreachable (active or inactive), by (unreachable since, id): unreachable timers.
    pub unreachable: BTreeSet<(u64, InstanceId)>,
    /// Goal stopped with a kill sent, not terminal, by id: kill retries.
    pub killing: BTreeSet<InstanceId>,
    /// The live counters by the config version instances run (a rolling restart tells old from
    /// new by it); versions with nothing live are left out.
    pub live_by_version: BTreeMap<u64, LiveCounts>,
}

/// `live`, `live_running` and `live_running_healthy` of one config version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LiveCounts {
    pub live: usize,
    pub running: usize,
    pub running_healthy: usize,
}

impl LiveCounts {
    /// Ready: running, and healthy when the app has health checks.
    pub(crate) fn ready(&self, has_health_checks: bool) -> usize {
        if has_health_checks {
            self.running_healthy
        } else {
            self.running
        }
    }
}

impl AppIndex {
    /// Adds (`add`) or removes the contribution of `inst` (`requested`: `Launch` was emitted).
    pub(crate) fn account(&mut self, inst: &Instance, requested: bool, add: bool) {
        let count = |n: &mut usize, holds: bool| {
            if holds {
                if add {
                    *n += 1
                } else {
                    *n -= 1
                }
            }
        };
        let terminal = inst.state.is_terminal();
        let live = inst.is_counted() && !inst.doomed;
        let running = inst.state == InstanceState::Running;
        count(&mut self.total, true);
        count(&mut self.active, inst.is_active());
        count(
            &mut self.goal_running,
            inst.goal == Goal::Running && !terminal,
        );
        count(&mut self.live, live);
        count(&mut self.live_running, live && running);
        count(
            &mut self.live_running_healthy,
            live && running && inst.healthy == Some(true),
        );
        if live {
            let version = self
                .live_by_version
                .entry(inst.run_spec_version)
                .or_default();
            count(&mut version.live, true);
            count(&mut version.running, running);
            count(
                &mut version.running_healthy,
                running && inst.healthy == Some(true),
            );
            if version.live == 0 {
                self.live_by_version.remove(&inst.run_spec_version);
            }
        }
        count(
            &mut self.blocking,
            inst.doomed || (inst.goal != Goal::Running && !terminal),
        );
        count(
            &mut self.health_marked,
            inst.doomed || inst.health_kill_requested,
        );
        count(
            &mut self.doomed_live,
            inst.doomed && inst.goal == Goal::Running && !terminal,
        );
        count(
            &mut self.doom_candidates,
            inst.is_counted()
                && !inst.doomed
                && inst.health_kill_requested
                && inst.healthy == Some(false),
        );
        let waiting = inst.state == InstanceState::Scheduled && inst.goal == Goal::Running;
        toggle(
            &mut self.unrequested,
            waiting && !requested,
            inst.id.clone(),
            add,
        );
        toggle(
            &mut self.waiting,
            waiting,
            (inst.created_at_ms, inst.id.clone()),
            add,
        );
        let launching = inst.goal == Goal::Running
            && matches!(inst.state, InstanceState::Staging | InstanceState::Starting);
        if let (true, Some(staged)) = (launching, inst.staged_at_ms) {
            toggle(&mut self.launching, true, (staged, inst.id.clone()), add);
        }
        if let InstanceState::Unreachable { since_ms }
        | InstanceState::UnreachableInactive { since_ms } = inst.state
        {
            toggle(
                &mut self.unreachable,
                true,
                (since_ms, inst.id.clone()),
                add,
            );
        }
        toggle(
            &mut self.killing,
            inst.goal == Goal::Stopped && inst.kill.is_some() && !terminal,
            inst.id.clone(),
            add,
        );
    }

    /// Live instances that are ready (running, and healthy when the app has health checks).
    pub(crate) fn live_ready(&self, has_health_checks: bool) -> usize {
        if has_health_checks {
            self.live_running_healthy
        } else {
            self.live_running
        }
    }
}

fn toggle<K: Ord>(set: &mut BTreeSet<K>, holds: bool, key: K, add: bool) {
    if holds {
        if add {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }
}

impl Planner {
    /// The index of `app_id` (empty when it has no instances).
    pub(crate) fn index_of(&self, app_id: &str) -> &AppIndex {
        static EMPTY: std::sync::OnceLock<AppIndex> = std::sync::OnceLock::new();
        self.index
            .get(app_id)
            .unwrap_or_else(|| EMPTY.get_or_init(AppIndex::default))
    }

    /// Changes one stored instance through `change`, keeping the index current; `None` when the
    /// instance is unknown. `change` must not alter the instance's id or app.
    pub(crate) fn update_instance<R>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Instance) -> R,
    ) -> Option<R> {
        let inst = self.instances.get_mut(id)?;
        let requested = self.requested.contains(id);
        let index = self.index.entry(inst.app_id.clone()).or_default();
        index.account(inst, requested, false);
        let result = change(inst);
        index.account(inst, requested, true);
        Some(result)
    }

    /// Marks whether `Launch` was emitted for `id` (the `requested` set), keeping the index current.
    pub(crate) fn set_requested(&mut self, id: &str, requested: bool) {
        if self.requested.contains(id) == requested {
            return;
        }
        let Some(inst) = self.instances.get(id) else {
            if !requested {
                self.requested.remove(id);
            }
            return;
        };
        let index = self.index.entry(inst.app_id.clone()).or_default();
        index.account(inst, !requested, false);
        index.account(inst, requested, true);
        if requested {
            self.requested.insert(id.to_string());
        } else {
            self.requested.remove(id);
        }
    }

    pub(crate) fn index_insert(&mut self, inst: &Instance) {
        let requested = self.requested.contains(&inst.id);
        self.index
            .entry(inst.app_id.clone())
            .or_default()
            .account(inst, requested, true);
    }

    pub(crate) fn index_remove(&mut self, inst: &Instance) {
        let requested = self.requested.contains(&inst.id);
        if let Some(index) = self.index.get_mut(&inst.app_id) {
            index.account(inst, requested, false);
            if index.total == 0 {
                self.index.remove(&inst.app_id);
            }
        }
    }

    /// Test support: true when the incremental index equals one rebuilt from every instance.
    #[doc(hidden)]
    pub fn index_agrees_with_recount(&self) -> bool {
        let mut recount: BTreeMap<AppId, AppIndex> = BTreeMap::new();
        for inst in self.instances.values() {
            recount.entry(inst.app_id.clone()).or_default().account(
                inst,
                self.requested.contains(&inst.id),
                true,
            );
        }
        recount == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DeploymentPlan, PlanOptions};
    use crate::types::RootGroup;
    use crate::types::{Command, Event, RunSpec, TaskState};

    /// The allocator's seeded generator (a dev-dependency), so the test is reproducible.
    struct Rng(allocator::SplitMix64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0.below(n.max(1))
        }
    }

    const STATES: [TaskState; 8] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Unreachable,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Finished,
    ];

    #[test]
    fn the_index_agrees_with_a_full_recount_after_random_events() {
        for seed in 1..=40u64 {
            let mut rng = Rng(allocator::SplitMix64::new(seed));
            let mut next = 0u64;
            let ids = Box::new(move || {
                next += 1;
                format!("00000000-0000-0000-0000-{next:012}")
            });
            let mut planner = Planner::new(crate::types::PlannerConfig::default(), ids);
            let mut now = 1_000u64;
            let mut launched = 0usize;
            for step in 0..300 {
                now += rng.below(20_000);
                let live: Vec<InstanceId> = planner.instances.keys().cloned().collect();
                let pick = |rng: &mut Rng| live.get(rng.below(live.len() as u64) as usize).cloned();
                let cmds = match rng.below(7) {
                    0 => {
                        let app = ["/a", "/b"][rng.below(2) as usize];
                        let mut spec = RunSpec::new(app, now, rng.below(8) as u32);
                        spec.has_health_checks = rng.below(2) == 0;
                        let mut target: RootGroup = planner.apps.clone();
                        target.insert(app.to_string(), spec);
                        let plan = DeploymentPlan::build(
                            format!("d{step}"),
                            now,
                            &planner.apps,
                            &target,
                            &PlanOptions::default(),
                        );
                        plan.ok()
                            .and_then(|p| planner.start_deployment(now, p, true).ok())
                            .unwrap_or_default()
                    }
                    1 | 2 => match pick(&mut rng) {
                        Some(id) => {
                            let agent = Some("agent".to_string());
                            if rng.below(2) == 0 {
                                planner.handle(
                                    now,
                                    Event::LaunchAccepted {
                                        instance_id: id,
                                        agent: "agent".into(),
                                    },
                                )
                            } else {
                                let state = STATES[rng.below(STATES.len() as u64) as usize];
                                let healthy =
                                    [None, Some(true), Some(false)][rng.below(3) as usize];
                                planner.handle(
                                    now,
                                    Event::StatusUpdate {
                                        instance_id: id,
                                        state,
                                        healthy,
                                        agent,
                                    },
                                )
                            }
                        }
                        None => Vec::new(),
                    },
                    3 => match pick(&mut rng) {
                        Some(id) => {
                            let healthy = [Some(true), Some(false)][rng.below(2) as usize];
                            planner.handle(
                                now,
                                Event::HealthChanged {
                                    instance_id: id,
                                    healthy,
                                    kill: rng.below(2) == 0,
                                },
                            )
                        }
                        None => Vec::new(),
                    },
                    4 => match pick(&mut rng) {
                        Some(id) => planner.handle(
                            now,
                            Event::KillRequested {
                                instance_ids: vec![id],
                                wipe: rng.below(2) == 0,
                            },
                        ),
                        None => Vec::new(),
                    },
                    5 => planner.handle(now, Event::Tick),
                    _ => {
                        let killed: Vec<InstanceId> =
                            live.iter().filter(|_| rng.below(4) == 0).cloned().collect();
                        match planner.plan_kill_and_scale(now, &killed) {
                            Ok(plan) => planner
                                .start_deployment(now, plan, true)
                                .unwrap_or_default(),
                            Err(_) => Vec::new(),
                        }
                    }
                };
                launched += cmds
                    .iter()
                    .filter(|c| matches!(c, Command::Launch { .. }))
                    .count();
                assert!(
                    planner.index_agrees_with_recount(),
                    "seed {seed}, step {step}: the index drifted"
                );
            }
            assert!(
                launched > 0,
                "seed {seed}: the events never launched anything"
            );
        }
    }
}
