//! Keeping apps running and deployment bookkeeping (spec §7 "Scale", "Stop", "Kill via API",
//! "Backoff / launch queue", "Other timers", "Locking & force"; §8.2 reconciliation).

mod common;
use common::*;
use marathon_planner::*;

fn up(app: RunSpec) -> Harness {
    let mut h = Harness::new(PlannerConfig::default());
    let checks = app.has_health_checks;
    let n = app.instances as usize;
    let id = app.id.clone();
    h.deploy(&[app], false).expect("deploy");
    h.settle(if checks { Some(true) } else { None });
    assert_eq!(h.ready_count(&id, checks), n);
    h
}

#[test]
fn new_app_deploys_through_start_and_scale() {
    let mut h = Harness::new(PlannerConfig::default());
    let (plan, cmds) = h.deploy(&[spec("/a", 1, 2)], false).expect("deploy");
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::DeploymentStepSucceeded { step: 1, .. })));
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::DeploymentStepStarted { step: 2, .. })));
    assert_eq!(Harness::launches(&cmds), 2);
    // The deployment is stored before its launches.
    let store_at = cmds
        .iter()
        .position(|c| matches!(c, Command::StoreDeployment(_)))
        .expect("stored");
    let launch_at = cmds
        .iter()
        .position(|c| matches!(c, Command::Launch { .. }))
        .expect("launch");
    assert!(store_at < launch_at);
    assert_eq!(
        h.planner.deployment(&plan.id).map(|d| d.current_step),
        Some(1)
    );
    h.settle(None);
    assert!(h.succeeded(&plan.id));
}

#[test]
fn scale_down_honours_kill_selection() {
    for (selection, expect_oldest_kept) in [
        (KillSelection::YoungestFirst, true),
        (KillSelection::OldestFirst, false),
    ] {
        let mut h = Harness::new(PlannerConfig::default());
        h.deploy(
            &[RunSpec {
                kill_selection: selection,
                ..spec("/a", 1, 1)
            }],
            false,
        )
        .expect("deploy");
        h.settle(None);
        let first = h.live("/a")[0].id.clone();
        h.now += 10_000;
        h.deploy(
            &[RunSpec {
                kill_selection: selection,
                version: 2,
                ..spec("/a", 1, 3)
            }],
            false,
        )
        .expect("scale up");
        h.settle(None);
        assert_eq!(h.live("/a").len(), 3);
        h.deploy(
            &[RunSpec {
                kill_selection: selection,
                version: 3,
                ..spec("/a", 1, 1)
            }],
            false,
        )
        .expect("scale down");
        h.settle(None);
        let live = h.live("/a");
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id == first, expect_oldest_kept);
    }
}

#[test]
fn kill_and_scale_kills_named_instances() {
    let mut h = up(spec("/a", 1, 3));
    let victim = h.live("/a")[1].id.clone();
    let plan = h
        .planner
        .plan_kill_and_scale(h.now, std::slice::from_ref(&victim))
        .expect("plan");
    assert_eq!(plan.target["/a"].instances, 2);
    let cmds = h.start(plan, false).expect("start");
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Kill { instance_id, .. } if *instance_id == victim)));
    h.settle(None);
    assert_eq!(h.live("/a").len(), 2);
    assert!(h.planner.instance(&victim).is_none());
    assert!(h
        .planner
        .plan_kill_and_scale(h.now, &["nope".into()])
        .is_err());
}

#[test]
fn api_kill_is_replaced_without_backoff() {
    let mut h = up(spec("/a", 1, 2));
    let victim = h.live("/a")[0].id.clone();
    let cmds = h.event(Event::KillRequested {
        instance_ids: vec![victim.clone()],
        wipe: false,
    });
    assert_eq!(Harness::launches(&cmds), 1, "replacement requested at once");
    let cmds = h.status(&victim, TaskState::Killed, None);
    assert_eq!(Harness::launches(&cmds), 0);
    assert!(h.planner.queue(h.now).iter().all(|q| q.delay.overdue));
}

