//! Spec §7 "Rolling replacement": the four n=4 examples, the bounds at every event, recovery
//! mid-restart, and cancelling a stuck restart with rollback.

mod common;
use common::*;
use marathon_planner::*;

fn app(m: f64, o: f64, version: u64) -> RunSpec {
    RunSpec {
        upgrade: UpgradeStrategy {
            minimum_health_capacity: m,
            maximum_over_capacity: o,
        },
        has_health_checks: true,
        ..spec("/a", version, 4)
    }
}

/// Four healthy instances of version 1.
fn running(m: f64, o: f64) -> Harness {
    let mut h = Harness::new(PlannerConfig::default());
    h.deploy(&[app(m, o, 1)], false).expect("deploy");
    h.settle(Some(true));
    assert_eq!(h.ready_count("/a", true), 4);
    assert_eq!(h.planner.deployments().count(), 0);
    h
}

/// Checks the restart bounds after an event whose commands are `cmds`.
fn check_bounds(h: &Harness, cmds: &[Command], healthy_before: usize) {
    let Some(b) = h.planner.restart_bounds("/a") else {
        return;
    };
    if Harness::launches(cmds) > 0
        || cmds
            .iter()
            .any(|c| matches!(c, Command::StoreInstance(i) if i.state == InstanceState::Scheduled))
    {
        assert!(
            h.active_count("/a") <= b.max_capacity as usize,
            "over capacity: {} > {}",
            h.active_count("/a"),
            b.max_capacity
        );
    }
    let healthy_after = h.ready_count("/a", true);
    if Harness::kills(cmds) > 0 && healthy_after < healthy_before {
        assert!(
            healthy_after >= b.min_healthy as usize,
            "below minHealthy: {healthy_after} < {}",
            b.min_healthy
        );
    }
}

/// Drives the restart one instance at a time, checking the bounds at every event.
fn drive(h: &mut Harness) {
    for _ in 0..100 {
        if h.planner.deployments().count() == 0 {
            return;
        }
        let before = h.ready_count("/a", true);
        if let Some(id) = h.to_launch.iter().next().cloned() {
            let cmds = h.accept(&id);
            check_bounds(h, &cmds, before);
            let cmds = h.status(&id, TaskState::Running, Some(true));
            check_bounds(h, &cmds, before);
        } else if let Some(id) = h
            .tasks
            .iter()
            .find(|(i, s)| **s == TaskState::Staging && !h.to_kill.contains(*i))
            .map(|(i, _)| i.clone())
        {
            let cmds = h.status(&id, TaskState::Running, Some(true));
            check_bounds(h, &cmds, before);
        } else if let Some(id) = h.to_kill.iter().next().cloned() {
            let cmds = h.status(&id, TaskState::Killed, None);
            check_bounds(h, &cmds, before);
        } else {
            let cmds = h.tick(1000);
            check_bounds(h, &cmds, before);
        }
    }
    panic!("restart did not finish");
}

fn restart(h: &mut Harness, m: f64, o: f64) -> Vec<Command> {
    let (_, cmds) = h.deploy(&[app(m, o, 2)], false).expect("deploy");
    cmds
}

fn finish(h: &mut Harness) {
    drive(h);
    let new: Vec<_> = h
        .live("/a")
        .into_iter()
        .filter(|i| i.run_spec_version == 2 && i.is_ready(true))
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(new.len(), 4);
    assert_eq!(h.planner.instances_of("/a").len(), 4);
}

#[test]
fn defaults_start_four_new_beside_four_old() {
    let mut h = running(1.0, 1.0);
    let cmds = restart(&mut h, 1.0, 1.0);
    assert_eq!((Harness::kills(&cmds), Harness::launches(&cmds)), (0, 4));
    // Old ones die one by one as new ones turn healthy.
    let new: Vec<String> = h.to_launch.iter().cloned().collect();
    for id in &new {
        h.accept(id);
    }
    for id in &new {
        let cmds = h.status(id, TaskState::Running, Some(true));
        assert_eq!(Harness::kills(&cmds), 1);
    }
    h.finish_kills();
    assert!(h.planner.deployments().count() == 0);
    finish(&mut h);
}

#[test]
fn half_capacity_no_overcapacity_swaps_pairwise() {
    let mut h = running(0.5, 0.0);
    let cmds = restart(&mut h, 0.5, 0.0);
    assert_eq!((Harness::kills(&cmds), Harness::launches(&cmds)), (2, 0));
    let killed: Vec<String> = h.to_kill.iter().cloned().collect();
    let mut launched = 0;
    for id in killed {
        launched += Harness::launches(&h.status(&id, TaskState::Killed, None));
    }
    assert_eq!(launched, 2);
    h.accept_all();
    let new: Vec<String> = h
        .tasks
        .iter()
        .filter(|(_, s)| **s == TaskState::Staging)
        .map(|(i, _)| i.clone())
        .collect();
    let mut kills = 0;
    for id in new {
        kills += Harness::kills(&h.status(&id, TaskState::Running, Some(true)));
    }
    assert_eq!(
        kills, 2,
        "second pair of old instances goes once the first new pair is healthy"
    );
    finish(&mut h);
}

