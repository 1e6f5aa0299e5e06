//! End-to-end tests of custom executors and `POST /api/v1/executor` (mesos-http-api.md section 9):
//! the real agent against the fake master of `support`, with the test itself playing the executor
//! over real HTTP (the executor's process is a shell that records its environment and sleeps).

mod support;

use proto::agent_protocol::{AgentCall, MasterToAgent};
use proto::TaskState::*;
use std::time::Duration;
use support::executor::*;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn env_of(sandbox: &std::path::Path) -> Option<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(sandbox.join("env.txt")).ok()?;
    text.ends_with('\n').then(|| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_subscribes_gets_its_tasks_and_its_updates_reach_the_master() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "executor-api", |f| {
        f.executor_shutdown_grace_period = "1secs".into();
    });
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    let base = format!("http://{endpoint}");

    master.send(run_executor_task("t1", "env > env.txt; exec sleep 600"));
    // Queued until the executor subscribes, its process started with the executor environment.
    let state = eventually_async("the queued task in /state", WAIT, || async {
        let state: serde_json::Value = client()
            .get(format!("{base}/state"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let executor = state["frameworks"][0]["executors"][0].clone();
        (executor["queued_tasks"][0]["id"] == "t1").then_some(executor)
    })
    .await;
    assert_eq!(state["id"], "e1");
    assert_eq!(state["type"], "CUSTOM");
    assert_eq!(state["resources"]["mem"], 32.0);
    assert_eq!(state["queued_tasks"][0]["state"], "TASK_STAGING");
    let sandbox = std::path::PathBuf::from(state["directory"].as_str().unwrap());
    assert!(sandbox.starts_with(
        agent
            .work_dir
            .join(format!("slaves/{AGENT_ID}/frameworks/F1/executors/e1/runs"))
    ));
    let env = eventually("the executor's environment", WAIT, || env_of(&sandbox)).await;
    assert_eq!(env["MESOS_FRAMEWORK_ID"], "F1");
    assert_eq!(env["MESOS_EXECUTOR_ID"], "e1");
    assert_eq!(env["MESOS_AGENT_ENDPOINT"], endpoint);
    assert_eq!(env["MESOS_SLAVE_ID"], AGENT_ID);
    assert_eq!(env["MESOS_SLAVE_PID"], format!("slave(1)@{endpoint}"));
    assert_eq!(env["MESOS_DIRECTORY"], sandbox.display().to_string());
    assert_eq!(env["MESOS_SANDBOX"], sandbox.display().to_string());
    assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "1secs");
    assert_eq!(env["MESOS_CHECKPOINT"], "1");
    assert_eq!(env["MODE"], "test");
    assert!(!env.contains_key("MESOS_TASK_ID"));
    assert!(
        master.updates_for("t1").is_empty(),
        "no agent-made update for an executor's task"
    );

    // Bad calls are refused with a reason, never a panic.
    let protobuf = client()
        .post(format!("{base}/api/v1/executor"))
        .header("content-type", "application/x-protobuf")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(protobuf.status().as_u16(), 415);
    assert!(protobuf.text().await.unwrap().contains("application/json"));
    let (status, body) = post(
        &base,
        &serde_json::json!({"type": "SUBSCRIBE", "framework_id": {"value": "F1"}}),
    )
    .await;
    assert_eq!(
        (status, body.contains("executor_id")),
        (400, true),
        "{body}"
    );
    let mut unknown = call("SUBSCRIBE", serde_json::json!({}));
    unknown["executor_id"]["value"] = serde_json::json!("nope");
    let (status, body) = post(&base, &unknown).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&base, &update("t1", "TASK_RUNNING", 1)).await;
    assert_eq!(status, 403, "an update before SUBSCRIBE: {body}");

    let mut events = Events::subscribe(&base).await;
    let subscribed = events.next().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    assert_eq!(
        subscribed["subscribed"]["executor_info"]["executor_id"]["value"],
        "e1"
    );
    assert_eq!(
        subscribed["subscribed"]["framework_info"]["id"]["value"],
        "F1"
    );
    assert_eq!(
        subscribed["subscribed"]["agent_info"]["id"]["value"],
        AGENT_ID
    );
    assert!(subscribed["subscribed"]["container_id"]["value"].is_string());
    let launch = events.next().await;
    assert_eq!(launch["type"], "LAUNCH");
    assert_eq!(launch["launch"]["task"]["task_id"]["value"], "t1");

    // Updates: 202, to the master with the executor's uuid, ACKNOWLEDGED once the master acks.
    let (status, body) = post(&base, &update("t1", "TASK_RUNNING", 7)).await;
    assert_eq!((status, body.as_str()), (202, ""));
    let acknowledged = events.next().await;
    assert_eq!(acknowledged["type"], "ACKNOWLEDGED");
    assert_eq!(acknowledged["acknowledged"]["task_id"]["value"], "t1");
    assert_eq!(acknowledged["acknowledged"]["uuid"], uuid_b64(7));
    let running = master.updates_for("t1");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].status.state, TaskRunning);
    assert_eq!(
        running[0].status.uuid.as_deref(),
        Some(uuid_b64(7).as_str())
    );
    assert_eq!(running[0].status.executor_id.as_ref().unwrap().value, "e1");
    assert_eq!(running[0].status.agent_id.as_ref().unwrap().value, AGENT_ID);
    let (status, _) = post(&base, &update("nope", "TASK_RUNNING", 8)).await;
    assert_eq!(status, 400, "an update for an unknown task");

    // A later task goes straight to the executor; messages flow both ways.
    master.send(run_executor_task("t2", "unused: the executor runs already"));
    let launch = events.next().await;
    assert_eq!(launch["launch"]["task"]["task_id"]["value"], "t2");
    let (status, _) = post(
        &base,
        &call(
            "MESSAGE",
            serde_json::json!({"message": {"data": "aGVsbG8="}}),
        ),
    )
    .await;
    assert_eq!(status, 202);
    let message = eventually("the executor message at the master", WAIT, || {
        master.executor_calls().into_iter().find_map(|c| match c {
            AgentCall::ExecutorMessage {
                data, executor_id, ..
            } => Some((data, executor_id)),
            _ => None,
        })
    })
    .await;
    assert_eq!(
        (message.0.as_str(), message.1.value.as_str()),
        ("aGVsbG8=", "e1")
    );
    master.send(
        serde_json::from_value(serde_json::json!({
            "type": "FRAMEWORK_MESSAGE", "framework_id": {"value": "F1"},
            "executor_id": {"value": "e1"}, "data": "aGk="
        }))
        .unwrap(),
    );
    assert_eq!(events.next().await["message"]["data"], "aGk=");
    let (status, _) = post(&base, &call("HEARTBEAT", serde_json::json!({}))).await;
    assert_eq!(status, 202);

    // KILL goes to the executor, which reports the outcome.
    master.send(kill_task("t1"));
    let kill = events.next().await;
    assert_eq!(
        (
            kill["type"].as_str(),
            kill["kill"]["task_id"]["value"].as_str()
        ),
        (Some("KILL"), Some("t1"))
    );
    let (status, _) = post(&base, &update("t1", "TASK_KILLED", 9)).await;
    assert_eq!(status, 202);
    assert_eq!(events.next().await["type"], "ACKNOWLEDGED");
    eventually("TASK_KILLED at the master", WAIT, || {
        master.states_for("t1").contains(&TaskKilled).then_some(())
    })
    .await;

    // Framework shutdown: SHUTDOWN, then (this executor ignores it) its process is killed after
    // the grace period, the stream ends, its last task is TASK_KILLED and the master hears of it.
    master.send(MasterToAgent::ShutdownFramework {
        framework_id: proto::FrameworkId::new("F1"),
    });
    assert_eq!(events.next().await["type"], "SHUTDOWN");
    assert!(events.ended().await, "the stream ends with the executor");
    let exited = eventually("the executor exit at the master", WAIT, || {
        master.executor_calls().into_iter().find_map(|c| match c {
            AgentCall::ExecutorExited { status, .. } => Some(status),
            _ => None,
        })
    })
    .await;
    assert_eq!(exited, libc::SIGKILL);
    eventually("t2 killed", WAIT, || {
        master.states_for("t2").contains(&TaskKilled).then_some(())
    })
    .await;
    let t2 = master.updates_for("t2");
    assert_eq!(
        t2.last().unwrap().status.reason.as_deref(),
        Some("REASON_EXECUTOR_TERMINATED")
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_does_not_subscribe_in_time_is_killed_and_its_task_fails() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "executor-registration", |f| {
        f.executor_registration_timeout = "1secs".into();
    });
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    master.send(run_executor_task("t1", "exec sleep 600"));
    eventually("TASK_FAILED", WAIT, || {
        master.states_for("t1").contains(&TaskFailed).then_some(())
    })
    .await;
    let failed = master.updates_for("t1").pop().unwrap().status;
    assert_eq!(
        failed.reason.as_deref(),
        Some("REASON_EXECUTOR_REGISTRATION_TIMEOUT")
    );
    assert_eq!(failed.source, Some(proto::StatusSource::SourceAgent));
    eventually("the executor exit at the master", WAIT, || {
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
async fn when_the_executor_process_ends_its_tasks_fail() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "executor-exit", |_| {});
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    let base = format!("http://{endpoint}");
    // The process waits for the test's word (a file) and exits with status 3.
    master.send(run_executor_task(
        "t1",
        "while [ ! -e go ]; do sleep 0.05; done; exit 3",
    ));
    let mut events = Events::subscribe(&base).await;
    assert_eq!(events.next().await["type"], "SUBSCRIBED");
    assert_eq!(events.next().await["type"], "LAUNCH");
    let (status, _) = post(&base, &update("t1", "TASK_RUNNING", 1)).await;
    assert_eq!(status, 202);
    let sandbox = agent.work_dir.join(format!(
        "slaves/{AGENT_ID}/frameworks/F1/executors/e1/runs/latest"
    ));
    // (The test subscribed as the executor; the real process may still be starting.)
    eventually("the executor's sandbox", WAIT, || {
        sandbox.join("stdout").exists().then_some(())
    })
    .await;
    std::fs::write(sandbox.join("go"), b"").unwrap();
    eventually("TASK_FAILED", WAIT, || {
        master.states_for("t1").contains(&TaskFailed).then_some(())
    })
    .await;
    let failed = master.updates_for("t1").pop().unwrap().status;
    assert_eq!(failed.reason.as_deref(), Some("REASON_EXECUTOR_TERMINATED"));
    assert_eq!(failed.source, Some(proto::StatusSource::SourceAgent));
    assert!(failed.message.unwrap().contains("exited with status 3"));
    let status = eventually("the executor exit at the master", WAIT, || {
        master.executor_calls().into_iter().find_map(|c| match c {
            AgentCall::ExecutorExited { status, .. } => Some(status),
            _ => None,
        })
    })
    .await;
    assert_eq!(status, 3 << 8);
    assert!(events.ended().await);
    agent.stop().await.unwrap();
}