#[test]
fn failures_back_off_and_reset() {
    let backoff = Backoff {
        seconds: 1.0,
        factor: 2.0,
        max_launch_delay_seconds: 10.0,
    };
    let mut h = up(RunSpec {
        backoff,
        ..spec("/a", 1, 1)
    });
    let mut delays = vec![];
    for _ in 0..5 {
        let id = h.live("/a")[0].id.clone();
        let cmds = h.status(&id, TaskState::Failed, None);
        assert_eq!(
            Harness::launches(&cmds),
            0,
            "replacement waits for the delay"
        );
        let q = h.planner.queue(h.now);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].count, 1);
        assert!(!q[0].delay.overdue);
        delays.push(q[0].delay.time_left_seconds);
        let left = (q[0].delay.time_left_seconds * 1000.0) as u64;
        assert_eq!(Harness::launches(&h.tick(left - 1)), 0);
        assert_eq!(Harness::launches(&h.tick(1)), 1);
        h.settle(None);
    }
    assert_eq!(delays, vec![1.0, 2.0, 4.0, 8.0, 10.0]);
    // DELETE /v2/queue/{id}/delay: the next launch goes at once.
    let id = h.live("/a")[0].id.clone();
    h.status(&id, TaskState::Finished, None);
    let cmds = h.event(Event::ResetDelay {
        app_id: "/a".into(),
    });
    assert_eq!(Harness::launches(&cmds), 1);
    // A new config version starts without delay.
    h.settle(None);
    let id = h.live("/a")[0].id.clone();
    h.status(&id, TaskState::Error, None);
    let (_, cmds) = h
        .deploy(
            &[RunSpec {
                backoff,
                config_version: 2,
                version: 2,
                ..spec("/a", 1, 1)
            }],
            false,
        )
        .expect("deploy");
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Launch {
            run_spec_version: 2,
            ..
        }
    )));
}

#[test]
fn queue_reports_offer_stats() {
    let mut h = Harness::new(PlannerConfig::default());
    h.deploy(&[spec("/a", 1, 2)], false).expect("deploy");
    h.event(Event::OfferProcessed {
        app_id: "/a".into(),
        used: false,
        reject_reasons: vec!["InsufficientMemory".into()],
    });
    let q = h.planner.queue(h.now);
    assert_eq!(q[0].count, 2);
    assert_eq!(q[0].offers.unused_offers, 1);
    assert_eq!(q[0].offers.reject_reasons["InsufficientMemory"], 1);
    let v = json::queue_entry_json(&q[0], serde_json::json!({"id":"/a"}), &|ms| {
        format!("t{ms}")
    });
    assert_eq!(v["delay"]["overdue"], true);
    assert_eq!(v["processedOffersSummary"]["unusedOffersCount"], 1);
}

#[test]
fn unreachable_goes_inactive_is_replaced_and_surplus_killed_on_return() {
    let strategy = Unreachable::Enabled {
        inactive_after_seconds: 60,
        expunge_after_seconds: 600,
    };
    let mut h = up(RunSpec {
        unreachable: strategy,
        ..spec("/a", 1, 2)
    });
    let lost = h.live("/a")[0].id.clone();
    let cmds = h.status(&lost, TaskState::Unreachable, None);
    assert_eq!(
        Harness::launches(&cmds),
        0,
        "not replaced before inactiveAfterSeconds"
    );
    assert_eq!(Harness::launches(&h.tick(59_000)), 0);
    assert_eq!(Harness::launches(&h.tick(1_000)), 1);
    h.settle(None);
    assert_eq!(h.ready_count("/a", false), 2);
    // It comes back before expunge: one too many, the youngest goes.
    let cmds = h.status(&lost, TaskState::Running, None);
    assert_eq!(Harness::kills(&cmds), 1);
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, Command::Kill { instance_id, .. } if *instance_id == lost)));
    h.settle(None);
    assert_eq!(h.live("/a").len(), 2);
    // Another one is expunged after expungeAfterSeconds.
    let gone = h.live("/a")[1].id.clone();
    h.status(&gone, TaskState::Lost, None);
    h.tick(600_000);
    assert!(h.planner.instance(&gone).is_none());
    h.settle(None);
    assert_eq!(h.ready_count("/a", false), 2);
}

#[test]
fn unreachable_disabled_is_never_replaced() {
    let mut h = up(RunSpec {
        unreachable: Unreachable::Disabled,
        ..spec("/a", 1, 1)
    });
    let id = h.live("/a")[0].id.clone();
    h.status(&id, TaskState::Unreachable, None);
    assert_eq!(Harness::launches(&h.tick(10_000_000)), 0);
    assert!(h.planner.instance(&id).is_some());
}

#[test]
fn launch_timeout_kills_and_replaces() {
    let config = PlannerConfig {
        task_launch_timeout_ms: 5_000,
        ..PlannerConfig::default()
    };
    let mut h = Harness::new(config);
    h.deploy(&[spec("/a", 1, 1)], false).expect("deploy");
    h.accept_all();
    let id = h.tasks.keys().next().cloned().expect("staged");
    assert!(h.tick(4_999).is_empty());
    let cmds = h.tick(1);
    assert!(cmds.iter().any(|c| matches!(c, Command::Kill { instance_id, reason: KillReason::LaunchTimeout } if *instance_id == id)));
    assert_eq!(Harness::launches(&cmds), 1, "replaced");
}

