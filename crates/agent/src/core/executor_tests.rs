//! Unit tests of the custom-executor rules of the core (`executors.rs`): every scenario drives
//! `Core` with explicit times and checks effects (mesos-http-api.md section 9).

use super::*;
use proto::executor::Subscribe;
use std::time::{Duration, Instant};

struct Harness {
    core: Core,
    t0: Instant,
}

fn fw() -> FrameworkId {
    FrameworkId::new("F1")
}

fn ex() -> ExecutorId {
    ExecutorId::new("e1")
}

fn tid(id: &str) -> TaskId {
    TaskId::new(id)
}

fn framework(checkpoint: bool) -> FrameworkInfo {
    serde_json::from_value(serde_json::json!({
        "user": "u", "name": "fw", "id": {"value": "F1"}, "checkpoint": checkpoint
    }))
    .unwrap()
}

fn executor_task(id: &str) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": "S1"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}],
        "executor": {
            "executor_id": {"value": "e1"},
            "command": {"value": "python3 executor.py"},
            "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}]
        }
    }))
    .unwrap()
}

/// The base64 of a 16-byte uuid, as an executor makes them.
fn executor_uuid(n: u128) -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::from_u128(n).as_bytes())
}

fn executor_status(task: &str, state: TaskState, n: u128) -> TaskStatus {
    let mut status = TaskStatus::new(tid(task), state);
    status.uuid = Some(executor_uuid(n));
    status
}

/// The executor events among `effects`, as `TYPE` or `TYPE:task`.
fn events(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendToExecutor { event, .. } => {
                let task = event
                    .launch
                    .as_ref()
                    .map(|l| l.task.task_id.value.clone())
                    .or_else(|| event.kill.as_ref().map(|k| k.task_id.value.clone()))
                    .or_else(|| event.acknowledged.as_ref().map(|a| a.task_id.value.clone()));
                Some(match task {
                    Some(task) => format!("{}:{task}", event.kind),
                    None => event.kind.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

fn kills(effects: &[Effect]) -> Vec<Duration> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::KillExecutor { grace, .. } => Some(*grace),
            _ => None,
        })
        .collect()
}

impl Harness {
    fn new() -> Self {
        let mut harness = Harness::unregistered(Instant::now());
        harness.register(0);
        harness
    }

    fn unregistered(t0: Instant) -> Self {
        let mut counter = 0u128;
        let uuids = Box::new(move || {
            counter += 1;
            uuid::Uuid::from_u128(counter)
        });
        let mut core = Core::new(PathBuf::from("/w"), Duration::from_secs(5), uuids);
        core.set_executor_config(ExecutorConfig {
            registration_timeout: Duration::from_secs(60),
            reregistration_timeout: Duration::from_secs(2),
        });
        Harness { core, t0 }
    }

    fn register(&mut self, secs: u64) {
        let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m1".into());
        let now = self.at(secs);
        self.core.registered(now, AgentId::new("S1"), master);
    }

    fn at(&self, secs: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_secs(secs),
            wall: 1_700_000_000.0 + secs as f64,
        }
    }

    fn run(&mut self, id: &str, secs: u64) -> Vec<Effect> {
        self.core
            .run_task(self.at(secs), framework(true), executor_task(id))
    }

    fn subscribe(&mut self, secs: u64, connection: u64) -> Vec<Effect> {
        self.core
            .executor_subscribe(
                self.at(secs),
                &fw(),
                &ex(),
                connection,
                Subscribe::default(),
            )
            .expect("subscribed")
    }

    /// SUBSCRIBE carrying what a reconnecting executor resends (mesos-http-api.md 9).
    fn resubscribe(
        &mut self,
        secs: u64,
        connection: u64,
        tasks: &[&str],
        updates: Vec<TaskStatus>,
    ) -> Vec<Effect> {
        let subscribe = Subscribe {
            unacknowledged_tasks: tasks.iter().map(|id| executor_task(id)).collect(),
            unacknowledged_updates: updates
                .into_iter()
                .map(|status| proto::executor::Update { status })
                .collect(),
        };
        self.core
            .executor_subscribe(self.at(secs), &fw(), &ex(), connection, subscribe)
            .expect("subscribed")
    }

    /// The agent killed and started again at `secs`: a new core rebuilt from everything the old
    /// one checkpointed (as `recovery` reads it back), its executor found running by the launcher.
    fn restarted(mut self, secs: u64) -> Harness {
        let mut infos = BTreeMap::new();
        let mut executors: Vec<RecoveredExecutor> = Vec::new();
        let mut runs: Vec<RecoveredRun> = Vec::new();
        for op in self.core.drain_checkpoints() {
            match op {
                CheckpointOp::Framework {
                    framework_id, info, ..
                } => {
                    infos.insert(framework_id, info);
                }
                CheckpointOp::Executor {
                    executor_dir,
                    run_dir,
                    framework_id,
                    info,
                    container_id,
                    sandbox,
                } => executors.push(RecoveredExecutor {
                    framework_id,
                    info,
                    container_id,
                    sandbox,
                    executor_dir,
                    run_dir,
                    forked: None,
                }),
                CheckpointOp::Task {
                    run_dir,
                    framework_id,
                    task,
                    container_id,
                    sandbox,
                } => runs.push(RecoveredRun {
                    run_dir,
                    framework_id,
                    task,
                    container_id,
                    sandbox,
                    records: Vec::new(),
                }),
                CheckpointOp::Update {
                    run_dir, record, ..
                } => {
                    if let Some(run) = runs.iter_mut().find(|r| r.run_dir == run_dir) {
                        run.records.push(record);
                    }
                }
                _ => {}
            }
        }
        let mut restarted = Harness::unregistered(self.t0);
        let now = restarted.at(secs);
        restarted.core.recover_executors(&infos, executors);
        let live = restarted
            .core
            .recover(Some(AgentId::new("S1")), infos, runs);
        assert!(
            live.is_empty(),
            "executor tasks are settled through their executor"
        );
        restarted.core.executor_reattached(now, &fw(), &ex(), 4242);
        restarted.register(secs);
        restarted.core.drain_checkpoints();
        restarted
    }

    /// Task `id` launched on a running, subscribed executor.
    fn subscribed_with(&mut self, id: &str) -> Vec<Effect> {
        let mut effects = self.run(id, 0);
        effects.extend(self.core.executor_spawned(&fw(), &ex(), 4242));
        effects.extend(self.subscribe(1, 1));
        effects
    }

    fn state(&self, id: &str) -> TaskState {
        self.core
            .task(&fw(), &tid(id))
            .map(|t| t.state)
            .expect("a live task")
    }

    fn last_pending(&self, id: &str) -> TaskStatus {
        self.core
            .pending_updates(&fw(), &tid(id))
            .last()
            .cloned()
            .expect("a pending update")
    }
}

