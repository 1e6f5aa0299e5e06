//! Agents that survive: the real agent, killed without a graceful stop (its runtime dropped, as
//! kill -9 leaves it) and started again on the same work directory, against the fake master. Task
//! processes are real and parented by the launcher daemon, hosted in this process on a thread of
//! its own (the real `tepui launcher` process is covered by tests/python/test_agent_recovery.py).

mod support;

use proto::agent_protocol::{AgentCall, MasterToAgent, StatusUpdate};
use proto::TaskState::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn pid_of(update: &StatusUpdate) -> i32 {
    update
        .status
        .container_status
        .as_ref()
        .expect("RUNNING names its container")["executor_pid"]
        .as_i64()
        .expect("an executor pid") as i32
}

fn running(master: &FakeMaster, task: &str) -> Option<StatusUpdate> {
    master
        .updates_for(task)
        .into_iter()
        .find(|u| u.status.state == TaskRunning)
}

/// `task.updates` of the only run of `task`.
fn updates_file(work_dir: &Path, task: &str) -> Option<PathBuf> {
    let runs = work_dir.join(format!(
        "meta/slaves/{AGENT_ID}/frameworks/F1/executors/{task}/runs"
    ));
    let run = std::fs::read_dir(runs).ok()?.flatten().next()?.path();
    Some(run.join("task.updates"))
}

/// Whether the agent checkpointed the acknowledgement of `uuid` (so it will never resend it): the
/// record is there, or the run is complete and its checkpoints are gone.
fn ack_checkpointed(work_dir: &Path, task: &str, uuid: &str) -> bool {
    match updates_file(work_dir, task) {
        None => true,
        Some(path) => std::fs::read_to_string(path)
            .is_ok_and(|text| text.contains(&format!("\"type\":\"ACK\",\"uuid\":\"{uuid}\""))),
    }
}

fn exit_recorded(work_dir: &Path, task: &str) -> bool {
    updates_file(work_dir, task)
        .and_then(|p| p.parent().map(|run| run.join("exit_status")))
        .is_some_and(|p| p.exists())
}