#[test]
fn unhealthy_is_replaced_before_it_is_killed() {
    let mut h = up(RunSpec {
        has_health_checks: true,
        ..spec("/a", 1, 3)
    });
    let sick = h.live("/a")[0].id.clone();
    let cmds = h.event(Event::HealthChanged {
        instance_id: sick.clone(),
        healthy: Some(false),
        kill: true,
    });
    assert_eq!((Harness::kills(&cmds), Harness::launches(&cmds)), (0, 1));
    h.accept_all();
    let new = h
        .tasks
        .iter()
        .find(|(_, s)| **s == TaskState::Staging)
        .map(|(i, _)| i.clone())
        .expect("new");
    assert_eq!(
        Harness::kills(&h.status(&new, TaskState::Running, None)),
        0,
        "replacement not healthy yet"
    );
    let cmds = h.event(Event::HealthChanged {
        instance_id: new,
        healthy: Some(true),
        kill: false,
    });
    assert!(cmds.iter().any(|c| matches!(c, Command::Kill { instance_id, reason: KillReason::HealthCheckFailed } if *instance_id == sick)));
    h.settle(Some(true));
    assert_eq!(h.ready_count("/a", true), 3);
}

#[test]
fn cut_off_checker_kills_only_the_limit() {
    // maxOverCapacity 0: no room to replace first, so kills happen at once, but only the limit.
    let app = RunSpec {
        has_health_checks: true,
        upgrade: UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 0.0,
        },
        ..spec("/a", 1, 20)
    };
    let mut h = up(app);
    let all: Vec<String> = h.live("/a").iter().map(|i| i.id.clone()).collect();
    let mut killed = 0;
    for id in &all {
        killed += Harness::kills(&h.event(Event::HealthChanged {
            instance_id: id.clone(),
            healthy: Some(false),
            kill: true,
        }));
    }
    assert_eq!(killed, health::health_kill_limit(20));
    // Even after those die and the window is not over, nothing more is killed.
    h.finish_kills();
    assert_eq!(Harness::kills(&h.tick(1_000)), 0);
    assert!(h.live("/a").len() >= 18);
    // With room (defaults), replacements come first and nothing dies while they are unhealthy too.
    let mut h = up(RunSpec {
        has_health_checks: true,
        ..spec("/b", 1, 10)
    });
    let all: Vec<String> = h.live("/b").iter().map(|i| i.id.clone()).collect();
    let mut kills = 0;
    for id in &all {
        kills += Harness::kills(&h.event(Event::HealthChanged {
            instance_id: id.clone(),
            healthy: Some(false),
            kill: true,
        }));
    }
    h.accept_all();
    h.run_all(Some(false));
    for _ in 0..100 {
        kills += Harness::kills(&h.tick(10_000));
    }
    assert_eq!(kills, 0);
    assert_eq!(h.live("/b").len(), 11);
}

#[test]
fn stop_kills_all_then_terminates() {
    let mut h = up(spec("/a", 1, 2));
    let plan = DeploymentPlan::build(
        "stop".into(),
        h.now,
        &h.planner.apps().clone(),
        &RootGroup::new(),
        &PlanOptions::default(),
    )
    .expect("plan");
    let cmds = h.start(plan, true).expect("start");
    assert_eq!(Harness::kills(&cmds), 2);
    h.finish_kills();
    assert!(h
        .log
        .iter()
        .any(|c| matches!(c, Command::AppTerminated { app_id } if app_id == "/a")));
    assert!(h.succeeded("stop"));
    assert!(h.planner.instances_of("/a").is_empty());
}

