//! Unit tests of the pure core: every scenario drives `Core` with explicit times and checks effects.

use super::*;
use proto::{ExecutorInfo, FrameworkCapability};
use std::time::{Duration, Instant};

struct Harness {
    core: Core,
    t0: Instant,
}

fn framework(id: &str) -> FrameworkInfo {
    serde_json::from_value(serde_json::json!({"user": "u", "name": "fw", "id": {"value": id}}))
        .unwrap()
}

fn command_task(id: &str, command: &str) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": "S1"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}],
        "command": {"value": command}
    }))
    .unwrap()
}

fn fw() -> FrameworkId {
    FrameworkId::new("F1")
}

fn tid(id: &str) -> TaskId {
    TaskId::new(id)
}

impl Harness {
    fn new() -> Self {
        let mut counter = 0u128;
        let uuids = Box::new(move || {
            counter += 1;
            uuid::Uuid::from_u128(counter)
        });
        Harness {
            core: Core::new(PathBuf::from("/w"), Duration::from_secs(5), uuids),
            t0: Instant::now(),
        }
    }

    fn at(&self, secs: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_secs(secs),
            wall: 1_700_000_000.0 + secs as f64,
        }
    }

    fn register(&mut self, secs: u64) -> Vec<Effect> {
        let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m1".into());
        let now = self.at(secs);
        self.core.registered(now, AgentId::new("S1"), master)
    }

    /// Registers, runs `id`, reports it spawned; acks nothing.
    fn started(&mut self, id: &str) -> Vec<Effect> {
        if !self.core.is_connected() {
            self.register(0);
        }
        let mut effects =
            self.core
                .run_task(self.at(0), framework("F1"), command_task(id, "sleep 600"));
        effects.extend(self.core.spawned(self.at(0), &fw(), &tid(id), 4242));
        effects
    }

    fn ack_head(&mut self, id: &str, secs: u64) -> Vec<Effect> {
        let head = self
            .core
            .pending_updates(&fw(), &tid(id))
            .first()
            .and_then(|s| s.uuid.clone())
            .unwrap();
        self.core.acknowledge(self.at(secs), &fw(), &tid(id), &head)
    }
}

fn sent(effects: &[Effect]) -> Vec<(TaskState, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(u) => Some((u.status.state, u.status.uuid.clone().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

fn states(effects: &[Effect]) -> Vec<TaskState> {
    sent(effects).into_iter().map(|(s, _)| s).collect()
}

#[test]
fn a_command_task_runs_to_completion() {
    let mut h = Harness::new();
    h.register(0);
    let effects = h
        .core
        .run_task(h.at(0), framework("F1"), command_task("t1", "echo hello"));
    assert_eq!(states(&effects), vec![TaskState::TaskStarting]);
    let Some(Effect::Launch(spec)) = effects.last() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        spec.sandbox,
        PathBuf::from(format!(
            "/w/slaves/S1/frameworks/F1/executors/t1/runs/{}",
            spec.container_id
        ))
    );
    let Effect::Send(starting) = &effects[0] else {
        panic!()
    };
    let status = &starting.status;
    assert_eq!(status.agent_id, Some(AgentId::new("S1")));
    assert_eq!(status.executor_id, Some(ExecutorId::new("t1")));
    assert_eq!(status.source, Some(StatusSource::SourceExecutor));
    assert_eq!(status.timestamp, Some(1_700_000_000.0));
    // uuid: base64 (standard, padded) of 16 bytes.
    let uuid = status.uuid.clone().unwrap();
    assert_eq!(uuid.len(), 24);
    assert!(uuid.ends_with("=="));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&uuid)
            .unwrap()
            .len(),
        16
    );

    // RUNNING queues behind the unacknowledged STARTING.
    assert!(states(&h.core.spawned(h.at(1), &fw(), &tid("t1"), 99)).is_empty());
    assert_eq!(h.core.processes_running(), 1);
    assert_eq!(states(&h.ack_head("t1", 1)), vec![TaskState::TaskRunning]);
    assert!(states(&h.core.exited(h.at(2), &fw(), &tid("t1"), Exit::Code(0))).is_empty());
    let finished = h.ack_head("t1", 2);
    assert_eq!(states(&finished), vec![TaskState::TaskFinished]);
    let Effect::Send(update) = &finished[0] else {
        panic!()
    };
    assert_eq!(
        update.status.message.as_deref(),
        Some("Command exited with status 0")
    );
    assert_eq!(
        h.core.task(&fw(), &tid("t1")).unwrap().state,
        TaskState::TaskFinished
    );
    // The last ack completes the task, and the idle framework completes too.
    assert!(h.ack_head("t1", 3).is_empty());
    assert!(h.core.task(&fw(), &tid("t1")).is_none());
    assert_eq!(h.core.frameworks().count(), 0);
    let completed: Vec<_> = h.core.completed_frameworks().collect();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].completed.len(), 1);
    assert_eq!(completed[0].completed[0].statuses.len(), 3);
    assert!(h.core.find_run("F1", "t1", "latest").is_some());
    assert_eq!(h.core.terminal_count(TaskState::TaskFinished), 1);
}