#[test]
fn the_first_task_starts_the_executor_and_waits_queued_until_it_subscribes() {
    let mut h = Harness::new();
    let effects = h.run("t1", 0);
    let launch = effects
        .iter()
        .find_map(|e| match e {
            Effect::LaunchExecutor(launch) => Some(launch.clone()),
            _ => None,
        })
        .expect("the executor is launched");
    assert!(events(&effects).is_empty());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Send(_))),
        "no agent-made update"
    );
    assert!(launch
        .spec
        .sandbox
        .starts_with("/w/slaves/S1/frameworks/F1/executors/e1/runs"));
    let env: std::collections::BTreeMap<_, _> = launch.env.iter().cloned().collect();
    assert_eq!(env["MESOS_EXECUTOR_ID"], "e1");
    assert_eq!(env["MESOS_FRAMEWORK_ID"], "F1");
    assert_eq!(env["MESOS_CHECKPOINT"], "1");
    assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "5secs");
    assert!(env.contains_key("MESOS_RECOVERY_TIMEOUT"));
    assert_eq!(
        launch.spec.task.command.as_ref().unwrap().value.as_deref(),
        Some("python3 executor.py")
    );
    let ops = h.core.drain_checkpoints();
    assert!(ops
        .iter()
        .any(|op| matches!(op, CheckpointOp::Executor { .. })));
    assert!(ops.iter().any(
        |op| matches!(op, CheckpointOp::Task { run_dir, .. } if run_dir.ends_with(format!("{}/tasks/t1", launch.spec.container_id)))
    ));

    // A second task before the subscription queues too; one launch only.
    assert!(!h
        .run("t2", 0)
        .iter()
        .any(|e| matches!(e, Effect::LaunchExecutor(_))));
    assert_eq!(h.state("t1"), TaskState::TaskStaging);
    assert_eq!(
        h.core.executor(&fw(), &ex()).unwrap().queued,
        vec![tid("t1"), tid("t2")]
    );
    // Executor resources count while it runs, with its tasks'.
    let used = h.core.used_resources();
    assert_eq!((used.scalar("cpus"), used.scalar("mem")), (1.0, 32.0));

    h.core.executor_spawned(&fw(), &ex(), 4242);
    let effects = h.subscribe(1, 7);
    assert_eq!(
        events(&effects),
        vec!["SUBSCRIBED", "LAUNCH:t1", "LAUNCH:t2"]
    );
    let Effect::SendToExecutor { event, .. } = &effects[0] else {
        panic!("{effects:?}")
    };
    let subscribed = event.subscribed.as_ref().unwrap();
    assert_eq!(subscribed.executor_info.executor_id, ex());
    assert_eq!(subscribed.framework_info.id, Some(fw()));
    assert_eq!(subscribed.agent_info.id, Some(AgentId::new("S1")));
    assert_eq!(
        subscribed.container_id,
        Some(launch.spec.container_id.clone())
    );
    assert!(h.core.executor(&fw(), &ex()).unwrap().queued.is_empty());

    // Later tasks go straight to the subscribed executor.
    assert_eq!(events(&h.run("t3", 2)), vec!["LAUNCH:t3"]);
}