#[test]
fn locking_force_and_limits() {
    let config = PlannerConfig {
        max_running_deployments: 2,
        ..PlannerConfig::default()
    };
    let mut h = Harness::new(config);
    let (a, _) = h.deploy(&[spec("/a", 1, 1)], false).expect("a");
    match h.deploy(&[spec("/a", 2, 2)], false) {
        Err(DeploymentError::Locked { deployment_ids }) => {
            assert_eq!(deployment_ids, vec![a.id.clone()])
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    h.deploy(&[spec("/b", 1, 1)], false).expect("b");
    assert_eq!(
        h.deploy(&[spec("/c", 1, 1)], false).err(),
        Some(DeploymentError::TooMany { max: 2 })
    );
    // Forcing over /a replaces its deployment, so it fits under the limit.
    let (forced, _) = h.deploy(&[spec("/a", 2, 3)], true).expect("forced");
    assert!(h.planner.deployment(&a.id).is_none());
    assert_eq!(h.planner.app_deployments("/a"), vec![forced.id.clone()]);
    assert_eq!(
        h.planner.cancel_deployment(h.now, "nope", false).err(),
        Some(DeploymentError::NotFound { id: "nope".into() })
    );
    let c = h
        .planner
        .cancel_deployment(h.now, &forced.id, false)
        .expect("cancel");
    assert!(c.rollback.is_none());
    assert!(c.commands.iter().any(|c| matches!(
        c,
        Command::DeploymentFailed {
            reason: FailReason::Cancelled,
            ..
        }
    )));
    assert!(h.planner.app_deployments("/a").is_empty());
}

#[test]
fn noop_plan_succeeds_at_once() {
    let mut h = up(spec("/a", 1, 1));
    let (plan, cmds) = h.deploy(&[spec("/a", 1, 1)], false).expect("noop");
    assert!(plan.steps.is_empty());
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::DeploymentSucceeded { .. })));
    assert_eq!(h.planner.deployments().count(), 0);
}

#[test]
fn unknown_tasks_are_killed_and_orphans_decommissioned() {
    let mut h = up(spec("/a", 1, 1));
    let cmds = h.event(Event::StatusUpdate {
        instance_id: "x.instance-1".into(),
        state: TaskState::Running,
        healthy: None,
        agent: None,
    });
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Kill {
            reason: KillReason::Unknown,
            ..
        }
    )));
    // A stored instance whose app is gone is killed after recovery, then the app terminates.
    let mut orphan = Instance::scheduled("gone.instance-1".into(), "/gone".into(), 1, h.now);
    orphan.state = InstanceState::Running;
    h.store.instances.insert(orphan.id.clone(), orphan.clone());
    h.tasks.insert(orphan.id.clone(), TaskState::Running);
    let cmds = h.recover();
    assert!(cmds.iter().any(|c| matches!(c, Command::Kill { instance_id, reason: KillReason::Orphaned } if *instance_id == orphan.id)));
    h.finish_kills();
    assert!(h
        .log
        .iter()
        .any(|c| matches!(c, Command::AppTerminated { app_id } if app_id == "/gone")));
}

#[test]
fn dependencies_run_in_order() {
    let mut h = Harness::new(PlannerConfig::default());
    let db = spec("/db", 1, 1);
    let web = RunSpec {
        dependencies: vec!["/db".into()],
        ..spec("/web", 1, 1)
    };
    h.deploy(&[db, web], false).expect("deploy");
    // Only /db launches until it is running.
    assert!(h.to_launch.iter().all(|i| i.starts_with("db.")));
    h.accept_all();
    h.run_all(None);
    assert!(h.to_launch.iter().any(|i| i.starts_with("web.")));
    h.settle(None);
    assert_eq!(h.planner.deployments().count(), 0);
}

/// Cancelling the removal of an app whose instances are still stopping brings the app back: the
/// rollback's target names it (the caller stores that target), and it runs its instances again.
#[test]
fn cancelling_a_removal_still_stopping_brings_the_app_back() {
    let mut h = up(spec("/a", 1, 2));
    let original = h.planner.apps().clone();
    let id = h.next_deployment_id();
    let removal = DeploymentPlan::build(
        id,
        h.now,
        &original,
        &RootGroup::new(),
        &PlanOptions::default(),
    )
    .expect("plan");
    let cmds = h.start(removal.clone(), false).expect("start");
    assert_eq!(Harness::kills(&cmds), 2);
    assert!(!h.planner.apps().contains_key("/a"));
    // The kills are not done yet; the removal is cancelled with a rollback.
    let cancelled = h
        .planner
        .cancel_deployment(h.now, &removal.id, true)
        .expect("cancel");
    h.apply(&cancelled.commands);
    let rollback = cancelled.rollback.expect("rollback plan");
    assert_eq!(
        rollback.target.get("/a").map(|s| (s.version, s.instances)),
        Some((1, 2)),
        "{rollback:?}"
    );
    assert!(h.planner.apps().contains_key("/a"));
    h.finish_kills();
    h.settle(None);
    assert!(h.succeeded(&rollback.id));
    assert_eq!(h.live("/a").len(), 2);
}