#[test]
fn out_of_order_and_stale_acks_are_ignored() {
    let mut h = Harness::new();
    h.started("t1");
    h.core.exited(h.at(1), &fw(), &tid("t1"), Exit::Code(3));
    let pending = h.core.pending_updates(&fw(), &tid("t1"));
    assert_eq!(
        pending.iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFailed
        ]
    );
    let uuid = |i: usize| pending[i].uuid.clone().unwrap();
    // Acknowledging the third before the first changes nothing.
    assert!(h
        .core
        .acknowledge(h.at(1), &fw(), &tid("t1"), &uuid(2))
        .is_empty());
    assert_eq!(h.core.pending_updates(&fw(), &tid("t1")).len(), 3);
    // A made-up uuid, and a task with no stream, are ignored.
    assert!(h
        .core
        .acknowledge(h.at(1), &fw(), &tid("t1"), "bogus")
        .is_empty());
    assert!(h
        .core
        .acknowledge(h.at(1), &fw(), &tid("nope"), &uuid(0))
        .is_empty());
    assert_eq!(
        sent(&h.core.acknowledge(h.at(1), &fw(), &tid("t1"), &uuid(0))),
        vec![(TaskState::TaskRunning, uuid(1))]
    );
    // The same ack again is stale.
    assert!(h
        .core
        .acknowledge(h.at(1), &fw(), &tid("t1"), &uuid(0))
        .is_empty());
    assert_eq!(h.core.pending_updates(&fw(), &tid("t1")).len(), 2);
    let failed = h.core.acknowledge(h.at(1), &fw(), &tid("t1"), &uuid(1));
    let Some(Effect::Send(update)) = failed.first() else {
        panic!()
    };
    assert_eq!(
        update.status.reason.as_deref(),
        Some(REASON_COMMAND_EXECUTOR_FAILED)
    );
    assert_eq!(
        update.status.message.as_deref(),
        Some("Command exited with status 3")
    );
}

#[test]
fn unacknowledged_heads_are_resent_with_backoff() {
    let mut h = Harness::new();
    let first = sent(&h.started("t1"));
    assert_eq!(first.len(), 1);
    assert!(h.core.tick(h.at(9)).is_empty());
    assert_eq!(sent(&h.core.tick(h.at(10))), first);
    assert!(h.core.tick(h.at(29)).is_empty());
    assert_eq!(sent(&h.core.tick(h.at(30))), first);
    assert_eq!(h.core.next_retry(), Some(h.at(70).at));
    // After the ack, the next update starts a fresh 10 s timer.
    let next = sent(&h.ack_head("t1", 31));
    assert_eq!(next[0].0, TaskState::TaskRunning);
    assert_eq!(h.core.next_retry(), Some(h.at(41).at));
    assert_eq!(sent(&h.core.tick(h.at(41))), next);
}

#[test]
fn updates_made_while_disconnected_wait_for_reregistration() {
    let mut h = Harness::new();
    h.started("t1");
    h.started("t2");
    h.core.disconnected();
    assert!(h.core.tick(h.at(100)).is_empty());
    // Exits while disconnected queue their updates.
    assert!(h
        .core
        .exited(h.at(5), &fw(), &tid("t2"), Exit::Signal(9))
        .is_empty());
    let (reported, frameworks) = h.core.reregistration_report();
    assert_eq!(
        reported
            .iter()
            .map(|t| t.task.task_id.value.as_str())
            .collect::<Vec<_>>(),
        vec!["t1"]
    );
    assert_eq!(reported[0].state, TaskState::TaskRunning);
    assert_eq!(frameworks.len(), 1);
    // Reregistration resends each task's head: both STARTINGs, nothing else.
    let resent = h.register(200);
    assert_eq!(
        states(&resent),
        vec![TaskState::TaskStarting, TaskState::TaskStarting]
    );
    h.ack_head("t2", 201);
    h.ack_head("t2", 201);
    let failed = h.core.pending_updates(&fw(), &tid("t2"));
    assert_eq!(failed[0].state, TaskState::TaskFailed);
    assert_eq!(
        failed[0].message.as_deref(),
        Some("Command terminated with signal Killed")
    );
}