#[test]
fn updates_go_upstream_with_the_executor_uuid_and_acks_come_back_as_acknowledged() {
    let mut h = Harness::new();
    h.subscribed_with("t1");
    let effects = h
        .core
        .executor_update(
            h.at(2),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskRunning, 99),
        )
        .unwrap();
    let sent = effects
        .iter()
        .find_map(|e| match e {
            Effect::Send(update) => Some(update.status.clone()),
            _ => None,
        })
        .expect("the update goes to the master");
    assert_eq!(sent.uuid.as_deref(), Some(executor_uuid(99).as_str()));
    assert_eq!(sent.source, Some(StatusSource::SourceExecutor));
    assert_eq!(sent.executor_id, Some(ex()));
    assert_eq!(sent.agent_id, Some(AgentId::new("S1")));
    assert_eq!(
        sent.timestamp,
        Some(1_700_000_002.0),
        "filled in when absent"
    );
    assert_eq!(h.state("t1"), TaskState::TaskRunning);
    let ops = h.core.drain_checkpoints();
    assert!(
        ops.iter()
            .any(|op| matches!(op, CheckpointOp::Update { .. })),
        "checkpointed"
    );
    // The same update again (a retry) changes nothing.
    let again = h
        .core
        .executor_update(
            h.at(3),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskRunning, 99),
        )
        .unwrap();
    assert!(again.is_empty());

    let effects = h
        .core
        .acknowledge(h.at(4), &fw(), &tid("t1"), &executor_uuid(99));
    assert_eq!(events(&effects), vec!["ACKNOWLEDGED:t1"]);
    let Effect::SendToExecutor { event, .. } = &effects[0] else {
        panic!()
    };
    assert_eq!(event.acknowledged.as_ref().unwrap().uuid, executor_uuid(99));

    // A terminal update: the task is archived once acknowledged; the executor stays.
    h.core
        .executor_update(
            h.at(5),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskFinished, 100),
        )
        .unwrap();
    assert_eq!(
        events(
            &h.core
                .acknowledge(h.at(6), &fw(), &tid("t1"), &executor_uuid(100))
        ),
        vec!["ACKNOWLEDGED:t1"]
    );
    assert!(h.core.task(&fw(), &tid("t1")).is_none());
    assert!(h.core.executor(&fw(), &ex()).unwrap().launched.is_empty());
    assert_eq!(
        h.core.frameworks().count(),
        1,
        "the framework stays while its executor runs"
    );
}

