//! Core behaviour driven directly, with no sockets: each test plays agents and schedulers by hand.

use super::*;
use proto::agent_protocol::StatusUpdate;
use proto::scheduler::*;

pub(super) fn core() -> Core {
    let info = MasterInfo::new(
        "m".into(),
        "127.0.0.1".parse().unwrap(),
        5050,
        "localhost".into(),
    );
    Core::new(
        info,
        CoreConfig {
            offer_timeout_secs: Some(30.0),
            ..CoreConfig::default()
        },
    )
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        id: None,
        hostname: "a1".into(),
        port: 5051,
        resources: ResourceBag::parse("cpus:4;mem:1024;ports:[31000-31009]")
            .unwrap()
            .to_resources(None),
        attributes: vec![],
    }
}

pub(super) fn framework_info(partition_aware: bool) -> FrameworkInfo {
    let mut info: FrameworkInfo =
        serde_json::from_str(r#"{"user":"u","name":"f","failover_timeout":60}"#).unwrap();
    if partition_aware {
        info.capabilities.push(FrameworkCapability {
            kind: "PARTITION_AWARE".into(),
        });
    }
    info
}

fn add_agent(core: &mut Core, now: f64) -> AgentId {
    let id = core.next_agent_id();
    core.register_agent(
        now,
        id.clone(),
        agent_info(),
        "127.0.0.1:5051".into(),
        "1.11.0".into(),
        1,
    )
    .unwrap();
    id
}

fn events_for(effects: &[Effect], framework: &FrameworkId) -> Vec<Event> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ToFramework(id, event) if id == framework => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn offers_in(effects: &[Effect]) -> Vec<Offer> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ToFramework(_, ev) => ev.offers.clone(),
            _ => None,
        })
        .flat_map(|o| o.offers)
        .collect()
}

pub(super) fn task(id: &str, agent: &AgentId, resources: &str) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": agent.value},
        "resources": ResourceBag::parse(resources).unwrap().to_resources(Some("*")),
        "command": {"value": "echo hello"}
    }))
    .unwrap()
}

pub(super) fn accept(offer: &OfferId, tasks: Vec<TaskInfo>) -> Call {
    let mut call = Call::new("ACCEPT", None);
    call.accept = Some(Accept {
        offer_ids: vec![offer.clone()],
        operations: vec![Operation {
            kind: "LAUNCH".into(),
            id: None,
            launch: Some(Launch { task_infos: tasks }),
            launch_group: None,
        }],
        filters: None,
    });
    call
}

/// Subscribes a framework and returns its id and the first offer.
fn subscribed(core: &mut Core, now: f64, partition_aware: bool) -> (FrameworkId, Offer) {
    let outcome = core
        .subscribe(now, framework_info(partition_aware), "s1".into())
        .unwrap();
    let events = events_for(&outcome.after_stream, &outcome.framework_id);
    assert_eq!(events[0].kind, "SUBSCRIBED");
    let effects = core.allocate(now);
    let offers = offers_in(&effects);
    assert_eq!(offers.len(), 1, "one agent, one offer");
    (outcome.framework_id, offers[0].clone())
}

