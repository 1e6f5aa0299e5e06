//! End-to-end tests: the real agent (`agent::run`) against a fake master written here, with real
//! processes, sandboxes and HTTP. Every test binds ephemeral ports and its own work directory, so
//! they run in parallel.

mod support;

use proto::agent_protocol::{AgentCall, MasterToAgent};
use proto::TaskState::*;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

async fn get(url: String) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

async fn get_json(url: String) -> serde_json::Value {
    let (status, body, _) = get(url.clone()).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// `/metrics/prometheus` read by the strict reader (every line valid, a TYPE line before its
/// samples, no duplicate names), with each snapshot key present and each of `keys` equal to its
/// `/metrics/snapshot` value.
async fn prometheus_matching_snapshot(base: &str, keys: &[&str]) -> metrics_text::strict::Samples {
    let (status, text, headers) = get(format!("{base}/metrics/prometheus")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples = metrics_text::strict::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let snapshot = get_json(format!("{base}/metrics/snapshot")).await;
    let pairs = snapshot
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_f64()));
    samples
        .check_against_snapshot(pairs, keys)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(samples.kind("mesos_slave_tasks_finished"), Some("counter"));
    assert_eq!(samples.kind("mesos_slave_tasks_running"), Some("gauge"));
    samples
}

fn query(path: &str) -> String {
    path.replace('%', "%25")
        .replace(' ', "%20")
        .replace('&', "%26")
        .replace('?', "%3F")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_runs_reports_and_serves_its_files() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "lifecycle", |_| {});
    let endpoint = eventually("registration", WAIT, || master.agent_endpoint()).await;
    let base = format!("http://{endpoint}");
    match &master.registrations()[0] {
        AgentCall::Register {
            agent_info,
            version,
            ..
        } => {
            assert_eq!(version, proto::MESOS_VERSION);
            assert!(agent_info.id.is_none());
            let bag = proto::ResourceBag::from_resources(&agent_info.resources).unwrap();
            assert_eq!(bag.scalar("cpus"), 2.0);
        }
        other => panic!("expected REGISTER, got {other:?}"),
    }

    master.send(run_task(
        "echo",
        serde_json::json!({"value": "echo hello; echo $PORT0 $PORTS >&2"}),
    ));
    eventually("TASK_FINISHED", WAIT, || {
        master
            .states_for("echo")
            .contains(&TaskFinished)
            .then_some(())
    })
    .await;
    let updates = master.updates_for("echo");
    assert_eq!(
        updates.iter().map(|u| u.status.state).collect::<Vec<_>>(),
        vec![TaskStarting, TaskRunning, TaskFinished]
    );
    for update in &updates {
        let status = &update.status;
        assert_eq!(update.framework_id.value, "F1");
        assert_eq!(status.uuid.as_deref().map(str::len), Some(24), "{status:?}");
        assert_eq!(
            status.agent_id.as_ref().map(|a| a.value.as_str()),
            Some(AGENT_ID)
        );
        assert_eq!(
            status.executor_id.as_ref().map(|e| e.value.as_str()),
            Some("echo")
        );
        assert_eq!(status.source, Some(proto::StatusSource::SourceExecutor));
        assert!(status.timestamp.unwrap() > 1.6e9);
    }
    assert_eq!(
        updates[2].status.message.as_deref(),
        Some("Command exited with status 0")
    );
    assert!(master
        .recorded
        .call_agent_ids
        .lock()
        .unwrap()
        .iter()
        .all(|id| id == AGENT_ID));

    // Output went straight into the sandbox files.
    let sandbox = agent.work_dir.join(format!(
        "slaves/{AGENT_ID}/frameworks/F1/executors/echo/runs/latest"
    ));
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stderr")).unwrap(),
        "31005 31005,31006\n"
    );

    // Once every update is acknowledged the executor is completed, and its files are still served.
    let state = eventually_async("the completed executor in /state", WAIT, || async {
        let state = get_json(format!("{base}/state")).await;
        let done = state["completed_frameworks"][0]["completed_executors"][0]["id"] == "echo";
        done.then_some(state)
    })
    .await;
    assert_eq!(state["id"], AGENT_ID);
    assert_eq!(state["pid"], format!("slave(1)@{endpoint}"));
    assert_eq!(state["master_hostname"], "fake-master");
    assert_eq!(state["version"], proto::MESOS_VERSION);
    assert_eq!(state["resources"]["cpus"], 2.0);
    assert_eq!(state["resources"]["ports"], "[31000-31100]");
    assert_eq!(state["flags"]["port"], "0");
    let executor = &state["completed_frameworks"][0]["completed_executors"][0];
    let directory = executor["directory"].as_str().unwrap().to_string();
    assert!(directory.ends_with(executor["container"].as_str().unwrap()));
    assert_eq!(executor["completed_tasks"][0]["state"], "TASK_FINISHED");
    assert_eq!(
        executor["completed_tasks"][0]["statuses"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(executor["completed_tasks"][0]["resources"]["mem"], 32.0);

    // /files/read by the virtual path, the host path, and the host path with runs/latest.
    let virtual_stdout = "/frameworks/F1/executors/echo/runs/latest/stdout";
    for path in [
        virtual_stdout.to_string(),
        format!("{directory}/stdout"),
        format!("{}/stdout", sandbox.display()),
    ] {
        let read = get_json(format!("{base}/files/read?path={}&offset=0", query(&path))).await;
        assert_eq!(
            read,
            serde_json::json!({"data": "hello\n", "offset": 0}),
            "{path}"
        );
    }
    let read = get_json(format!(
        "{base}/files/read.json?path={virtual_stdout}&offset=2&length=2"
    ))
    .await;
    assert_eq!(read, serde_json::json!({"data": "ll", "offset": 2}));
    let read = get_json(format!("{base}/files/read?path={virtual_stdout}&offset=-1")).await;
    assert_eq!(read, serde_json::json!({"data": "", "offset": 6}));
    let listing = get_json(format!(
        "{base}/files/browse?path=/frameworks/F1/executors/echo/runs/latest"
    ))
    .await;
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "/frameworks/F1/executors/echo/runs/latest/stderr",
            virtual_stdout
        ]
    );
    assert_eq!(listing[1]["size"], 6);
    assert_eq!(listing[1]["mode"], "-rw-r--r--");
    let (status, body, headers) = get(format!("{base}/files/download?path={virtual_stdout}")).await;
    assert_eq!((status, body.as_str()), (200, "hello\n"));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=stdout"
    );
    let debug = get_json(format!("{base}/files/debug")).await;
    assert_eq!(
        debug["/frameworks/F1/executors/echo/runs/latest"],
        directory.as_str()
    );

    // Requests that must fail, and how.
    let (status, body, _) = get(format!("{base}/files/read?offset=0")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = get(format!(
        "{base}/files/read?path={virtual_stdout}&offset=abc"
    ))
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("'offset' must be an integer"), "{body}");
    let (status, _, _) = get(format!(
        "{base}/files/read?path={}&offset=0",
        query(&format!("{directory}/../../../../../../../etc/passwd"))
    ))
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = get(format!("{base}/files/read?path=/etc/passwd&offset=0")).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(format!("{base}/files/browse?path=/etc")).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(format!(
        "{base}/files/download?path=/frameworks/F1/executors/echo/runs/latest"
    ))
    .await;
    assert_eq!(status, 400);

    // A task cannot use a symlink to read outside its sandbox.
    master.send(run_task(
        "linker",
        serde_json::json!({"value": "ln -s /etc/passwd leak && ln -s / root"}),
    ));
    eventually("the linker task to finish", WAIT, || {
        master
            .states_for("linker")
            .contains(&TaskFinished)
            .then_some(())
    })
    .await;
    for inside in ["leak", "root/etc/passwd"] {
        let (status, body, _) = get(format!(
            "{base}/files/read?path=/frameworks/F1/executors/linker/runs/latest/{inside}&offset=0"
        ))
        .await;
        assert_eq!(status, 403, "{inside}: {body}");
        let (status, _, _) = get(format!(
            "{base}/files/download?path=/frameworks/F1/executors/linker/runs/latest/{inside}"
        ))
        .await;
        assert_eq!(status, 403, "{inside}");
    }

    // The other endpoints.
    assert_eq!(get(format!("{base}/health")).await.0, 200);
    assert_eq!(
        get_json(format!("{base}/slave(1)/state.json")).await["id"],
        AGENT_ID
    );
    assert_eq!(
        get_json(format!("{base}/flags")).await["flags"]["registration_backoff_factor"],
        "10ms"
    );
    assert_eq!(
        get_json(format!("{base}/version")).await["version"],
        proto::MESOS_VERSION
    );
    let metrics = get_json(format!("{base}/metrics/snapshot")).await;
    assert_eq!(metrics["slave/registered"], 1.0);
    assert_eq!(metrics["slave/tasks_finished"], 2.0);
    assert_eq!(metrics["slave/cpus_total"], 2.0);
    assert!(metrics["system/mem_total_bytes"].as_f64().unwrap() > 0.0);

    // Kill: TASK_KILLED.
    master.send(run_task(
        "sleeper",
        serde_json::json!({"value": "sleep 600"}),
    ));
    eventually("TASK_RUNNING", WAIT, || {
        master
            .states_for("sleeper")
            .contains(&TaskRunning)
            .then_some(())
    })
    .await;
    let metrics = get_json(format!("{base}/metrics/snapshot")).await;
    assert_eq!(metrics["slave/tasks_running"], 1.0);
    assert_eq!(metrics["slave/executors_running"], 1.0);
    let keys = [
        "slave/registered",
        "slave/tasks_running",
        "slave/tasks_finished",
        "slave/cpus_total",
    ];
    let samples = prometheus_matching_snapshot(&base, &keys).await;
    assert_eq!(samples.value("mesos_slave_tasks_running"), Some(1.0));
    assert_eq!(samples.value("mesos_slave_tasks_finished"), Some(2.0));
    let state = get_json(format!("{base}/state")).await;
    let live = &state["frameworks"][0]["executors"][0];
    assert_eq!(live["id"], "sleeper");
    assert_eq!(live["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(live["tasks"][0]["slave_id"], AGENT_ID);
    assert_eq!(state["frameworks"][0]["name"], "test-framework");

    // Reconciliation resends the latest state as a new update.
    let before = master.updates_for("sleeper").len();
    master.send(
        serde_json::from_value(serde_json::json!({
            "type": "RECONCILE_TASKS", "framework_id": {"value": "F1"}, "task_ids": [{"value": "sleeper"}]
        }))
        .unwrap(),
    );
    let reconciled = eventually("the reconciliation update", WAIT, || {
        master.updates_for("sleeper").get(before).cloned()
    })
    .await;
    assert_eq!(reconciled.status.state, TaskRunning);
    assert_ne!(
        reconciled.status.uuid,
        master.updates_for("sleeper")[1].status.uuid
    );

    master.send(kill_task("sleeper"));
    eventually("TASK_KILLED", WAIT, || {
        master
            .states_for("sleeper")
            .contains(&TaskKilled)
            .then_some(())
    })
    .await;

    // A task group runs each task as a command task; SHUTDOWN_FRAMEWORK kills them all.
    master.send(serde_json::from_value(serde_json::json!({
        "type": "RUN_TASK_GROUP",
        "framework": framework_json(),
        "executor": {"executor_id": {"value": "group-executor"}},
        "tasks": [
            {"name": "g1", "task_id": {"value": "g1"}, "agent_id": {"value": AGENT_ID}, "command": {"value": "sleep 600"}},
            {"name": "g2", "task_id": {"value": "g2"}, "agent_id": {"value": AGENT_ID}, "command": {"value": "sleep 600"}}
        ]
    })).unwrap());
    for task in ["g1", "g2"] {
        eventually("group task RUNNING", WAIT, || {
            master.states_for(task).contains(&TaskRunning).then_some(())
        })
        .await;
    }
    master.send(
        serde_json::from_value(
            serde_json::json!({"type": "SHUTDOWN_FRAMEWORK", "framework_id": {"value": "F1"}}),
        )
        .unwrap(),
    );
    for task in ["g1", "g2"] {
        eventually("group task KILLED", WAIT, || {
            master.states_for(task).contains(&TaskKilled).then_some(())
        })
        .await;
    }

    // Invalid tasks: TASK_ERROR with REASON_TASK_INVALID.
    master.send(run_task("no-command", serde_json::Value::Null));
    let error = eventually("TASK_ERROR", WAIT, || {
        master.updates_for("no-command").into_iter().next()
    })
    .await;
    assert_eq!(error.status.state, TaskError);
    assert_eq!(error.status.reason.as_deref(), Some("REASON_TASK_INVALID"));

    // A failing command: TASK_FAILED with the exit status.
    master.send(run_task(
        "fails",
        serde_json::json!({"shell": false, "value": "/bin/sh", "arguments": ["sh", "-c", "exit 3"]}),
    ));
    let failed = eventually("TASK_FAILED", WAIT, || {
        master
            .updates_for("fails")
            .into_iter()
            .find(|u| u.status.state == TaskFailed)
    })
    .await;
    assert_eq!(
        failed.status.message.as_deref(),
        Some("Command exited with status 3")
    );
    assert_eq!(
        failed.status.reason.as_deref(),
        Some("REASON_COMMAND_EXECUTOR_FAILED")
    );

    master.send(MasterToAgent::Ping);
    eventually("PONG", WAIT, || {
        (master.recorded.pongs.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;

    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_updates_survive_a_broken_stream_and_are_resent() {
    init_tracing();
    let master = FakeMaster::start().await;
    master.recorded.auto_ack.store(false, Ordering::SeqCst);
    let agent = RunningAgent::start(&master, "resend", |_| {});
    eventually("registration", WAIT, || master.agent_endpoint()).await;

    master.send(run_task(
        "sleeper",
        serde_json::json!({"value": "sleep 600"}),
    ));
    let starting = eventually("TASK_STARTING", WAIT, || {
        master.updates_for("sleeper").into_iter().next()
    })
    .await;
    assert_eq!(starting.status.state, TaskStarting);

    // The master goes away without acknowledging; the agent reregisters with its id and its task.
    master.drop_stream();
    let reregister = eventually("REREGISTER", WAIT, || {
        master.registrations().get(1).cloned()
    })
    .await;
    let AgentCall::Reregister {
        agent_info,
        tasks,
        frameworks,
        ..
    } = reregister
    else {
        panic!("expected REREGISTER, got {reregister:?}")
    };
    assert_eq!(agent_info.id.map(|a| a.value), Some(AGENT_ID.to_string()));
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task.task_id.value, "sleeper");
    assert_eq!(tasks[0].state, TaskRunning);
    assert_eq!(
        frameworks[0].id.as_ref().map(|f| f.value.as_str()),
        Some("F1")
    );

    // The same update (same uuid) comes again, and nothing behind it overtakes it.
    let resent = eventually("the resent TASK_STARTING", WAIT, || {
        master.updates_for("sleeper").get(1).cloned()
    })
    .await;
    assert_eq!(resent.status.uuid, starting.status.uuid);
    assert_eq!(resent.status.state, TaskStarting);

    // Acknowledging it releases the next one.
    master.recorded.auto_ack.store(true, Ordering::SeqCst);
    master.send(MasterToAgent::AcknowledgeUpdate {
        framework_id: proto::FrameworkId::new("F1"),
        task_id: proto::TaskId::new("sleeper"),
        uuid: starting.status.uuid.clone().unwrap(),
    });
    let running = eventually("TASK_RUNNING", WAIT, || {
        master
            .updates_for("sleeper")
            .into_iter()
            .find(|u| u.status.state == TaskRunning)
    })
    .await;
    let pid = running.status.container_status.as_ref().unwrap()["executor_pid"]
        .as_i64()
        .unwrap() as i32;
    assert!(process_exists(pid));

    // Stopping the agent takes the task's processes down with it.
    agent.stop().await.unwrap();
    assert!(
        !process_exists(pid),
        "task process {pid} outlived the agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_update_is_resent_after_ten_seconds() {
    init_tracing();
    let master = FakeMaster::start().await;
    master.recorded.auto_ack.store(false, Ordering::SeqCst);
    let agent = RunningAgent::start(&master, "timer", |_| {});
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    master.send(run_task("quick", serde_json::json!({"value": "true"})));
    let first = eventually("TASK_STARTING", WAIT, || {
        master.updates_for("quick").into_iter().next()
    })
    .await;
    let again = eventually("the timed resend", Duration::from_secs(25), || {
        master.updates_for("quick").get(1).cloned()
    })
    .await;
    assert_eq!(again.status.uuid, first.status.uuid);
    let gap = again.status.timestamp.unwrap() - first.status.timestamp.unwrap();
    assert_eq!(gap, 0.0, "a resend is the same update, timestamp included");
    assert_eq!(
        master.registrations().len(),
        1,
        "resent by the timer, not by a reregistration"
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_from_the_master_kills_tasks_and_stops_the_agent() {
    init_tracing();
    let master = FakeMaster::start().await;
    let agent = RunningAgent::start(&master, "shutdown", |flags| {
        flags.executor_shutdown_grace_period = "1secs".into()
    });
    eventually("registration", WAIT, || master.agent_endpoint()).await;
    master.send(run_task(
        "stubborn",
        serde_json::json!({"value": "trap '' TERM; sleep 600"}),
    ));
    let running = eventually("TASK_RUNNING", WAIT, || {
        master
            .updates_for("stubborn")
            .into_iter()
            .find(|u| u.status.state == TaskRunning)
    })
    .await;
    let pid = running.status.container_status.as_ref().unwrap()["executor_pid"]
        .as_i64()
        .unwrap() as i32;
    master.send(MasterToAgent::Shutdown {
        message: "agent removed".into(),
    });
    match agent.finished().await {
        Err(agent::AgentError::ShutdownByMaster { message }) => {
            assert_eq!(message, "agent removed")
        }
        other => panic!("expected ShutdownByMaster, got {other:?}"),
    }
    assert!(
        !process_exists(pid),
        "task process {pid} outlived the agent"
    );
}

#[tokio::test]
async fn startup_errors_name_their_cause() {
    let detector = std::sync::Arc::new(election::StandaloneDetector::new("127.0.0.1:1").unwrap());

    let mut flags = agent::AgentFlags::new("127.0.0.1:1", temp_work_dir("flags"));
    flags.resources = Some("cpus:many".into());
    let err = agent::run(flags, detector.clone(), std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            agent::AgentError::BadFlag {
                flag: "resources",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("--resources: "));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let work_dir = temp_work_dir("bind");
    let mut flags = agent::AgentFlags::new("127.0.0.1:1", &work_dir);
    flags.port = taken.local_addr().unwrap().port();
    let err = agent::run(flags, detector.clone(), std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, agent::AgentError::Bind { .. }), "{err}");
    let _ = std::fs::remove_dir_all(work_dir);

    let flags = agent::AgentFlags::new("127.0.0.1:1", "/proc/tepui-cannot-exist/work");
    let err = agent::run(flags, detector, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, agent::AgentError::WorkDir { .. }), "{err}");
}