#[test]
fn invalid_and_duplicate_tasks_get_task_error() {
    let mut h = Harness::new();
    h.register(0);
    let mut no_command = command_task("bad", "x");
    no_command.command = None;
    let effects = h
        .core
        .run_task(h.at(0), framework("F1"), no_command.clone());
    let [Effect::Send(update)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(update.status.state, TaskState::TaskError);
    assert_eq!(update.status.reason.as_deref(), Some(REASON_TASK_INVALID));
    assert!(update
        .status
        .message
        .as_deref()
        .unwrap()
        .contains("neither"));

    let mut executor_only = no_command;
    executor_only.task_id = tid("exec");
    executor_only.executor = Some(ExecutorInfo {
        executor_id: ExecutorId::new("e"),
        framework_id: None,
        // Custom executors run (`executor_tests.rs`), but only with a command to start them.
        command: None,
        resources: vec![],
        kind: None,
        name: None,
        source: None,
        container: None,
        shutdown_grace_period: None,
        labels: None,
        data: None,
    });
    let effects = h.core.run_task(h.at(0), framework("F1"), executor_only);
    let [Effect::Send(update)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(update
        .status
        .message
        .as_deref()
        .unwrap()
        .contains("has no 'command'"));

    h.started("t1");
    let effects = h
        .core
        .run_task(h.at(1), framework("F1"), command_task("t1", "true"));
    assert!(effects.iter().all(|e| !matches!(e, Effect::Launch(_))));
    let queued = h.core.pending_updates(&fw(), &tid("t1"));
    assert_eq!(queued.last().unwrap().state, TaskState::TaskError);
    assert!(queued
        .last()
        .unwrap()
        .message
        .as_deref()
        .unwrap()
        .contains("already running"));
    // The running task is untouched.
    assert_eq!(
        h.core.task(&fw(), &tid("t1")).unwrap().state,
        TaskState::TaskRunning
    );

    let escaping = command_task("../x", "true");
    let effects = h.core.run_task(h.at(1), framework("F1"), escaping);
    assert!(effects.iter().all(|e| !matches!(e, Effect::Launch(_))));
}

#[test]
fn kills_use_the_call_policy_then_the_task_policy_then_the_default() {
    let mut h = Harness::new();
    h.register(0);
    let mut task = command_task("t1", "sleep 600");
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(proto::DurationInfo::from_secs_f64(7.0)),
    });
    h.core.run_task(h.at(0), framework("F1"), task);
    h.core.spawned(h.at(0), &fw(), &tid("t1"), 1);
    let kill = |grace: u64| Effect::Kill {
        framework_id: fw(),
        task_id: tid("t1"),
        grace: Duration::from_secs(grace),
    };
    assert_eq!(
        h.core.kill_task(h.at(1), &fw(), &tid("t1"), None),
        vec![kill(7)]
    );
    let policy = KillPolicy {
        grace_period: Some(proto::DurationInfo::from_secs_f64(2.0)),
    };
    assert_eq!(
        h.core.kill_task(h.at(1), &fw(), &tid("t1"), Some(&policy)),
        vec![kill(2)]
    );
    h.core.exited(h.at(2), &fw(), &tid("t1"), Exit::Signal(15));
    let last = h.core.pending_updates(&fw(), &tid("t1")).pop().unwrap();
    assert_eq!(last.state, TaskState::TaskKilled);
    assert_eq!(h.core.terminal_count(TaskState::TaskKilled), 1);
    // Killing a finished task does nothing.
    assert!(h
        .core
        .kill_task(h.at(3), &fw(), &tid("t1"), None)
        .is_empty());

    h.started("t2");
    assert_eq!(
        h.core.kill_task(h.at(3), &fw(), &tid("t2"), None),
        vec![Effect::Kill {
            framework_id: fw(),
            task_id: tid("t2"),
            grace: DEFAULT_KILL_GRACE
        }]
    );
}

#[test]
fn a_kill_before_the_spawn_is_delivered_on_spawn() {
    let mut h = Harness::new();
    h.register(0);
    h.core
        .run_task(h.at(0), framework("F1"), command_task("t1", "sleep 600"));
    // The launch is told to stop fetching (a no-op once the process is being spawned).
    assert_eq!(
        h.core.kill_task(h.at(0), &fw(), &tid("t1"), None),
        vec![Effect::AbortLaunch {
            framework_id: fw(),
            task_id: tid("t1")
        }]
    );
    // A second kill asks nothing new.
    assert!(h
        .core
        .kill_task(h.at(0), &fw(), &tid("t1"), None)
        .is_empty());
    let effects = h.core.spawned(h.at(0), &fw(), &tid("t1"), 5);
    assert_eq!(
        effects,
        vec![Effect::Kill {
            framework_id: fw(),
            task_id: tid("t1"),
            grace: DEFAULT_KILL_GRACE
        }]
    );
    h.core.exited(h.at(1), &fw(), &tid("t1"), Exit::Code(0));
    assert_eq!(
        h.core.task(&fw(), &tid("t1")).unwrap().state,
        TaskState::TaskKilled
    );
}