#[test]
fn bad_executor_calls_are_refused_with_a_reason() {
    let mut h = Harness::new();
    assert!(matches!(
        h.core
            .executor_subscribe(h.at(0), &fw(), &ex(), 1, Subscribe::default()),
        Err(ExecutorCallError::UnknownFramework(_))
    ));
    h.run("t1", 0);
    let unknown = ExecutorId::new("nope");
    assert!(matches!(
        h.core
            .executor_subscribe(h.at(0), &fw(), &unknown, 1, Subscribe::default()),
        Err(ExecutorCallError::UnknownExecutor { .. })
    ));
    assert!(matches!(
        h.core.executor_update(
            h.at(0),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskRunning, 1)
        ),
        Err(ExecutorCallError::NotSubscribed(_))
    ));
    h.subscribe(1, 1);
    assert!(matches!(
        h.core.executor_update(
            h.at(1),
            &fw(),
            &ex(),
            executor_status("other", TaskState::TaskRunning, 1)
        ),
        Err(ExecutorCallError::UnknownTask { .. })
    ));
    let mut no_uuid = executor_status("t1", TaskState::TaskRunning, 1);
    no_uuid.uuid = Some("not base64!".into());
    assert!(matches!(
        h.core.executor_update(h.at(1), &fw(), &ex(), no_uuid),
        Err(ExecutorCallError::BadUpdate(_))
    ));
    assert!(matches!(
        h.core.executor_update(
            h.at(1),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskStaging, 2)
        ),
        Err(ExecutorCallError::BadUpdate(_))
    ));
    // An older connection closing does not unsubscribe the newer one.
    h.subscribe(2, 2);
    h.core.executor_unsubscribed(&fw(), &ex(), 1);
    assert_eq!(h.core.executor(&fw(), &ex()).unwrap().subscription, Some(2));
    h.core.executor_unsubscribed(&fw(), &ex(), 2);
    assert_eq!(h.core.executor(&fw(), &ex()).unwrap().subscription, None);

    // An executor without a command is refused at launch.
    let mut task = executor_task("bad");
    task.executor.as_mut().unwrap().command = None;
    h.core.run_task(h.at(3), framework(true), task);
    let error = h.last_pending("bad");
    assert_eq!(error.state, TaskState::TaskError);
    assert!(error.message.unwrap().contains("no 'command'"));
}

#[test]
fn an_executor_that_never_subscribes_is_killed_and_its_tasks_fail() {
    let mut h = Harness::new();
    h.run("t1", 0);
    h.core.executor_spawned(&fw(), &ex(), 4242);
    assert!(kills(&h.core.tick(h.at(59))).is_empty());
    let effects = h.core.tick(h.at(60));
    assert_eq!(kills(&effects), vec![Duration::ZERO]);
    let failed = h.last_pending("t1");
    assert_eq!(failed.state, TaskState::TaskFailed);
    assert_eq!(
        failed.reason.as_deref(),
        Some(REASON_EXECUTOR_REGISTRATION_TIMEOUT)
    );
    assert_eq!(failed.source, Some(StatusSource::SourceAgent));
    assert_eq!(failed.executor_id, Some(ex()));
    // Too late to subscribe now; the exit that follows changes no task.
    assert!(matches!(
        h.core
            .executor_subscribe(h.at(61), &fw(), &ex(), 1, Subscribe::default()),
        Err(ExecutorCallError::Terminating(_))
    ));
    let effects = h
        .core
        .executor_exited(h.at(61), &fw(), &ex(), Exit::Signal(9));
    assert!(effects
        .iter()
        .all(|e| matches!(e, Effect::ExecutorExited { .. })));
    assert!(h.core.executor(&fw(), &ex()).is_none());
}

#[test]
fn an_executor_exit_fails_its_unfinished_tasks_and_tells_the_master() {
    let mut h = Harness::new();
    h.subscribed_with("t1");
    h.run("t2", 1);
    h.core
        .executor_update(
            h.at(2),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskRunning, 50),
        )
        .unwrap();
    let effects = h.core.executor_exited(h.at(3), &fw(), &ex(), Exit::Code(3));
    assert!(effects.contains(&Effect::ExecutorExited {
        framework_id: fw(),
        executor_id: ex(),
        status: 3 << 8,
    }));
    for task in ["t1", "t2"] {
        let failed = h.last_pending(task);
        assert_eq!(failed.state, TaskState::TaskFailed, "{task}");
        assert_eq!(failed.reason.as_deref(), Some(REASON_EXECUTOR_TERMINATED));
        assert_eq!(failed.source, Some(StatusSource::SourceAgent));
        assert!(failed.message.unwrap().contains("exited with status 3"));
    }
    assert!(h.core.executor(&fw(), &ex()).is_none());
    assert_eq!(
        h.core
            .frameworks()
            .next()
            .unwrap()
            .completed_executors
            .len(),
        1
    );
    assert_eq!(h.core.used_resources().scalar("mem"), 0.0);
}