#[test]
fn launch_runs_the_task_on_the_agent_and_updates_flow_back() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    let effects = core
        .apply_call(
            2.0,
            &fw,
            accept(&offer.id, vec![task("t1", &agent, "cpus:1;mem:128")]),
        )
        .unwrap();
    assert!(effects.iter().any(|e| matches!(e, Effect::ToAgent(a, MasterToAgent::RunTask { task, .. }) if a == &agent && task.task_id.value == "t1")));
    assert_eq!(core.agents[&agent].used.scalar("cpus"), 1.0);
    assert_eq!(
        core.frameworks[&fw].tasks[&TaskId::new("t1")].state,
        TaskState::TaskStaging
    );

    let mut status = TaskStatus::new(TaskId::new("t1"), TaskState::TaskRunning);
    status.uuid = Some("AAAAAAAAAAAAAAAAAAAAAA==".into());
    let effects = core.status_update(
        3.0,
        &agent,
        StatusUpdate {
            framework_id: fw.clone(),
            status: status.clone(),
        },
    );
    let updates = events_for(&effects, &fw);
    assert_eq!(
        updates[0].update.as_ref().unwrap().status.state,
        TaskState::TaskRunning
    );
    assert_eq!(
        updates[0].update.as_ref().unwrap().status.agent_id.as_ref(),
        Some(&agent)
    );

    let mut ack = Call::new("ACKNOWLEDGE", Some(fw.clone()));
    ack.acknowledge = Some(Acknowledge {
        agent_id: agent.clone(),
        task_id: TaskId::new("t1"),
        uuid: status.uuid.clone().unwrap(),
    });
    let effects = core.apply_call(4.0, &fw, ack).unwrap();
    assert!(
        matches!(&effects[0], Effect::ToAgent(_, MasterToAgent::AcknowledgeUpdate { uuid, .. }) if uuid == "AAAAAAAAAAAAAAAAAAAAAA==")
    );

    status.state = TaskState::TaskFinished;
    status.uuid = Some("AQAAAAAAAAAAAAAAAAAAAA==".into());
    core.status_update(
        5.0,
        &agent,
        StatusUpdate {
            framework_id: fw.clone(),
            status,
        },
    );
    assert!(core.frameworks[&fw].tasks.is_empty());
    assert_eq!(
        core.frameworks[&fw].completed_tasks[0].state,
        TaskState::TaskFinished
    );
    assert_eq!(core.agents[&agent].used.scalar("cpus"), 0.0);
    assert_eq!(core.counters.tasks_terminal["FINISHED"], 1);
}

#[test]
fn a_task_asking_more_than_the_offer_gets_task_error_naming_the_resource() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    let effects = core
        .apply_call(
            2.0,
            &fw,
            accept(&offer.id, vec![task("big", &agent, "cpus:5;mem:128")]),
        )
        .unwrap();
    let events = events_for(&effects, &fw);
    let status = &events[0].update.as_ref().unwrap().status;
    assert_eq!(status.state, TaskState::TaskError);
    assert!(
        status.message.as_ref().unwrap().contains("cpus"),
        "{status:?}"
    );
    assert!(status.uuid.is_none());
    assert!(!effects.iter().any(|e| matches!(e, Effect::ToAgent(..))));
    assert_eq!(core.agents[&agent].used.scalar("cpus"), 0.0);
}

#[test]
fn an_unknown_offer_drops_the_launch() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, _) = subscribed(&mut core, 1.0, true);
    let effects = core
        .apply_call(
            2.0,
            &fw,
            accept(&OfferId::new("nope"), vec![task("t", &agent, "cpus:1")]),
        )
        .unwrap();
    let status = &events_for(&effects, &fw)[0].update.clone().unwrap().status;
    assert_eq!(status.state, TaskState::TaskDropped);
    assert_eq!(status.reason.as_deref(), Some("REASON_INVALID_OFFERS"));
}

#[test]
fn decline_filters_the_agent_until_revive() {
    let mut core = core();
    add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    let mut decline = Call::new("DECLINE", Some(fw.clone()));
    decline.decline = Some(Decline {
        offer_ids: vec![offer.id.clone()],
        filters: Some(proto::scheduler::Filters {
            refuse_seconds: Some(100.0),
        }),
    });
    core.apply_call(2.0, &fw, decline).unwrap();
    assert!(offers_in(&core.tick(3.0)).is_empty(), "filtered for 100 s");
    let effects = core
        .apply_call(4.0, &fw, Call::new("REVIVE", Some(fw.clone())))
        .unwrap();
    assert_eq!(
        offers_in(&effects).len(),
        1,
        "revive clears filters and allocates"
    );
}

