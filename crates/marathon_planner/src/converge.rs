//! Convergence: one pass of every app's rule, and applying the decisions as commands.
//!
//! Order per app: unreachable timers (spec §7), launch timeouts (`--task_launch_timeout`), health
//! dooming (rate-limited, `health.rs`), then the mode's rule: keep/scale (`scale.rs`, with
//! replace-before-kill from `health.rs`), restart (`restart.rs`), stop/orphan (kill everything).
//! Finally requested instances whose launch delay has passed are handed to the edge (`Launch`).
//! Every state change is preceded by its persistence intent (`StoreInstance`/`Expunge`).

use crate::planner::{Mode, Planner};
use crate::restart::restart_bounds;
use crate::scale::Decisions;
use crate::types::{
    AppId, Command, Goal, Instance, InstanceId, InstanceState, KillInfo, KillReason, RunSpec,
    Unreachable,
};
use crate::unreachable::{unreachable_step, UnreachableStep};
use std::collections::BTreeSet;

impl Planner {
    /// Converges every app, advancing deployments until nothing changes (bounded).
    pub(crate) fn converge_all(&mut self, now_ms: u64, cmds: &mut Vec<Command>) {
        for _ in 0..CONVERGE_ROUNDS {
            let mut app_ids: BTreeSet<AppId> = self.apps.keys().cloned().collect();
            app_ids.extend(self.by_app.keys().cloned());
            app_ids.extend(self.stopping.iter().cloned());
            for deployment in self.deployments.values() {
                app_ids.extend(deployment.affected_apps());
            }
            for app_id in &app_ids {
                self.converge_app(app_id, now_ms, cmds);
            }
            if !self.advance_deployments(cmds) {
                break;
            }
        }
    }

    fn converge_app(&mut self, app_id: &str, now_ms: u64, cmds: &mut Vec<Command>) {
        let mode = self.mode(app_id);
        if let Some(spec) = mode.spec() {
            self.unreachable_timers(app_id, spec, now_ms, cmds);
        }
        self.launch_timeouts(app_id, now_ms, cmds);
        match &mode {
            Mode::Keep(spec) | Mode::Scale { spec, .. } => {
                self.doom_unhealthy(app_id, spec, now_ms, cmds);
                if self.index_of(app_id).doomed_live > 0 {
                    let cap = restart_bounds(spec.instances, &spec.upgrade, false).max_capacity;
                    let d =
                        crate::health::replace_decisions(spec, cap, &self.app_instances(app_id));
                    self.apply(app_id, spec, d, now_ms, cmds);
                }
                let named: &[InstanceId] = match &mode {
                    Mode::Scale { named, .. } => named,
                    _ => &[],
                };
                // Counters decide unless a surplus must be chosen by kill order (a full scan).
                let named_live: BTreeSet<InstanceId> = named
                    .iter()
                    .filter(|id| {
                        self.instances
                            .get(*id)
                            .is_some_and(|i| i.app_id == app_id && i.is_counted() && !i.doomed)
                    })
                    .cloned()
                    .collect();
                let d = match crate::scale::scale_decisions_indexed(
                    spec.instances,
                    named_live.into_iter().collect(),
                    self.index_of(app_id),
                ) {
                    Some(d) => d,
                    None => crate::scale::scale_decisions(
                        spec.instances,
                        spec.kill_selection,
                        named,
                        &self.app_instances(app_id),
                    ),
                };
                self.apply(app_id, spec, d, now_ms, cmds);
            }
            Mode::Restart { spec, extra } => {
                self.doom_unhealthy(app_id, spec, now_ms, cmds);
                let d = match crate::restart::restart_decisions_indexed(
                    spec,
                    *extra,
                    self.index_of(app_id),
                ) {
                    Some(d) => d,
                    None => {
                        crate::restart::restart_decisions(spec, *extra, &self.app_instances(app_id))
                    }
                };
                self.apply(app_id, spec, d, now_ms, cmds);
            }
            Mode::Stop | Mode::Orphan if self.index_of(app_id).goal_running > 0 => {
                let reason = if mode == Mode::Stop {
                    KillReason::AppStopped
                } else {
                    KillReason::Orphaned
                };
                let ids: Vec<InstanceId> = self
                    .app_instances(app_id)
                    .iter()
                    .filter(|i| i.goal == Goal::Running)
                    .map(|i| i.id.clone())
                    .collect();
                for id in ids {
                    self.kill_instance(&id, reason, now_ms, cmds);
                }
            }
            Mode::Stop | Mode::Orphan => {}
        }
        if let Some(spec) = mode.spec() {
            self.request_launches(app_id, spec, now_ms, cmds);
        }
        if self.stopping.contains(app_id)
            && !self.by_app.contains_key(app_id)
            && !self.apps.contains_key(app_id)
        {
            self.stopping.remove(app_id);
            self.delays.remove(app_id);
            self.offers.remove(app_id);
            self.health_dooms.remove(app_id);
            cmds.push(Command::AppTerminated {
                app_id: app_id.to_string(),
            });
        }
    }