#[test]
fn frameworks_with_task_killing_state_see_task_killing() {
    let mut h = Harness::new();
    h.register(0);
    let mut info = framework("F1");
    info.capabilities = vec![FrameworkCapability {
        kind: "TASK_KILLING_STATE".into(),
    }];
    h.core
        .run_task(h.at(0), info, command_task("t1", "sleep 600"));
    h.core.spawned(h.at(0), &fw(), &tid("t1"), 5);
    h.core.kill_task(h.at(1), &fw(), &tid("t1"), None);
    let states: Vec<_> = h
        .core
        .pending_updates(&fw(), &tid("t1"))
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling
        ]
    );
}

#[test]
fn spawn_failures_fail_the_task() {
    let mut h = Harness::new();
    h.register(0);
    h.core
        .run_task(h.at(0), framework("F1"), command_task("t1", "x"));
    h.core
        .spawn_failed(h.at(0), &fw(), &tid("t1"), "No such file or directory");
    let failed = h.core.pending_updates(&fw(), &tid("t1")).pop().unwrap();
    assert_eq!(failed.state, TaskState::TaskFailed);
    assert_eq!(
        failed.reason.as_deref(),
        Some(REASON_CONTAINER_LAUNCH_FAILED)
    );
    assert_eq!(failed.source, Some(StatusSource::SourceAgent));
}

#[test]
fn a_launch_that_fails_after_a_kill_ends_the_task_killed() {
    let mut h = Harness::new();
    h.register(0);
    h.core
        .run_task(h.at(0), framework("F1"), command_task("t1", "x"));
    h.core.kill_task(h.at(0), &fw(), &tid("t1"), None);
    h.core.spawn_failed(
        h.at(1),
        &fw(),
        &tid("t1"),
        "the task was killed while its URIs were fetched",
    );
    let killed = h.core.pending_updates(&fw(), &tid("t1")).pop().unwrap();
    assert_eq!(killed.state, TaskState::TaskKilled);
    assert_eq!(
        killed.reason.as_deref(),
        Some(REASON_TASK_KILLED_DURING_LAUNCH)
    );
    assert!(killed
        .message
        .unwrap()
        .contains("killed while its URIs were fetched"));
}

#[test]
fn shutdown_framework_bounds_grace_by_the_shutdown_period() {
    let mut h = Harness::new();
    h.register(0);
    let mut task = command_task("t1", "sleep 600");
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(proto::DurationInfo::from_secs_f64(60.0)),
    });
    h.core.run_task(h.at(0), framework("F1"), task);
    h.core.spawned(h.at(0), &fw(), &tid("t1"), 1);
    h.started("t2");
    let effects = h.core.shutdown_framework(h.at(1), &fw());
    let graces: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Kill { grace, .. } => Some(*grace),
            _ => None,
        })
        .collect();
    assert_eq!(graces, vec![Duration::from_secs(5), DEFAULT_KILL_GRACE]);
    assert_eq!(h.core.shutdown_all(h.at(1)).len(), 2);
}

#[test]
fn reconciliation_resends_the_latest_status_as_a_new_update() {
    let mut h = Harness::new();
    h.started("t1");
    h.ack_head("t1", 0);
    h.ack_head("t1", 0);
    assert!(h.core.pending_updates(&fw(), &tid("t1")).is_empty());
    let effects = h.core.reconcile(h.at(5), &fw(), &[]);
    let first = sent(&effects);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, TaskState::TaskRunning);
    let original = h
        .core
        .task(&fw(), &tid("t1"))
        .unwrap()
        .statuses
        .last()
        .unwrap()
        .uuid
        .clone()
        .unwrap();
    assert_ne!(first[0].1, original);
    // With an update in flight, reconciliation resends that head.
    let again = h.core.reconcile(h.at(6), &fw(), &[tid("t1")]);
    assert_eq!(sent(&again), first);
    assert!(h.core.reconcile(h.at(6), &fw(), &[tid("other")]).is_empty());
}

#[test]
fn relaunching_a_finished_task_id_keeps_history() {
    let mut h = Harness::new();
    h.started("t1");
    h.core.exited(h.at(1), &fw(), &tid("t1"), Exit::Code(0));
    // Not all acknowledged yet, but the id may run again.
    let effects = h
        .core
        .run_task(h.at(2), framework("F1"), command_task("t1", "true"));
    let Some(Effect::Launch(second)) = effects.last() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        h.core.find_run("F1", "t1", "latest").unwrap().container_id,
        second.container_id
    );
    let first = h.core.frameworks().next().unwrap().completed[0]
        .container_id
        .clone();
    assert_ne!(first, second.container_id);
    assert!(h.core.find_run("F1", "t1", &first.value).is_some());
}
