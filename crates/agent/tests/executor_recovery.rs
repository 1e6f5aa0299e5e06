//! Custom executors across an agent restart (replicated-log.md 8, step 3): the agent is killed
//! without a graceful stop and started again on the same work directory; the executor's process,
//! parented by the launcher daemon (hosted in this process), keeps running. The test plays the
//! executor: it re-subscribes in time (its tasks go on), or it does not (killed; TASK_LOST); when
//! it re-subscribes, a task it never received (missing from its `unacknowledged_tasks`) is lost.

mod support;

use proto::agent_protocol::AgentCall;
use proto::TaskState::*;
use std::time::Duration;
use support::executor::*;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// The endpoint the agent registered with last (a restarted agent has a new ephemeral port).
fn latest_endpoint(master: &FakeMaster) -> Option<String> {
    master
        .registrations()
        .into_iter()
        .rev()
        .find_map(|call| match call {
            AgentCall::Register { endpoint, .. } | AgentCall::Reregister { endpoint, .. } => {
                Some(endpoint)
            }
            _ => None,
        })
}

/// Starts an agent, runs `t1` on executor `e1` (the test subscribed as it, TASK_RUNNING
/// acknowledged), kills the agent, starts it again; returns the new agent's base URL.
/// The agent's `/state`.
async fn agent_state(base: &str) -> serde_json::Value {
    client()
        .get(format!("{base}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn executor_then_restart(
    master: &FakeMaster,
    work_dir: &std::path::Path,
    reregistration_timeout: &'static str,
) -> (RunningAgent, String) {
    let (agent, base, _) =
        executor_then_restart_with(master, work_dir, reregistration_timeout, &[]).await;
    (agent, base)
}

/// As `executor_then_restart`, and before the kill each task of `unreported` is delivered to the
/// executor (LAUNCH read), which reports nothing on it; returns their TaskInfos as delivered.
async fn executor_then_restart_with(
    master: &FakeMaster,
    work_dir: &std::path::Path,
    reregistration_timeout: &'static str,
    unreported: &[&str],
) -> (RunningAgent, String, Vec<serde_json::Value>) {
    let first = KillableAgent::start(master, work_dir, |_| {});
    let endpoint = eventually("registration", WAIT, || latest_endpoint(master)).await;
    let base = format!("http://{endpoint}");
    master.send(run_executor_task("t1", "exec sleep 600"));
    let mut events = Events::subscribe(&base).await;
    assert_eq!(events.next().await["type"], "SUBSCRIBED");
    assert_eq!(events.next().await["type"], "LAUNCH");
    let (status, _) = post(&base, &update("t1", "TASK_RUNNING", 1)).await;
    assert_eq!(status, 202);
    assert_eq!(events.next().await["type"], "ACKNOWLEDGED");
    let mut delivered = Vec::new();
    for task in unreported {
        master.send(run_executor_task(task, "exec sleep 600"));
        let launch = events.next().await;
        assert_eq!(launch["type"], "LAUNCH");
        assert_eq!(launch["launch"]["task"]["task_id"]["value"], *task);
        delivered.push(launch["launch"]["task"].clone());
    }
    first.kill();
    drop(events);
    let registrations = master.registrations().len();
    let agent = RunningAgent::start_in(master, work_dir, |f| {
        f.executor_reregistration_timeout = reregistration_timeout.into();
    });
    eventually("reregistration", WAIT, || {
        (master.registrations().len() > registrations).then_some(())
    })
    .await;
    match master.registrations().last() {
        Some(AgentCall::Reregister { tasks, .. }) => {
            assert!(
                tasks
                    .iter()
                    .any(|t| t.task.task_id.value == "t1" && t.state == TaskRunning),
                "{tasks:?}"
            );
            for task in unreported {
                assert!(
                    tasks
                        .iter()
                        .any(|t| t.task.task_id.value == *task && t.state == TaskStaging),
                    "{task} reregisters as TASK_STAGING: {tasks:?}"
                );
            }
        }
        other => panic!("expected REREGISTER, got {other:?}"),
    }
    let base = format!("http://{}", latest_endpoint(master).unwrap());
    (agent, base, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_executor_that_resubscribes_keeps_its_tasks() {
    init_tracing();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("executor-recovery");
    let _launcher = LauncherHost::start(&work_dir);
    let (agent, base) = executor_then_restart(&master, &work_dir, "10secs").await;

    let mut events = Events::subscribe(&base).await;
    let subscribed = events.next().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    let state = agent_state(&base).await;
    let executor = &state["frameworks"][0]["executors"][0];
    assert_eq!(executor["id"], "e1");
    assert_eq!(executor["tasks"][0]["id"], "t1");
    assert_eq!(executor["tasks"][0]["state"], "TASK_RUNNING");
    let (status, body) = post(&base, &update("t1", "TASK_FINISHED", 2)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.next().await["type"], "ACKNOWLEDGED");
    eventually("TASK_FINISHED", WAIT, || {
        master
            .states_for("t1")
            .contains(&TaskFinished)
            .then_some(())
    })
    .await;
    assert!(!master.states_for("t1").contains(&TaskLost));
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_executor_that_does_not_resubscribe_is_killed_and_its_tasks_lost() {
    init_tracing();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("executor-reregistration");
    let _launcher = LauncherHost::start(&work_dir);
    let (agent, _base) = executor_then_restart(&master, &work_dir, "1secs").await;

    eventually("TASK_LOST", WAIT, || {
        master.states_for("t1").contains(&TaskLost).then_some(())
    })
    .await;
    let lost = master.updates_for("t1").pop().unwrap().status;
    assert_eq!(
        lost.reason.as_deref(),
        Some("REASON_EXECUTOR_REREGISTRATION_TIMEOUT")
    );
    assert_eq!(lost.source, Some(proto::StatusSource::SourceAgent));
    eventually("the executor killed and its exit reported", WAIT, || {
        master
            .executor_calls()
            .iter()
            .any(|c| matches!(c, AgentCall::ExecutorExited { .. }))
            .then_some(())
    })
    .await;
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubscribing_executor_keeps_the_tasks_it_lists_and_a_task_it_never_got_is_lost() {
    init_tracing();
    let master = FakeMaster::start().await;
    let work_dir = temp_work_dir("executor-unacknowledged-tasks");
    let _launcher = LauncherHost::start(&work_dir);
    // t2 and t3 were delivered before the agent died; the executor re-subscribes listing t2 only
    // (mesos-http-api.md 9: the tasks it received and sent no update for), so t3 never reached it.
    let (agent, base, delivered) =
        executor_then_restart_with(&master, &work_dir, "10secs", &["t2", "t3"]).await;
    let t2 = delivered[0].clone();
    let mut events = Events::subscribe_with(
        &base,
        serde_json::json!({"unacknowledged_tasks": [t2], "unacknowledged_updates": []}),
    )
    .await;
    assert_eq!(events.next().await["type"], "SUBSCRIBED");

    let lost = eventually("TASK_LOST for t3", WAIT, || {
        master
            .updates_for("t3")
            .into_iter()
            .find(|u| u.status.state == TaskLost)
    })
    .await
    .status;
    assert_eq!(lost.reason.as_deref(), Some("REASON_AGENT_RESTARTED"));
    assert_eq!(lost.source, Some(proto::StatusSource::SourceAgent));
    assert_eq!(
        lost.executor_id.as_ref().map(|e| e.value.as_str()),
        Some("e1")
    );

    // t2 is still the executor's: its update is taken and reaches the master.
    let (status, body) = post(&base, &update("t2", "TASK_RUNNING", 2)).await;
    assert_eq!(status, 202, "{body}");
    let acknowledged = events.next().await;
    assert_eq!(
        acknowledged["type"], "ACKNOWLEDGED",
        "not a LAUNCH or KILL: {acknowledged}"
    );
    assert_eq!(acknowledged["acknowledged"]["task_id"]["value"], "t2");
    eventually("TASK_RUNNING for t2", WAIT, || {
        master.states_for("t2").contains(&TaskRunning).then_some(())
    })
    .await;
    assert_eq!(master.states_for("t2"), vec![TaskRunning], "never lost");
    assert_eq!(master.states_for("t3"), vec![TaskLost]);
    assert!(!master.states_for("t1").contains(&TaskLost));

    let state = agent_state(&base).await;
    let executor = &state["frameworks"][0]["executors"][0];
    let live: Vec<(String, String)> = executor["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        live.contains(&("t2".to_string(), "TASK_RUNNING".to_string())),
        "{live:?}"
    );
    assert!(
        live.iter()
            .all(|(id, state)| id != "t3" || state == "TASK_LOST"),
        "t3 is no longer launched: {live:?}"
    );
    agent.stop().await.unwrap();
}