#[test]
fn offers_are_rescinded_after_the_offer_timeout() {
    let mut core = core();
    add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    let effects = core.tick(40.0);
    let events = events_for(&effects, &fw);
    assert_eq!(events[0].kind, "RESCIND");
    assert_eq!(events[0].rescind.as_ref().unwrap().offer_id, offer.id);
}

#[test]
fn framework_failover_within_timeout_keeps_tasks_and_after_it_removes_them() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    core.apply_call(
        2.0,
        &fw,
        accept(&offer.id, vec![task("t1", &agent, "cpus:1")]),
    )
    .unwrap();
    core.framework_disconnected(3.0, &fw, "s1");
    assert!(!core.frameworks[&fw].connected);
    // Resubscribe with the id within failover_timeout (60 s): tasks are still there.
    let mut info = framework_info(false);
    info.id = Some(fw.clone());
    core.subscribe(10.0, info, "s2".into()).unwrap();
    assert!(core.frameworks[&fw].tasks.contains_key(&TaskId::new("t1")));
    // A stale close of the first stream changes nothing.
    core.framework_disconnected(11.0, &fw, "s1");
    assert!(core.frameworks[&fw].connected);
    // Disconnect again and let the timeout pass: removed, tasks shut down on the agent.
    core.framework_disconnected(12.0, &fw, "s2");
    let effects = core.tick(100.0);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ToAgent(_, MasterToAgent::ShutdownFramework { .. })
    )));
    assert!(core.is_removed_framework(&fw));
    let mut info = framework_info(false);
    info.id = Some(fw.clone());
    assert_eq!(
        core.subscribe(101.0, info, "s3".into()).unwrap_err(),
        scheduler_calls::SubscribeError::Removed
    );
}

#[test]
fn a_second_subscription_replaces_the_first_stream() {
    let mut core = core();
    let (fw, _) = {
        add_agent(&mut core, 0.0);
        subscribed(&mut core, 1.0, false)
    };
    let mut info = framework_info(false);
    info.id = Some(fw.clone());
    let outcome = core.subscribe(2.0, info, "s2".into()).unwrap();
    assert_eq!(
        events_for(&outcome.before_stream, &fw)[0]
            .error
            .as_ref()
            .unwrap()
            .message,
        "Framework failed over"
    );
    assert!(outcome
        .before_stream
        .contains(&Effect::CloseFramework(fw.clone())));
    assert!(core.authorize_call(Some(&fw), Some("s1")).is_err());
    assert!(core.authorize_call(Some(&fw), Some("s2")).is_ok());
}

#[test]
fn reconciliation_answers_known_and_unknown_tasks() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, true);
    core.apply_call(
        2.0,
        &fw,
        accept(&offer.id, vec![task("t1", &agent, "cpus:1")]),
    )
    .unwrap();
    let mut call = Call::new("RECONCILE", Some(fw.clone()));
    call.reconcile = Some(Reconcile {
        tasks: vec![
            ReconcileTask {
                task_id: TaskId::new("t1"),
                agent_id: None,
            },
            ReconcileTask {
                task_id: TaskId::new("ghost"),
                agent_id: Some(agent.clone()),
            },
            ReconcileTask {
                task_id: TaskId::new("ghost2"),
                agent_id: None,
            },
        ],
    });
    let effects = core.apply_call(3.0, &fw, call).unwrap();
    let states: Vec<TaskState> = events_for(&effects, &fw)
        .iter()
        .map(|e| e.update.as_ref().unwrap().status.state)
        .collect();
    assert_eq!(
        states,
        vec![
            TaskState::TaskStaging,
            TaskState::TaskGone,
            TaskState::TaskUnknown
        ]
    );
    let implicit = core
        .apply_call(4.0, &fw, Call::new("RECONCILE", Some(fw.clone())))
        .unwrap();
    assert_eq!(events_for(&implicit, &fw).len(), 1);
}