#[test]
fn zero_capacity_kills_all_then_starts_four() {
    let mut h = running(0.0, 0.0);
    let cmds = restart(&mut h, 0.0, 0.0);
    assert_eq!((Harness::kills(&cmds), Harness::launches(&cmds)), (4, 0));
    let killed: Vec<String> = h.to_kill.iter().cloned().collect();
    let mut launched = 0;
    for id in killed {
        launched += Harness::launches(&h.status(&id, TaskState::Killed, None));
    }
    assert_eq!(launched, 4);
    finish(&mut h);
}

#[test]
fn full_health_no_overcapacity_replaces_one_at_a_time() {
    let mut h = running(1.0, 0.0);
    let cmds = restart(&mut h, 1.0, 0.0);
    assert_eq!((Harness::kills(&cmds), Harness::launches(&cmds)), (0, 1));
    assert_eq!(
        h.planner.restart_bounds("/a"),
        Some(RestartBounds {
            min_healthy: 4,
            max_capacity: 5
        })
    );
    for _ in 0..4 {
        assert_eq!(h.to_launch.len(), 1);
        let id = h.to_launch.iter().next().cloned().expect("launch");
        h.accept(&id);
        let cmds = h.status(&id, TaskState::Running, Some(true));
        assert_eq!(Harness::kills(&cmds), 1);
        assert_eq!(h.active_count("/a"), 5);
        let old = h.to_kill.iter().next().cloned().expect("kill");
        h.status(&old, TaskState::Killed, None);
    }
    assert_eq!(h.planner.deployments().count(), 0);
    finish(&mut h);
}

#[test]
fn recovery_mid_restart_does_not_double() {
    for (m, o) in [(1.0, 1.0), (0.5, 0.0), (1.0, 0.0), (0.0, 0.0), (0.75, 0.25)] {
        let mut h = running(m, o);
        restart(&mut h, m, o);
        // Half-way: accept one launch, kill nothing yet.
        if let Some(id) = h.to_launch.iter().next().cloned() {
            h.accept(&id);
        }
        let active = h.active_count("/a");
        let cmds = h.recover();
        assert!(h.active_count("/a") <= active, "recovery added instances");
        let b = h.planner.restart_bounds("/a").expect("still restarting");
        assert!(h.active_count("/a") <= b.max_capacity as usize);
        // Reconciliation: Mesos re-reports what runs.
        let _ = cmds;
        for (id, s) in h.tasks.clone() {
            h.status(
                &id,
                s,
                if s == TaskState::Running {
                    Some(true)
                } else {
                    None
                },
            );
        }
        finish(&mut h);
    }
}

#[test]
fn stuck_restart_is_cancelled_with_rollback_within_bounds() {
    let mut h = running(1.0, 0.0);
    let (plan, _) = h.deploy(&[app(1.0, 0.0, 2)], false).expect("deploy");
    // The new instance runs but never turns healthy.
    h.accept_all();
    h.run_all(Some(false));
    for _ in 0..10 {
        h.tick(1000);
        assert!(h.active_count("/a") <= 5);
        assert_eq!(h.ready_count("/a", true), 4);
    }
    // A second change for the app is refused while the stuck one runs.
    assert!(matches!(
        h.deploy(&[app(1.0, 0.0, 3)], false),
        Err(DeploymentError::Locked { .. })
    ));
    let cancelled = h
        .planner
        .cancel_deployment(h.now, &plan.id, true)
        .expect("cancel");
    h.apply(&cancelled.commands);
    let rollback = cancelled.rollback.expect("rollback plan");
    assert_eq!(rollback.target["/a"].config_version, 1);
    assert!(h.planner.deployment(&plan.id).is_none());
    // The rollback kills the unhealthy new instance without touching healthy old ones.
    for _ in 0..20 {
        let before = h.ready_count("/a", true);
        h.accept_all();
        h.run_all(Some(true));
        h.finish_kills();
        let cmds = h.tick(100);
        check_bounds(&h, &cmds, before);
        assert!(h.ready_count("/a", true) >= 4);
    }
    assert!(h.succeeded(&rollback.id));
    let live = h.live("/a");
    assert_eq!(live.len(), 4);
    assert!(live.iter().all(|i| i.run_spec_version == 1));
}

#[test]
fn forced_deployment_supersedes_a_stuck_one() {
    let mut h = running(1.0, 0.0);
    let (stuck, _) = h.deploy(&[app(1.0, 0.0, 2)], false).expect("deploy");
    h.accept_all();
    h.run_all(Some(false));
    let (fresh, cmds) = h.deploy(&[app(1.0, 0.0, 3)], true).expect("forced");
    assert!(cmds.iter().any(|c| matches!(c, Command::DeploymentFailed { id, reason: FailReason::Superseded { .. } } if *id == stuck.id)));
    assert!(h.planner.restart_bounds("/a").is_some());
    drive(&mut h);
    assert!(h.succeeded(&fresh.id));
    assert!(h
        .live("/a")
        .iter()
        .all(|i| i.run_spec_version == 3 && i.is_ready(true)));
    assert_eq!(h.live("/a").len(), 4);
}
