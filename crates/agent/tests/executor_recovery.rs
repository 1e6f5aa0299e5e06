//! Custom executors across an agent restart (replicated-log.md 8, step 3): the agent is killed
//! without a graceful stop and started again on the same work directory; the executor's process,
//! parented by the launcher daemon (hosted in this process), keeps running. The test plays the
//! executor: it re-subscribes in time (its tasks go on), or it does not (killed; TASK_LOST).

mod support;

use proto::agent_protocol::AgentCall;
use proto::TaskState::*;
use std::time::Duration;
use support::executor::*;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// The endpoint the agent registered with last (a restarted agent has a new ephemeral port).
fn latest_endpoint(master: &FakeMaster) -> Option<String> {
    master.registrations().into_iter().rev().find_map(|call| match call {
        AgentCall::Register { endpoint, .. } | AgentCall::Reregister { endpoint, .. } => Some(endpoint),
        _ => None,
    })
}

/// Starts an agent, runs `t1` on executor `e1` (the test subscribed as it, TASK_RUNNING
/// acknowledged), kills the agent, starts it again; returns the new agent's base URL.
async fn executor_then_restart(
    master: &FakeMaster,
    work_dir: &std::path::Path,
    reregistration_timeout: &'static str,
) -> (RunningAgent, String) {
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
        }
        other => panic!("expected REREGISTER, got {other:?}"),
    }
    let base = format!("http://{}", latest_endpoint(master).unwrap());
    (agent, base)
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
    let state: serde_json::Value = client()
        .get(format!("{base}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let executor = &state["frameworks"][0]["executors"][0];
    assert_eq!(executor["id"], "e1");
    assert_eq!(executor["tasks"][0]["id"], "t1");
    assert_eq!(executor["tasks"][0]["state"], "TASK_RUNNING");
    let (status, body) = post(&base, &update("t1", "TASK_FINISHED", 2)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(events.next().await["type"], "ACKNOWLEDGED");
    eventually("TASK_FINISHED", WAIT, || {
        master.states_for("t1").contains(&TaskFinished).then_some(())
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
    assert_eq!(lost.reason.as_deref(), Some("REASON_EXECUTOR_REREGISTRATION_TIMEOUT"));
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