#[test]
fn reconciliation_waits_for_agents_that_have_not_reregistered_after_a_failover() {
    // mesos-ha.md 3.5: a task on an agent of the registry that has not re-registered yet gets no
    // answer (it may well run); answering TASK_LOST would make a scheduler replace a live task.
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, _) = subscribed(&mut core, 1.0, true);
    let recovered = AgentId::new("old-S7");
    core.recovered_agents
        .insert(recovered.clone(), (agent_info(), 0.0));
    let mut call = Call::new("RECONCILE", Some(fw.clone()));
    call.reconcile = Some(Reconcile {
        tasks: vec![
            ReconcileTask {
                task_id: TaskId::new("on-recovered"),
                agent_id: Some(recovered.clone()),
            },
            ReconcileTask {
                task_id: TaskId::new("no-agent"),
                agent_id: None,
            },
            ReconcileTask {
                task_id: TaskId::new("ghost"),
                agent_id: Some(agent.clone()),
            },
        ],
    });
    let effects = core.apply_call(2.0, &fw, call.clone()).unwrap();
    let answered: Vec<(String, TaskState)> = events_for(&effects, &fw)
        .iter()
        .map(|e| {
            let status = &e.update.as_ref().unwrap().status;
            (status.task_id.value.clone(), status.state)
        })
        .collect();
    assert_eq!(answered, vec![("ghost".to_string(), TaskState::TaskGone)]);
    // Once every recovered agent is back (or marked unreachable), unknown tasks are answered.
    core.recovered_agents.clear();
    let effects = core.apply_call(3.0, &fw, call).unwrap();
    assert_eq!(events_for(&effects, &fw).len(), 3);
}

#[test]
fn calls_need_the_current_stream_id() {
    let mut core = core();
    add_agent(&mut core, 0.0);
    let (fw, _) = subscribed(&mut core, 1.0, false);
    assert!(matches!(
        core.authorize_call(Some(&fw), None),
        Err(CallError::BadRequest(_))
    ));
    assert!(
        matches!(core.authorize_call(Some(&FrameworkId::new("x")), Some("s1")), Err(CallError::BadRequest(m)) if m.contains("'x'"))
    );
    assert!(matches!(
        core.authorize_call(None, Some("s1")),
        Err(CallError::BadRequest(_))
    ));
}

#[test]
fn an_agent_reregistering_rebuilds_its_tasks_and_frameworks() {
    let mut core = core();
    let mut info = agent_info();
    info.id = Some(AgentId::new("old-S1"));
    let mut fw_info = framework_info(false);
    fw_info.id = Some(FrameworkId::new("old-0001"));
    let reported = proto::agent_protocol::ReportedTask {
        framework_id: FrameworkId::new("old-0001"),
        task: task("t9", &AgentId::new("old-S1"), "cpus:2"),
        state: TaskState::TaskRunning,
        latest_status: None,
    };
    core.reregister_agent(
        0.0,
        AgentId::new("old-S1"),
        info,
        "127.0.0.1:5051".into(),
        "1.11.0".into(),
        1,
        vec![reported],
        vec![fw_info],
    )
    .unwrap();
    let fw = &core.frameworks[&FrameworkId::new("old-0001")];
    assert!(fw.recovered && !fw.connected);
    assert_eq!(fw.tasks[&TaskId::new("t9")].state, TaskState::TaskRunning);
    assert_eq!(
        core.agents[&AgentId::new("old-S1")].used.scalar("cpus"),
        2.0
    );
}

#[test]
fn disconnected_agents_lose_their_offers_and_get_no_new_ones() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, _) = subscribed(&mut core, 1.0, false);
    let effects = core.agent_disconnected(&agent, 1);
    assert_eq!(events_for(&effects, &fw)[0].kind, "RESCIND");
    assert!(offers_in(&core.tick(2.0)).is_empty());
    // A stale connection id changes nothing.
    assert!(core.agent_disconnected(&agent, 99).is_empty());
}