    fn unreachable_timers(
        &mut self,
        app_id: &str,
        spec: &RunSpec,
        now_ms: u64,
        cmds: &mut Vec<Command>,
    ) {
        let Unreachable::Enabled {
            inactive_after_seconds,
            ..
        } = spec.unreachable
        else {
            return;
        };
        // Nothing is due before `inactiveAfterSeconds` (expunging comes no sooner), and the index
        // orders unreachable instances by when they became so: only that head is read.
        let mut due: Vec<(InstanceId, UnreachableStep)> = self
            .index_of(app_id)
            .unreachable
            .iter()
            .take_while(|(since_ms, _)| {
                now_ms >= since_ms.saturating_add(inactive_after_seconds.saturating_mul(1000))
            })
            .filter_map(|(_, id)| self.instances.get(id))
            .filter_map(|i| {
                unreachable_step(i, &spec.unreachable, now_ms).map(|s| (i.id.clone(), s))
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, step) in due {
            match step {
                UnreachableStep::Expunge => self.forget(&id, cmds),
                UnreachableStep::Inactive { since_ms } => {
                    let stored = self.update_instance(&id, |inst| {
                        inst.state = InstanceState::UnreachableInactive { since_ms };
                        inst.clone()
                    });
                    cmds.extend(stored.map(Command::StoreInstance));
                }
            }
        }
    }

    fn launch_timeouts(&mut self, app_id: &str, now_ms: u64, cmds: &mut Vec<Command>) {
        let timeout = self.config.task_launch_timeout_ms;
        // The index orders launching instances by staging time: only the overdue head is read.
        let mut late: Vec<InstanceId> = self
            .index_of(app_id)
            .launching
            .iter()
            .take_while(|(staged_at, _)| now_ms >= staged_at.saturating_add(timeout))
            .map(|(_, id)| id.clone())
            .collect();
        late.sort();
        for id in late {
            self.kill_instance(&id, KillReason::LaunchTimeout, now_ms, cmds);
        }
    }

    fn doom_unhealthy(
        &mut self,
        app_id: &str,
        spec: &RunSpec,
        now_ms: u64,
        cmds: &mut Vec<Command>,
    ) {
        if !spec.has_health_checks {
            if self.index_of(app_id).health_marked == 0 {
                return;
            }
            // No checks (any more): health verdicts are void, nothing is doomed.
            let stale: Vec<InstanceId> = self
                .app_instances(app_id)
                .iter()
                .filter(|i| i.doomed || i.health_kill_requested)
                .map(|i| i.id.clone())
                .collect();
            for id in stale {
                let stored = self.update_instance(&id, |inst| {
                    inst.doomed = false;
                    inst.health_kill_requested = false;
                    inst.clone()
                });
                cmds.extend(stored.map(Command::StoreInstance));
            }
            return;
        }
        let window = self.config.health_kill_window_ms;
        let recent = {
            let times = self.health_dooms.entry(app_id.to_string()).or_default();
            times.retain(|t| now_ms < t.saturating_add(window));
            times.len()
        };
        if self.index_of(app_id).doom_candidates == 0 {
            return;
        }
        let doom = crate::health::doom_decisions(spec, &self.app_instances(app_id), recent);
        for id in doom {
            if let Some(inst) = self.update_instance(&id, |inst| {
                inst.doomed = true;
                inst.clone()
            }) {
                cmds.push(Command::StoreInstance(inst));
                self.health_dooms
                    .entry(app_id.to_string())
                    .or_default()
                    .push(now_ms);
            }
        }
    }

    fn apply(
        &mut self,
        app_id: &str,
        spec: &RunSpec,
        decisions: Decisions,
        now_ms: u64,
        cmds: &mut Vec<Command>,
    ) {
        for (id, reason) in decisions.kills {
            self.kill_instance(&id, reason, now_ms, cmds);
        }
        for replaces in decisions.launches {
            let id = format!("{}.instance-{}", safe_id(app_id), self.ids.next_id());
            if self.instances.contains_key(&id) {
                continue; // a broken id source must not overwrite an instance
            }
            let mut inst = Instance::scheduled(id, app_id.to_string(), spec.config_version, now_ms);
            inst.replaces = replaces;
            cmds.push(Command::StoreInstance(inst.clone()));
            self.insert_instance(inst);
        }
    }

    /// Decides a kill: never-launched and unreachable instances vanish at once (Expunge), others
    /// get goal `Stopped` (stored) and a `Kill`.
    pub(crate) fn kill_instance(
        &mut self,
        id: &str,
        reason: KillReason,
        now_ms: u64,
        cmds: &mut Vec<Command>,
    ) {
        let Some(inst) = self.instances.get(id) else {
            return;
        };
        match inst.state {
            InstanceState::Terminal(_) => {}
            InstanceState::Scheduled => self.forget(id, cmds),
            InstanceState::Unreachable { .. } | InstanceState::UnreachableInactive { .. } => {
                self.forget(id, cmds);
                cmds.push(Command::Kill {
                    instance_id: id.to_string(),
                    reason,
                });
            }
            _ if inst.goal == Goal::Stopped => {}
            _ => {
                let stored = self.update_instance(id, |inst| {
                    inst.goal = Goal::Stopped;
                    inst.kill = Some(KillInfo {
                        reason,
                        sent_at_ms: now_ms,
                    });
                    inst.clone()
                });
                cmds.extend(stored.map(Command::StoreInstance));
                cmds.push(Command::Kill {
                    instance_id: id.to_string(),
                    reason,
                });
            }
        }
    }

    fn request_launches(
        &mut self,
        app_id: &str,
        spec: &RunSpec,
        now_ms: u64,
        cmds: &mut Vec<Command>,
    ) {
        if self
            .delays
            .get(app_id)
            .is_some_and(|d| d.blocks(spec.config_version, now_ms))
        {
            return;
        }
        let ready: Vec<(InstanceId, u64)> = self
            .index_of(app_id)
            .unrequested
            .iter()
            .filter_map(|id| self.instances.get(id))
            .map(|i| (i.id.clone(), i.run_spec_version))
            .collect();
        for (instance_id, run_spec_version) in ready {
            self.set_requested(&instance_id, true);
            cmds.push(Command::Launch {
                app_id: app_id.to_string(),
                instance_id,
                run_spec_version,
            });
        }
    }
}

const CONVERGE_ROUNDS: usize = crate::planner::CONVERGE_ROUNDS_MAX;

/// Spec §5: app id without the leading `/`, `/` → `_`.
pub fn safe_id(app_id: &str) -> String {
    app_id.trim_start_matches('/').replace('/', "_")
}