#[test]
fn kills_go_to_the_executor_or_end_a_queued_task_at_once() {
    let mut h = Harness::new();
    h.run("queued", 0);
    let effects = h.core.kill_task(h.at(1), &fw(), &tid("queued"), None);
    assert!(events(&effects).is_empty());
    let killed = h.last_pending("queued");
    assert_eq!(killed.state, TaskState::TaskKilled);
    assert_eq!(
        killed.reason.as_deref(),
        Some(REASON_TASK_KILLED_DURING_LAUNCH)
    );

    h.run("t1", 1);
    h.core.executor_spawned(&fw(), &ex(), 4242);
    let effects = h.subscribe(2, 1);
    assert_eq!(
        events(&effects),
        vec!["SUBSCRIBED", "LAUNCH:t1"],
        "the killed task is not delivered"
    );
    let policy = KillPolicy {
        grace_period: Some(proto::DurationInfo {
            nanoseconds: 2_000_000_000,
        }),
    };
    let effects = h.core.kill_task(h.at(3), &fw(), &tid("t1"), Some(&policy));
    assert_eq!(events(&effects), vec!["KILL:t1"]);
    let Effect::SendToExecutor { event, .. } = &effects[0] else {
        panic!()
    };
    assert_eq!(event.kill.as_ref().unwrap().kill_policy, Some(policy));
    assert_eq!(
        h.state("t1"),
        TaskState::TaskStaging,
        "the executor reports the outcome"
    );
    // A kill while it is disconnected is repeated when it subscribes again (listing t1, which it
    // received and has not reported on yet).
    h.core.executor_unsubscribed(&fw(), &ex(), 1);
    assert!(events(&h.core.kill_task(h.at(4), &fw(), &tid("t1"), None)).is_empty());
    assert_eq!(
        events(&h.resubscribe(5, 2, &["t1"], Vec::new())),
        vec!["SUBSCRIBED", "KILL:t1"]
    );
}

#[test]
fn framework_shutdown_sends_shutdown_then_kills_after_the_grace_period() {
    let mut h = Harness::new();
    h.subscribed_with("t1");
    let effects = h.core.shutdown_framework(h.at(10), &fw());
    assert_eq!(events(&effects), vec!["SHUTDOWN"]);
    assert!(kills(&effects).is_empty());
    assert!(
        kills(&h.core.tick(h.at(14))).is_empty(),
        "within the 5 s grace"
    );
    assert_eq!(kills(&h.core.tick(h.at(15))), vec![Duration::ZERO]);
    assert!(kills(&h.core.tick(h.at(16))).is_empty(), "killed once");
    h.core
        .executor_exited(h.at(16), &fw(), &ex(), Exit::Signal(9));
    let ended = h.last_pending("t1");
    assert_eq!(ended.state, TaskState::TaskKilled);
    assert_eq!(ended.reason.as_deref(), Some(REASON_EXECUTOR_TERMINATED));
}

#[test]
fn framework_messages_reach_a_subscribed_executor_only() {
    let mut h = Harness::new();
    h.run("t1", 0);
    assert!(h
        .core
        .framework_message(&fw(), &ex(), "aGk=".into())
        .is_empty());
    h.subscribe(1, 1);
    let effects = h.core.framework_message(&fw(), &ex(), "aGk=".into());
    assert_eq!(events(&effects), vec!["MESSAGE"]);
    assert!(h.core.executor_may_send(&fw(), &ex()).is_ok());
    assert!(matches!(
        h.core.executor_may_send(&fw(), &ExecutorId::new("x")),
        Err(ExecutorCallError::UnknownExecutor { .. })
    ));
}

#[test]
fn a_non_checkpointing_framework_leaves_mesos_checkpoint_unset() {
    let mut h = Harness::new();
    let effects = h
        .core
        .run_task(h.at(0), framework(false), executor_task("t1"));
    let Some(Effect::LaunchExecutor(launch)) = effects
        .iter()
        .find(|e| matches!(e, Effect::LaunchExecutor(_)))
    else {
        panic!("{effects:?}")
    };
    // pymesos: `bool(env.get('MESOS_CHECKPOINT'))`.
    assert!(launch
        .env
        .iter()
        .all(|(k, _)| k != "MESOS_CHECKPOINT" && k != "MESOS_RECOVERY_TIMEOUT"));
}