#[test]
fn agents_missing_their_pings_are_reported_exhausted_and_a_pong_resets_the_count() {
    let mut core = core();
    core.config.max_agent_ping_timeouts = 3;
    let agent = add_agent(&mut core, 0.0);
    let (pings, exhausted) = core.ping_agents();
    assert!(pings
        .iter()
        .any(|e| matches!(e, Effect::ToAgent(a, MasterToAgent::Ping) if a == &agent)));
    assert!(exhausted.is_empty());
    core.agent_pong(&agent);
    assert!(core.ping_agents().1.is_empty(), "answered: no miss");
    assert!(core.ping_agents().1.is_empty(), "1 miss");
    assert!(core.ping_agents().1.is_empty(), "2 misses");
    assert_eq!(core.ping_agents().1, vec![agent], "3rd miss exhausts");
}

#[test]
fn unreachable_agents_lose_their_tasks_as_the_spec_table_says_and_get_them_back_on_reregistration()
{
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (aware, offer) = subscribed(&mut core, 1.0, true);
    core.apply_call(
        2.0,
        &aware,
        accept(&offer.id, vec![task("pa", &agent, "cpus:1")]),
    )
    .unwrap();
    let mut info = framework_info(false);
    info.name = "plain".into();
    let plain = core
        .subscribe(3.0, info, "s-plain".into())
        .unwrap()
        .framework_id;
    let offers = offers_in(&core.tick(4.0));
    let offer = offers
        .iter()
        .find(|o| o.framework_id == plain)
        .expect("offer for the second framework");
    core.apply_call(
        5.0,
        &plain,
        accept(&offer.id, vec![task("np", &agent, "cpus:1")]),
    )
    .unwrap();

    let effects = core.mark_unreachable(10.0, &agent);
    let aware_status = events_for(&effects, &aware)
        .into_iter()
        .find_map(|e| e.update)
        .unwrap()
        .status;
    assert_eq!(aware_status.state, TaskState::TaskUnreachable);
    assert_eq!(aware_status.reason.as_deref(), Some("REASON_AGENT_REMOVED"));
    assert!(aware_status.unreachable_time.is_some() && aware_status.uuid.is_none());
    let plain_status = events_for(&effects, &plain)
        .into_iter()
        .find_map(|e| e.update)
        .unwrap()
        .status;
    assert_eq!(plain_status.state, TaskState::TaskLost);
    assert!(events_for(&effects, &plain)
        .iter()
        .any(|e| e.kind == "FAILURE"));
    assert!(effects.contains(&Effect::CloseAgent(agent.clone())));
    assert!(core.frameworks[&aware]
        .unreachable_tasks
        .contains_key(&TaskId::new("pa")));
    assert!(!core.agents.contains_key(&agent));

    // The agent comes back with both tasks still running.
    let reported = |fw: &FrameworkId, id: &str| proto::agent_protocol::ReportedTask {
        framework_id: fw.clone(),
        task: task(id, &agent, "cpus:1"),
        state: TaskState::TaskRunning,
        latest_status: None,
    };
    let mut info = agent_info();
    info.id = Some(agent.clone());
    let frameworks = vec![
        core.frameworks[&aware].info.clone(),
        core.frameworks[&plain].info.clone(),
    ];
    core.reregister_agent(
        20.0,
        agent.clone(),
        info,
        "127.0.0.1:5051".into(),
        "1.11.0".into(),
        2,
        vec![reported(&aware, "pa"), reported(&plain, "np")],
        frameworks,
    )
    .unwrap();
    let effects = core.agent_reachable_again(20.0, &agent);
    for fw in [&aware, &plain] {
        let status = events_for(&effects, fw)
            .into_iter()
            .find_map(|e| e.update)
            .unwrap()
            .status;
        assert_eq!(status.state, TaskState::TaskRunning);
        assert_eq!(status.reason.as_deref(), Some("REASON_AGENT_REREGISTERED"));
    }
    assert!(core.frameworks[&aware].unreachable_tasks.is_empty());
    assert!(core.unreachable_agents.is_empty());
}

