//! Recovery against the in-memory launcher: checkpoints written by a real core, read back, settled.

use super::*;
use crate::checkpoint::Writer;
use crate::core::{Exit, Process};
use crate::launcher_client::fake::FakeLauncher;
use proto::{AgentId, FrameworkId, MasterInfo, TaskId, TaskState};
use std::path::PathBuf;
use std::time::Instant;

fn now() -> Now {
    Now {
        at: Instant::now(),
        wall: 1_700_000_100.0,
    }
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        id: None,
        hostname: "h".into(),
        port: 5051,
        resources: Vec::new(),
        attributes: Vec::new(),
    }
}

fn new_core(work_dir: &Path) -> Core {
    Core::new(
        work_dir.to_path_buf(),
        Duration::from_secs(5),
        Box::new(uuid::Uuid::new_v4),
    )
}

fn sent_states(effects: &[Effect]) -> Vec<(String, TaskState, Option<String>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(u) => Some((
                u.status.task_id.value.clone(),
                u.status.state,
                u.status.uuid.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// An agent's first life: tasks `ids` launched through `fake`; `running` of them spawned.
/// Returns the containers by task id.
fn first_life(
    work_dir: &Path,
    fake: &FakeLauncher,
    ids: &[&str],
    partition_aware: bool,
) -> Vec<(String, String)> {
    let writer = Writer::new(
        crate::checkpoint::layout::meta_dir(work_dir),
        agent_info(),
        1,
        Default::default(),
    );
    let mut core = new_core(work_dir);
    let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m".into());
    core.registered(now(), AgentId::new("S1"), master);
    let capabilities = if partition_aware {
        serde_json::json!([{"type": "PARTITION_AWARE"}])
    } else {
        serde_json::json!([])
    };
    let framework: proto::FrameworkInfo = serde_json::from_value(serde_json::json!({
        "user": "u", "name": "fw", "id": {"value": "F1"}, "capabilities": capabilities
    }))
    .unwrap();
    let mut containers = Vec::new();
    for id in ids {
        let task = serde_json::from_value(serde_json::json!({
            "name": id, "task_id": {"value": id}, "agent_id": {"value": "S1"}, "command": {"value": "sleep 600"}
        }))
        .unwrap();
        let effects = core.run_task(now(), framework.clone(), task);
        let Some(Effect::Launch(spec)) = effects.last() else {
            panic!("{effects:?}")
        };
        containers.push((id.to_string(), spec.container_id.value.clone()));
    }
    assert!(writer.commit(&core.drain_checkpoints()).is_empty());
    for (id, container) in &containers {
        // The launch reached the launcher; the agent checkpointed TASK_RUNNING.
        let request = crate::launcher_protocol::LaunchRequest {
            container_id: container.clone(),
            program: "/bin/sh".into(),
            argv: vec![],
            env: vec![],
            cwd: PathBuf::from("/"),
            stdout: PathBuf::from("/dev/null"),
            stderr: PathBuf::from("/dev/null"),
            checkpoint_dir: PathBuf::from("/nonexistent"),
            isolation: serde_json::Value::Null,
        };
        fake.launch(request);
        let pid = fake.state().running[container];
        core.spawned(
            now(),
            &FrameworkId::new("F1"),
            &TaskId::new(id.clone()),
            pid,
        );
    }
    assert!(writer.commit(&core.drain_checkpoints()).is_empty());
    writer.flush();
    containers
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tepui-recovery-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn decisions_follow_the_evidence_in_order() {
    let same = |_pid: u32| Some(77u64);
    let forked = Some(Forked {
        pid: 4242,
        start_time: Some(77),
    });
    let running = Evidence {
        running: Some(10),
        exited: Some(0),
        forked,
        ..Default::default()
    };
    assert_eq!(decide(&running, same), Decision::Reattach { pid: 10 });
    let exited = Evidence {
        exited: Some(256),
        exit_file: Some(0),
        ..Default::default()
    };
    assert_eq!(decide(&exited, same), Decision::Exited { wait_status: 256 });
    let on_disk = Evidence {
        exit_file: Some(9),
        ..Default::default()
    };
    assert_eq!(decide(&on_disk, same), Decision::Exited { wait_status: 9 });
    // The launcher forgot it, but its process is provably still there: killed, then lost.
    let stray = Evidence {
        forked,
        ..Default::default()
    };
    assert_eq!(decide(&stray, same), Decision::Lost { stray: Some(4242) });
    // A reused pid (another start time) or a vanished one is never killed.
    assert_eq!(decide(&stray, |_| Some(78)), Decision::Lost { stray: None });
    assert_eq!(decide(&stray, |_| None), Decision::Lost { stray: None });
    // After a reboot no process survived: the launcher's word and the recorded pid count for
    // nothing, a recorded (fsync'd) exit still does.
    let rebooted = Evidence {
        running: Some(10),
        forked,
        rebooted: true,
        ..Default::default()
    };
    assert_eq!(decide(&rebooted, same), Decision::Lost { stray: None });
    let exited_before_the_reboot = Evidence {
        exit_file: Some(0),
        ..rebooted
    };
    assert_eq!(
        decide(&exited_before_the_reboot, same),
        Decision::Exited { wait_status: 0 }
    );
}

#[tokio::test]
async fn reconnect_reattaches_reports_exits_and_loses_the_unknown() {
    let work_dir = temp_dir("reconnect");
    let (fake, _events) = FakeLauncher::new();
    let containers = first_life(&work_dir, &fake, &["alive", "ended", "unknown"], true);
    let container = |id: &str| containers.iter().find(|(t, _)| t == id).unwrap().1.clone();
    // While the agent was down: "ended" exited 3; "unknown" was forgotten by the launcher; a
    // process nobody claims runs.
    fake.exit(&container("ended"), 3 << 8);
    fake.state().running.remove(&container("unknown"));
    fake.state().running.insert("stray-container".into(), 9999);
    let alive_pid = fake.state().running[&container("alive")];

    let prepared = prepare(
        RecoverMode::Reconnect,
        &work_dir,
        &agent_info(),
        fake.as_ref(),
    )
    .await
    .unwrap();
    let mut core = new_core(&work_dir);
    let recovery = prepared.apply(&mut core, now(), fake.as_ref(), &plain_exit);
    assert_eq!(recovery.errors, 0);
    let settled = &recovery.settled;
    assert_eq!(
        (
            settled.reattached,
            settled.exited,
            settled.lost,
            settled.orphans
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(settled.ack_exits, vec![container("ended")]);
    assert_eq!(core.agent_id(), Some(&AgentId::new("S1")));

    let fw = FrameworkId::new("F1");
    let alive = core.task(&fw, &TaskId::new("alive")).unwrap();
    assert_eq!(
        (alive.state, alive.process),
        (TaskState::TaskRunning, Process::Running { pid: alive_pid })
    );
    let ended = core.task(&fw, &TaskId::new("ended")).unwrap();
    assert_eq!(ended.state, TaskState::TaskFailed);
    assert_eq!(
        ended.statuses.last().unwrap().message.as_deref(),
        Some("Command exited with status 3")
    );
    let unknown = core.task(&fw, &TaskId::new("unknown")).unwrap();
    assert_eq!(
        unknown.state,
        TaskState::TaskGone,
        "partition-aware: TASK_GONE"
    );
    assert_eq!(
        unknown.statuses.last().unwrap().reason.as_deref(),
        Some(crate::core::REASON_EXECUTOR_REREGISTRATION_TIMEOUT)
    );
    assert_eq!(
        fake.state().kills,
        vec![("stray-container".to_string(), libc::SIGKILL)]
    );
    // Nothing is sent before registration; then each task's unacknowledged head goes out once,
    // with the uuid it had before the restart.
    assert!(sent_states(&settled.effects).is_empty());
    let pending_heads: Vec<Option<String>> = ["alive", "ended", "unknown"]
        .iter()
        .map(|id| {
            core.pending_updates(&fw, &TaskId::new(*id))
                .first()
                .and_then(|s| s.uuid.clone())
        })
        .collect();
    let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m".into());
    let sent = sent_states(&core.registered(now(), AgentId::new("S1"), master));
    assert_eq!(sent.len(), 3);
    for (id, head) in ["alive", "ended", "unknown"].iter().zip(pending_heads) {
        let (_, state, uuid) = sent.iter().find(|(t, _, _)| t == id).unwrap();
        assert_eq!(
            *state,
            TaskState::TaskStarting,
            "{id}: the oldest unacknowledged update first"
        );
        assert_eq!(*uuid, head);
    }
    // The new terminal updates are checkpointed before anything acts on them.
    let journal = core.drain_checkpoints();
    assert!(journal
        .iter()
        .any(|op| matches!(op, crate::core::CheckpointOp::Update { task_id, .. } if task_id.value == "ended")));
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[tokio::test]
async fn a_reboot_loses_every_task_and_non_partition_aware_frameworks_get_task_lost() {
    let work_dir = temp_dir("reboot");
    let (fake, _events) = FakeLauncher::new();
    let containers = first_life(&work_dir, &fake, &["a"], false);
    let meta = crate::checkpoint::layout::meta_dir(&work_dir);
    crate::checkpoint::write_boot_id(&meta, "an-earlier-boot").unwrap();
    let prepared = prepare(
        RecoverMode::Reconnect,
        &work_dir,
        &agent_info(),
        fake.as_ref(),
    )
    .await
    .unwrap();
    let mut core = new_core(&work_dir);
    let recovery = prepared.apply(&mut core, now(), fake.as_ref(), &plain_exit);
    assert_eq!((recovery.settled.lost, recovery.settled.orphans), (1, 1));
    let task = core
        .task(&FrameworkId::new("F1"), &TaskId::new("a"))
        .unwrap();
    assert_eq!(task.state, TaskState::TaskLost);
    assert!(task
        .statuses
        .last()
        .unwrap()
        .message
        .as_deref()
        .unwrap()
        .contains("rebooted"));
    // The process the launcher still ran (a simulated reboot) is killed.
    assert_eq!(
        fake.state().kills,
        vec![(containers[0].1.clone(), libc::SIGKILL)]
    );
    assert_eq!(
        crate::checkpoint::read_boot_id(&meta),
        records::host_boot_id()
    );
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[tokio::test]
async fn cleanup_kills_everything_and_forgets_the_agent() {
    let work_dir = temp_dir("cleanup");
    let (fake, _events) = FakeLauncher::new();
    let containers = first_life(&work_dir, &fake, &["a", "b"], true);
    let prepared = prepare(
        RecoverMode::Cleanup,
        &work_dir,
        &agent_info(),
        fake.as_ref(),
    )
    .await
    .unwrap();
    let mut core = new_core(&work_dir);
    let recovery = prepared.apply(&mut core, now(), fake.as_ref(), &plain_exit);
    assert_eq!(recovery.cleaned, 2);
    assert!(fake.state().running.is_empty());
    let mut acked = fake.state().acked.clone();
    acked.sort();
    let mut expected: Vec<String> = containers.iter().map(|(_, c)| c.clone()).collect();
    expected.sort();
    assert_eq!(acked, expected);
    assert_eq!(core.agent_id(), None, "registers as a new agent");
    assert_eq!(core.live_tasks().count(), 0);
    let meta = crate::checkpoint::layout::meta_dir(&work_dir);
    assert!(crate::checkpoint::read(&meta).agent_id.is_none());
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[test]
fn exits_decode_like_the_command_executor_reports_them() {
    assert_eq!(decode_wait_status(0), Exit::Code(0));
    assert_eq!(
        decode_wait_status(libc::SIGTERM),
        Exit::Signal(libc::SIGTERM)
    );
}