// ---- SUBSCRIBE again: `unacknowledged_tasks` (mesos-http-api.md 9) ----

fn partition_aware_framework() -> FrameworkInfo {
    let mut info = framework(true);
    info.capabilities =
        serde_json::from_value(serde_json::json!([{"type": "PARTITION_AWARE"}])).unwrap();
    info
}

/// The updates the agent makes itself among `effects`, as (task, status).
fn agent_updates(effects: &[Effect]) -> Vec<(String, TaskStatus)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(update) => {
                Some((update.status.task_id.value.clone(), update.status.clone()))
            }
            _ => None,
        })
        .collect()
}

/// `t1` running (its TASK_RUNNING acknowledged), then `t2` and `t3` delivered to the subscribed
/// executor, which reports nothing on them before the agent is killed.
fn three_tasks_then_restart(framework: FrameworkInfo) -> Harness {
    let mut h = Harness::new();
    h.core
        .run_task(h.at(0), framework.clone(), executor_task("t1"));
    h.core.executor_spawned(&fw(), &ex(), 4242);
    h.subscribe(1, 1);
    h.core
        .executor_update(
            h.at(2),
            &fw(),
            &ex(),
            executor_status("t1", TaskState::TaskRunning, 1),
        )
        .unwrap();
    h.core
        .acknowledge(h.at(2), &fw(), &tid("t1"), &executor_uuid(1));
    for id in ["t2", "t3"] {
        let effects = h
            .core
            .run_task(h.at(3), framework.clone(), executor_task(id));
        assert_eq!(events(&effects), vec![format!("LAUNCH:{id}")]);
    }
    let h = h.restarted(10);
    assert_eq!(h.state("t1"), TaskState::TaskRunning);
    assert_eq!(h.state("t2"), TaskState::TaskStaging);
    assert_eq!(h.state("t3"), TaskState::TaskStaging);
    h
}

#[test]
fn after_a_restart_a_delivered_task_the_executor_does_not_list_is_lost_and_a_listed_one_kept() {
    let mut h = three_tasks_then_restart(framework(true));
    // It received t2 (and lists it); t3 never reached it.
    let effects = h.resubscribe(11, 1, &["t2"], Vec::new());
    assert_eq!(
        events(&effects),
        vec!["SUBSCRIBED"],
        "nothing is delivered again"
    );
    let updates = agent_updates(&effects);
    assert_eq!(updates.len(), 1, "{updates:?}");
    let (task, lost) = &updates[0];
    assert_eq!(task, "t3");
    assert_eq!(lost.state, TaskState::TaskLost);
    assert_eq!(lost.reason.as_deref(), Some(REASON_AGENT_RESTARTED));
    assert_eq!(lost.source, Some(StatusSource::SourceAgent));
    assert_eq!(lost.executor_id, Some(ex()));
    assert!(lost.uuid.is_some(), "reliable: retried until acknowledged");
    assert!(lost
        .message
        .as_deref()
        .unwrap()
        .contains("never received it"));
    assert!(
        h.core.drain_checkpoints().iter().any(|op| matches!(op,
            CheckpointOp::Update { task_id, record: UpdateRecord::Update { status, .. }, .. }
                if task_id == &tid("t3") && status.state == TaskState::TaskLost)),
        "checkpointed before it is sent"
    );
    let executor = h.core.executor(&fw(), &ex()).unwrap();
    assert_eq!(
        executor.launched.iter().cloned().collect::<Vec<_>>(),
        vec![tid("t1"), tid("t2")]
    );
    assert_eq!(
        h.state("t1"),
        TaskState::TaskRunning,
        "a task it reported on is not its to list"
    );
    assert_eq!(
        h.state("t2"),
        TaskState::TaskStaging,
        "launched, waiting for its update"
    );

    // The kept task goes on: the executor's update for it is taken.
    let effects = h
        .core
        .executor_update(
            h.at(12),
            &fw(),
            &ex(),
            executor_status("t2", TaskState::TaskRunning, 2),
        )
        .unwrap();
    assert_eq!(agent_updates(&effects)[0].1.state, TaskState::TaskRunning);
    assert_eq!(h.state("t2"), TaskState::TaskRunning);
    // It subscribed in time: the reregistration timeout neither kills it nor ends its tasks.
    let later = h.core.tick(h.at(60));
    assert!(kills(&later).is_empty(), "{later:?}");
    assert!(
        agent_updates(&later)
            .iter()
            .all(|(_, s)| !s.state.is_terminal() || s.state == TaskState::TaskLost),
        "only resends: {later:?}"
    );
    assert_eq!(h.state("t1"), TaskState::TaskRunning);
    assert_eq!(h.state("t2"), TaskState::TaskRunning);
}