#[test]
fn registry_agents_that_do_not_come_back_after_failover_become_overdue() {
    let mut core = core();
    core.config.agent_reregister_timeout_secs = 60.0;
    let mut info = agent_info();
    info.id = Some(AgentId::new("old-S7"));
    core.recover_agents(0.0, vec![info]);
    assert!(core.overdue_recovered_agents(59.0).is_empty());
    assert_eq!(
        core.overdue_recovered_agents(60.0),
        vec![AgentId::new("old-S7")]
    );
    let (fw, _) = {
        add_agent(&mut core, 0.0);
        subscribed(&mut core, 1.0, false)
    };
    let effects = core.mark_unreachable(61.0, &AgentId::new("old-S7"));
    assert!(
        events_for(&effects, &fw)
            .iter()
            .all(|e| e.kind == "FAILURE"),
        "no task list: only FAILURE"
    );
    assert!(core.recovered_agents.is_empty());
}

/// A task under a custom executor: its ExecutorInfo in place of a command.
fn executor_task(id: &str, agent: &AgentId, executor: &str) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": agent.value},
        "resources": ResourceBag::parse("cpus:0.5").unwrap().to_resources(Some("*")),
        "executor": {"executor_id": {"value": executor}, "command": {"value": "./my-executor"}}
    }))
    .unwrap()
}

#[test]
fn a_custom_executor_is_tracked_until_it_exits_so_shutdown_and_teardown_reach_it() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    core.apply_call(
        2.0,
        &fw,
        accept(&offer.id, vec![executor_task("t1", &agent, "ex1")]),
    )
    .unwrap();
    // The task finishes; the executor stays.
    let mut status = TaskStatus::new(TaskId::new("t1"), TaskState::TaskFinished);
    status.uuid = Some("AAAAAAAAAAAAAAAAAAAAAA==".into());
    core.status_update(
        3.0,
        &agent,
        StatusUpdate {
            framework_id: fw.clone(),
            status,
        },
    );
    assert!(core.frameworks[&fw].tasks.is_empty());

    // SHUTDOWN of that executor goes to its agent as ShutdownExecutor.
    let mut shutdown = Call::new("SHUTDOWN", Some(fw.clone()));
    shutdown.shutdown = Some(proto::scheduler::Shutdown {
        executor_id: ExecutorId::new("ex1"),
        agent_id: agent.clone(),
    });
    let effects = core.apply_call(4.0, &fw, shutdown).unwrap();
    assert!(effects.iter().any(|e| matches!(e,
        Effect::ToAgent(a, MasterToAgent::ShutdownExecutor { executor_id, .. }) if a == &agent && executor_id.value == "ex1")));

    // Teardown with no task left still reaches the agent running the executor.
    let effects = core
        .apply_call(5.0, &fw, Call::new("TEARDOWN", Some(fw.clone())))
        .unwrap();
    assert!(effects.iter().any(
        |e| matches!(e, Effect::ToAgent(a, MasterToAgent::ShutdownFramework { .. }) if a == &agent)
    ));
}

#[test]
fn an_exited_executor_is_forgotten() {
    let mut core = core();
    let agent = add_agent(&mut core, 0.0);
    let (fw, offer) = subscribed(&mut core, 1.0, false);
    core.apply_call(
        2.0,
        &fw,
        accept(&offer.id, vec![executor_task("t1", &agent, "ex1")]),
    )
    .unwrap();
    assert!(core.frameworks[&fw]
        .executors
        .contains(&(agent.clone(), ExecutorId::new("ex1"))));
    core.executor_exited(&agent, &fw, ExecutorId::new("ex1"), 0);
    assert!(core.frameworks[&fw].executors.is_empty());
}