fn uuid(update: &StatusUpdate) -> String {
    update
        .status
        .uuid
        .clone()
        .expect("agent updates carry a uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_finds_its_tasks_again_and_resends_what_was_not_acknowledged() {
    init_tracing();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("recovery");
    let launcher = LauncherHost::start(&work_dir);
    let first = KillableAgent::start(&master, &work_dir, |_| {});
    eventually("registration", WAIT, || master.agent_endpoint()).await;

    // "steady" runs on; "finisher" ends while the agent is down; "unacked" has its TASK_RUNNING
    // unacknowledged when the agent dies.
    master.send(run_task(
        "steady",
        serde_json::json!({"value": "sleep 600"}),
    ));
    master.send(run_task(
        "finisher",
        serde_json::json!({"value": "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.01; done"}),
    ));
    let mut pids = std::collections::HashMap::new();
    for task in ["steady", "finisher"] {
        let update = eventually("TASK_RUNNING", WAIT, || running(&master, task)).await;
        pids.insert(task, pid_of(&update));
        let acked = uuid(&update);
        eventually("the acknowledgement checkpointed", WAIT, || {
            ack_checkpointed(&work_dir, task, &acked).then_some(())
        })
        .await;
    }
    master.recorded.auto_ack.store(false, Ordering::SeqCst);
    master.send(run_task(
        "unacked",
        serde_json::json!({"value": "sleep 600"}),
    ));
    let starting = eventually("TASK_STARTING", WAIT, || {
        master.updates_for("unacked").into_iter().next()
    })
    .await;
    master.send(MasterToAgent::AcknowledgeUpdate {
        framework_id: proto::FrameworkId::new("F1"),
        task_id: proto::TaskId::new("unacked"),
        uuid: uuid(&starting),
    });
    let unacked_running = eventually("TASK_RUNNING", WAIT, || running(&master, "unacked")).await;
    pids.insert("unacked", pid_of(&unacked_running));

    first.kill();
    for (task, pid) in &pids {
        assert!(process_exists(*pid), "{task} ({pid}) died with the agent");
    }
    // While no agent runs, "finisher" ends; the launcher records its exit.
    let sandbox = work_dir.join(format!(
        "slaves/{AGENT_ID}/frameworks/F1/executors/finisher/runs/latest"
    ));
    std::fs::write(sandbox.join("go"), b"").unwrap();
    eventually("the exit recorded by the launcher", WAIT, || {
        exit_recorded(&work_dir, "finisher").then_some(())
    })
    .await;
    let before_restart = master.updates().len();

    master.recorded.auto_ack.store(true, Ordering::SeqCst);
    let second = KillableAgent::start(&master, &work_dir, |_| {});
    let reregister = eventually("REREGISTER", WAIT, || {
        master.registrations().get(1).cloned()
    })
    .await;
    let AgentCall::Reregister {
        agent_info, tasks, ..
    } = reregister
    else {
        panic!("expected REREGISTER, got {reregister:?}")
    };
    assert_eq!(
        agent_info.id.map(|a| a.value),
        Some(AGENT_ID.to_string()),
        "the same agent id"
    );
    let mut reported: Vec<(String, proto::TaskState)> = tasks
        .iter()
        .map(|t| (t.task.task_id.value.clone(), t.state))
        .collect();
    reported.sort();
    assert_eq!(
        reported,
        vec![
            ("steady".into(), TaskRunning),
            ("unacked".into(), TaskRunning)
        ],
        "running tasks reported; the one that ended during the downtime is not"
    );

    // The update produced during the downtime, and the one never acknowledged, arrive; once their
    // acknowledgements are checkpointed nothing else can be resent.
    let finished = eventually("TASK_FINISHED", WAIT, || {
        master
            .updates_for("finisher")
            .into_iter()
            .find(|u| u.status.state == TaskFinished)
    })
    .await;
    assert_eq!(
        finished.status.message.as_deref(),
        Some("Command exited with status 0")
    );
    let running_uuid = uuid(&unacked_running);
    for (task, acked) in [
        ("finisher", uuid(&finished)),
        ("unacked", running_uuid.clone()),
    ] {
        eventually("the acknowledgement checkpointed", WAIT, || {
            ack_checkpointed(&work_dir, task, &acked).then_some(())
        })
        .await;
    }
    let after: Vec<StatusUpdate> = master.updates()[before_restart..].to_vec();
    let count = |pred: &dyn Fn(&StatusUpdate) -> bool| after.iter().filter(|u| pred(u)).count();
    assert_eq!(
        count(&|u| u.status.task_id.value == "finisher"),
        1,
        "delivered exactly once: {after:?}"
    );
    assert_eq!(
        count(&|u| u.status.uuid.as_deref() == Some(running_uuid.as_str())),
        1,
        "redelivered once, same uuid"
    );
    assert_eq!(
        count(&|u| u.status.task_id.value == "steady"),
        0,
        "nothing acknowledged is resent"
    );

    // The same processes, attached again: kills reach them through the launcher.
    for task in ["steady", "unacked"] {
        assert!(process_exists(pids[task]), "{task} survived the restart");
    }
    assert!(!process_exists(pids["finisher"]));
    master.send(kill_task("steady"));
    let killed = eventually("TASK_KILLED", WAIT, || {
        master
            .updates_for("steady")
            .into_iter()
            .find(|u| u.status.state == TaskKilled)
    })
    .await;
    assert_eq!(
        killed.status.message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    eventually("steady's process gone", WAIT, || {
        (!process_exists(pids["steady"])).then_some(())
    })
    .await;

    // --recover=cleanup kills what is left and starts as a new agent.
    second.kill();
    assert!(process_exists(pids["unacked"]));
    let registrations = master.registrations().len();
    let third =
        RunningAgent::start_in(&master, &work_dir, |flags| flags.recover = "cleanup".into());
    let fresh = eventually("REGISTER", WAIT, || {
        master.registrations().get(registrations).cloned()
    })
    .await;
    assert!(
        matches!(fresh, AgentCall::Register { .. }),
        "a new agent: {fresh:?}"
    );
    eventually("unacked's process gone", WAIT, || {
        (!process_exists(pids["unacked"])).then_some(())
    })
    .await;
    third.stop().await.unwrap();
    launcher.stopped().await;
}
