//! Health checks end to end (mesos-http-api.md 8.4 `health_check`, 8.5 `healthy`): the real
//! agent runs a task's COMMAND and HTTP checks, reports changes of health as TASK_RUNNING updates
//! with `healthy` to the (fake) master, shows them in `/state`, and kills a task whose checks keep
//! failing. Waits are conditions with deadlines; the test changes what the check sees (a file in
//! the sandbox, an HTTP answer) and waits for the agent to notice.

mod support;

use proto::agent_protocol::{MasterToAgent, StatusUpdate};
use proto::TaskState::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(30);
const REASON: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";

fn run_checked_task(id: &str, health_check: serde_json::Value) -> MasterToAgent {
    serde_json::from_value(serde_json::json!({
        "type": "RUN_TASK",
        "framework": framework_json(),
        "task": {
            "name": id, "task_id": {"value": id}, "agent_id": {"value": AGENT_ID},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
            "command": {"value": "sleep 600"},
            "kill_policy": {"grace_period": {"nanoseconds": 1_000_000_000i64}},
            "health_check": health_check
        }
    }))
    .expect("a valid RUN_TASK")
}

/// The task's updates, each once (a resent update keeps its uuid).
fn distinct_updates(master: &FakeMaster, task: &str) -> Vec<StatusUpdate> {
    let mut seen = HashSet::new();
    master
        .updates_for(task)
        .into_iter()
        .filter(|u| seen.insert(u.status.uuid.clone()))
        .collect()
}

/// The `healthy` of the task's health updates, in order.
fn health_reports(master: &FakeMaster, task: &str) -> Vec<Option<bool>> {
    distinct_updates(master, task)
        .iter()
        .filter(|u| u.status.reason.as_deref() == Some(REASON))
        .map(|u| {
            assert_eq!(u.status.state, TaskRunning);
            u.status.healthy
        })
        .collect()
}

async fn state(endpoint: &str) -> serde_json::Value {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{endpoint}/state"))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_check_reports_health_both_ways_then_kills_the_task() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "health-command", |_| {});
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    // Failures are ignored until the first success (grace period), so the test has time to
    // create the file; after that, two failures in a row kill the task.
    master.send(run_checked_task(
        "web",
        serde_json::json!({"type": "COMMAND", "command": {"value": "test -e healthy"},
            "delay_seconds": 0, "interval_seconds": 1, "timeout_seconds": 1,
            "consecutive_failures": 2, "grace_period_seconds": 600}),
    ));
    eventually("TASK_RUNNING", WAIT, || {
        master
            .states_for("web")
            .contains(&TaskRunning)
            .then_some(())
    })
    .await;
    let sandbox = eventually_async("the sandbox in /state", WAIT, || async {
        let state = state(&endpoint).await;
        state["frameworks"][0]["executors"][0]["directory"]
            .as_str()
            .map(std::path::PathBuf::from)
    })
    .await;
    std::fs::write(sandbox.join("healthy"), "").unwrap();
    eventually("a healthy update", WAIT, || {
        (health_reports(&master, "web") == [Some(true)]).then_some(())
    })
    .await;
    let state = state(&endpoint).await;
    let statuses = state["frameworks"][0]["executors"][0]["tasks"][0]["statuses"].clone();
    assert!(
        statuses
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["healthy"] == true),
        "/state shows the health: {statuses}"
    );

    std::fs::remove_file(sandbox.join("healthy")).unwrap();
    eventually("TASK_KILLED", WAIT, || {
        master.states_for("web").contains(&TaskKilled).then_some(())
    })
    .await;
    assert_eq!(
        health_reports(&master, "web"),
        [Some(true), Some(false)],
        "one update per change"
    );
    let updates = distinct_updates(&master, "web");
    let killed = &updates.last().unwrap().status;
    assert_eq!(killed.state, TaskKilled);
    assert_eq!(killed.healthy, Some(false));
    assert_eq!(
        killed.message.as_deref(),
        Some("Task killed because of failing health checks")
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_follows_the_answers_of_a_port() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "health-http", |_| {});
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    // The "application": an HTTP server on the agent's address, healthy while `up`.
    let ip = endpoint
        .rsplit_once(':')
        .unwrap()
        .0
        .trim_matches(['[', ']'])
        .to_string();
    let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = Arc::new(AtomicBool::new(true));
    let app = {
        let up = up.clone();
        axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let up = up.load(Ordering::SeqCst);
                async move {
                    if up {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    master.send(run_checked_task(
        "api",
        serde_json::json!({"type": "HTTP", "http": {"scheme": "http", "port": port, "path": "/health"},
            "delay_seconds": 0, "interval_seconds": 1, "timeout_seconds": 1,
            "consecutive_failures": 1000, "grace_period_seconds": 0}),
    ));
    eventually("a healthy update", WAIT, || {
        (health_reports(&master, "api") == [Some(true)]).then_some(())
    })
    .await;
    up.store(false, Ordering::SeqCst);
    eventually("an unhealthy update", WAIT, || {
        (health_reports(&master, "api") == [Some(true), Some(false)]).then_some(())
    })
    .await;
    up.store(true, Ordering::SeqCst);
    eventually("healthy again", WAIT, || {
        (health_reports(&master, "api") == [Some(true), Some(false), Some(true)]).then_some(())
    })
    .await;
    master.send(kill_task("api"));
    eventually("TASK_KILLED", WAIT, || {
        master.states_for("api").contains(&TaskKilled).then_some(())
    })
    .await;
    let killed = distinct_updates(&master, "api")
        .last()
        .unwrap()
        .status
        .clone();
    assert_eq!(
        (killed.state, killed.healthy),
        (TaskKilled, None),
        "a user's kill is not a health kill"
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_health_check_is_a_task_error_naming_the_field() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "health-bad", |_| {});
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    master.send(run_checked_task(
        "bad",
        serde_json::json!({"type": "TCP", "tcp": {"port": 0}}),
    ));
    let error = eventually("TASK_ERROR", WAIT, || {
        master
            .updates_for("bad")
            .into_iter()
            .find(|u| u.status.state == TaskError)
    })
    .await;
    assert!(error
        .status
        .message
        .unwrap()
        .contains("health_check.tcp.port"));
    agent.stop().await.unwrap();
}