#[test]
fn a_partition_aware_framework_gets_task_dropped_for_a_task_the_executor_never_got() {
    let mut h = three_tasks_then_restart(partition_aware_framework());
    let effects = h.resubscribe(11, 1, &["t2"], Vec::new());
    let updates = agent_updates(&effects);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].0, "t3");
    assert_eq!(updates[0].1.state, TaskState::TaskDropped);
    assert_eq!(updates[0].1.reason.as_deref(), Some(REASON_AGENT_RESTARTED));
}

#[test]
fn a_task_whose_update_the_executor_resends_is_known_to_it() {
    let mut h = three_tasks_then_restart(framework(true));
    // It sent TASK_RUNNING for t3 but the agent died before checkpointing it; it no longer lists
    // t3 as a task without updates. The replayed update makes t3 known, not lost.
    let running = executor_status("t3", TaskState::TaskRunning, 3);
    let effects = h.resubscribe(11, 1, &["t2"], vec![running]);
    let updates = agent_updates(&effects);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].0, "t3");
    assert_eq!(updates[0].1.state, TaskState::TaskRunning);
    assert_eq!(updates[0].1.source, Some(StatusSource::SourceExecutor));
    assert_eq!(h.state("t3"), TaskState::TaskRunning);
    assert_eq!(h.state("t2"), TaskState::TaskStaging);
}

#[test]
fn tasks_it_lists_that_are_not_its_own_here_are_ignored() {
    let mut h = three_tasks_then_restart(framework(true));
    let effects = h.resubscribe(11, 1, &["t2", "t3", "nobody-knows"], Vec::new());
    assert_eq!(events(&effects), vec!["SUBSCRIBED"]);
    assert!(agent_updates(&effects).is_empty(), "{effects:?}");
    assert!(h.core.task(&fw(), &tid("nobody-knows")).is_none());
    assert_eq!(h.state("t2"), TaskState::TaskStaging);
    assert_eq!(h.state("t3"), TaskState::TaskStaging);
}

#[test]
fn the_first_subscription_loses_none_of_the_queued_tasks_it_delivers() {
    let mut h = Harness::new();
    h.run("t1", 0);
    h.run("t2", 0);
    h.core.executor_spawned(&fw(), &ex(), 4242);
    let effects = h.subscribe(1, 1);
    assert_eq!(
        events(&effects),
        vec!["SUBSCRIBED", "LAUNCH:t1", "LAUNCH:t2"]
    );
    assert!(agent_updates(&effects).is_empty(), "{effects:?}");
    assert_eq!(h.state("t1"), TaskState::TaskStaging);
}

#[test]
fn a_reconnecting_executor_without_a_delivered_task_loses_it_and_gets_no_kill_for_it() {
    // No restart: the connection broke after the agent sent LAUNCH, before the executor read it.
    let mut h = Harness::new();
    h.subscribed_with("t1");
    h.run("t2", 2);
    h.core.executor_unsubscribed(&fw(), &ex(), 1);
    // A kill asked for while it is away would go out on SUBSCRIBE, were the task still its own.
    h.core.kill_task(h.at(3), &fw(), &tid("t1"), None);
    let effects = h.resubscribe(4, 2, &["t2"], Vec::new());
    assert_eq!(
        events(&effects),
        vec!["SUBSCRIBED"],
        "no KILL for a task it never had"
    );
    let updates = agent_updates(&effects);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        (updates[0].0.as_str(), updates[0].1.state),
        ("t1", TaskState::TaskLost)
    );
    assert_eq!(h.state("t2"), TaskState::TaskStaging);
}
