//! The master's HTTP surface over real sockets: a master on an ephemeral port, a scheduler and an
//! agent played by the test through the same HTTP calls real ones make.

use clap::Parser;
use futures::StreamExt;
use proto::agent_protocol::{
    AgentCall, AgentInfo, MasterToAgent, StatusUpdate, AGENT_ID_HEADER, AGENT_PATH,
    PROTOCOL_VERSION,
};
use proto::recordio::Decoder;
use proto::scheduler::Event;
use proto::{ResourceBag, TaskState, TaskStatus};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    flags: master::MasterFlags,
}

const DEADLINE: Duration = Duration::from_secs(10);

async fn start_master() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let flags = Flags::try_parse_from([
        "master",
        "--ip=127.0.0.1",
        &format!("--port={port}"),
        "--allocation_interval=100ms",
    ])
    .unwrap()
    .flags;
    let config = flags.validate().unwrap();
    let master =
        master::server::Master::new(config, Box::new(registry::InMemoryStore::default()), None)
            .unwrap();
    tokio::spawn(master::server::serve(
        master,
        listener,
        Arc::new(election::StandaloneContender),
        std::future::pending(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = client.get(format!("{base}/state")).send().await {
            if r.status() == 200 {
                return base;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "master did not start serving /state"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads RecordIO records from a streaming response.
struct Records {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
}

impl Records {
    fn new(response: reqwest::Response) -> Self {
        Records {
            stream: response.bytes_stream().boxed(),
            decoder: Decoder::new(),
        }
    }

    async fn next<T: serde::de::DeserializeOwned>(&mut self) -> T {
        let read = async {
            loop {
                if let Some(record) = self.decoder.next_record().unwrap() {
                    return serde_json::from_slice(&record).unwrap();
                }
                let chunk = self.stream.next().await.expect("stream ended").unwrap();
                self.decoder.feed(&chunk);
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("no record before the deadline")
    }

    /// The next event of `kind`, skipping others (heartbeats, offers).
    async fn next_of(&mut self, kind: &str) -> Event {
        loop {
            let event: Event = self.next().await;
            if event.kind == kind {
                return event;
            }
        }
    }
}

async fn post_json(
    base: &str,
    path: &str,
    body: Value,
    stream_id: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(id) = stream_id {
        request = request.header("Mesos-Stream-Id", id);
    }
    request.send().await.unwrap()
}

async fn subscribe(base: &str) -> (String, String, Records) {
    let response = post_json(
        base,
        "/api/v1/scheduler",
        json!({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"test","name":"t","failover_timeout":30}}}),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let stream_id = response.headers()["Mesos-Stream-Id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut records = Records::new(response);
    let event: Event = records.next().await;
    assert_eq!(event.kind, "SUBSCRIBED");
    let framework_id = event.subscribed.unwrap().framework_id.value;
    (framework_id, stream_id, records)
}

/// A master in `ensemble`, once its `/metrics/snapshot` reports `master/elected` = `elected`.
async fn start_contending_master(
    ensemble: &election::memory::MemoryEnsemble,
    elected: f64,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let flags = Flags::try_parse_from(["master", "--ip=127.0.0.1", &format!("--port={port}")])
        .unwrap()
        .flags;
    let master = master::server::Master::new(
        flags.validate().unwrap(),
        Box::new(registry::InMemoryStore::default()),
        None,
    )
    .unwrap();
    let contender = Arc::new(ensemble.clone());
    tokio::spawn(master::server::serve(
        master,
        listener,
        contender,
        std::future::pending(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/metrics/snapshot")).await {
            let metrics: Value = r.json().await.unwrap_or_default();
            if metrics["master/elected"] == elected {
                return base;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "master/elected did not become {elected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /metrics/prometheus` read by the strict reader (every line valid, a TYPE line before its
/// samples, no duplicate names), with the process block present and each of `keys` equal to its
/// `/metrics/snapshot` value.
async fn prometheus_matching_snapshot(base: &str, keys: &[&str]) -> metrics_text::strict::Samples {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{base}/metrics/prometheus"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "metrics describe this process: never redirected"
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let samples = metrics_text::strict::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let snapshot: Value = client
        .get(format!("{base}/metrics/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pairs = snapshot
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_f64()));
    samples
        .check_against_snapshot(pairs, keys)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(samples.kind("mesos_master_tasks_finished"), Some("counter"));
    assert_eq!(samples.kind("mesos_master_cpus_total"), Some("gauge"));
    samples
}

#[tokio::test]
async fn the_leader_and_a_standby_each_serve_their_own_prometheus_metrics() {
    let ensemble = election::memory::MemoryEnsemble::new();
    let leader = start_contending_master(&ensemble, 1.0).await;
    let standby = start_contending_master(&ensemble, 0.0).await;
    let keys = [
        "master/elected",
        "master/slaves_active",
        "master/tasks_running",
        "registrar/log/recovered",
    ];
    let samples = prometheus_matching_snapshot(&leader, &keys).await;
    assert_eq!(samples.value("mesos_master_elected"), Some(1.0));
    let samples = prometheus_matching_snapshot(&standby, &keys).await;
    assert_eq!(samples.value("mesos_master_elected"), Some(0.0));
}

#[tokio::test]
async fn classic_endpoints_answer() {
    let base = start_master().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let version: Value = client
        .get(format!("{base}/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], "1.11.0");
    let redirect = client.get(format!("{base}/redirect")).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    assert_eq!(redirect.headers()["location"], base.replace("http:", ""));
    assert_eq!(
        client
            .get(format!("{base}/redirect/x"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let state: Value = client
        .get(format!("{base}/master/state.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["version"], "1.11.0");
    assert_eq!(state["leader"], state["pid"]);
    let metrics: Value = client
        .get(format!("{base}/metrics/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["master/elected"], 1.0);
    let flags: Value = client
        .get(format!("{base}/flags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flags["flags"]["allocation_interval"], "100ms");
    let health = post_json(
        &base,
        "/api/v1/operator",
        json!({"type":"GET_HEALTH"}),
        None,
    )
    .await;
    assert_eq!(
        health.json::<Value>().await.unwrap()["get_health"]["healthy"],
        true
    );
    let tasks = client
        .get(format!("{base}/tasks?limit=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.status(), 400);
    assert!(tasks.text().await.unwrap().contains("limit"));
}

#[tokio::test]
async fn bad_scheduler_calls_get_the_spec_status_and_a_reason() {
    let base = start_master().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/scheduler");
    let no_type = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(no_type.status(), 400, "missing Content-Type");
    let text = client
        .post(&url)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let html = client
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/html")
        .body(r#"{"type":"SUBSCRIBE"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 406);
    let malformed = post_json(&base, "/api/v1/scheduler", json!("{"), None).await;
    assert_eq!(malformed.status(), 400);
    let truncated = client
        .post(&url)
        .header("Content-Type", "application/json")
        .body(r#"{"type":"SUBSC"#)
        .send()
        .await
        .unwrap();
    assert_eq!(truncated.status(), 400);
    assert!(truncated.text().await.unwrap().contains("EOF"));
    let unknown = post_json(&base, "/api/v1/scheduler", json!({"type":"FOO"}), None).await;
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("FOO"));
    let explicit_unknown =
        post_json(&base, "/api/v1/scheduler", json!({"type":"UNKNOWN"}), None).await;
    assert_eq!(explicit_unknown.status(), 501);
    let before_subscribe = post_json(
        &base,
        "/api/v1/scheduler",
        json!({"type":"REVIVE","framework_id":{"value":"nope"}}),
        None,
    )
    .await;
    assert_eq!(before_subscribe.status(), 400);
    assert!(before_subscribe
        .text()
        .await
        .unwrap()
        .contains("Mesos-Stream-Id"));
    let unknown_framework = post_json(
        &base,
        "/api/v1/scheduler",
        json!({"type":"REVIVE","framework_id":{"value":"nope"}}),
        Some("s"),
    )
    .await;
    assert_eq!(unknown_framework.status(), 400);
    assert!(unknown_framework.text().await.unwrap().contains("nope"));
    let subscribe_with_stream = post_json(
        &base,
        "/api/v1/scheduler",
        json!({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}),
        Some("s"),
    )
    .await;
    assert_eq!(subscribe_with_stream.status(), 400);
    let missing_info = post_json(
        &base,
        "/api/v1/scheduler",
        json!({"type":"SUBSCRIBE","subscribe":{}}),
        None,
    )
    .await;
    assert_eq!(missing_info.status(), 400);
    assert!(missing_info
        .text()
        .await
        .unwrap()
        .contains("framework_info"));
    // Still serving after all of that.
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_scheduler_and_an_agent_meet_through_the_master() {
    let base = start_master().await;
    let (framework_id, stream_id, mut events) = subscribe(&base).await;

    // The test plays an agent over the internal protocol.
    let register = AgentCall::Register {
        protocol_version: PROTOCOL_VERSION,
        agent_info: AgentInfo {
            id: None,
            hostname: "a1".into(),
            port: 5051,
            resources: ResourceBag::parse("cpus:2;mem:512")
                .unwrap()
                .to_resources(None),
            attributes: vec![],
        },
        endpoint: "127.0.0.1:5051".into(),
        version: "1.11.0".into(),
    };
    let response = post_json(
        &base,
        AGENT_PATH,
        serde_json::to_value(&register).unwrap(),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut agent_stream = Records::new(response);
    let registered: MasterToAgent = agent_stream.next().await;
    let MasterToAgent::Registered { agent_id, .. } = registered else {
        panic!("expected REGISTERED, got {registered:?}")
    };

    let offers = events.next_of("OFFERS").await.offers.unwrap().offers;
    let offer = &offers[0];
    assert_eq!(offer.agent_id, agent_id);
    let accept = json!({
        "type": "ACCEPT", "framework_id": {"value": framework_id},
        "accept": {"offer_ids": [offer.id], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
            "name": "t1", "task_id": {"value": "t1"}, "agent_id": agent_id,
            "resources": [{"name":"cpus","type":"SCALAR","scalar":{"value":1}}],
            "command": {"value": "echo hello"}
        }]}}]}
    });
    assert_eq!(
        post_json(&base, "/api/v1/scheduler", accept, Some(&stream_id))
            .await
            .status(),
        202
    );
    let run: MasterToAgent = loop {
        let message: MasterToAgent = agent_stream.next().await;
        if !matches!(message, MasterToAgent::Ping) {
            break message;
        }
    };
    assert!(
        matches!(run, MasterToAgent::RunTask { ref task, .. } if task.task_id.value == "t1"),
        "{run:?}"
    );

    let mut status = TaskStatus::new(proto::TaskId::new("t1"), TaskState::TaskRunning);
    status.uuid = Some("AAAAAAAAAAAAAAAAAAAAAA==".into());
    let update = AgentCall::StatusUpdate {
        protocol_version: PROTOCOL_VERSION,
        update: StatusUpdate {
            framework_id: proto::FrameworkId::new(framework_id.clone()),
            status,
        },
    };
    let posted = reqwest::Client::new()
        .post(format!("{base}{AGENT_PATH}"))
        .header(AGENT_ID_HEADER, agent_id.value.clone())
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let update = events.next_of("UPDATE").await.update.unwrap().status;
    assert_eq!(update.state, TaskState::TaskRunning);
    assert_eq!(update.agent_id.as_ref(), Some(&agent_id));

    let ack = json!({"type":"ACKNOWLEDGE","framework_id":{"value":framework_id},
        "acknowledge":{"agent_id":agent_id,"task_id":{"value":"t1"},"uuid":"AAAAAAAAAAAAAAAAAAAAAA=="}});
    assert_eq!(
        post_json(&base, "/api/v1/scheduler", ack, Some(&stream_id))
            .await
            .status(),
        202
    );
    let acked: MasterToAgent = loop {
        let message: MasterToAgent = agent_stream.next().await;
        if !matches!(message, MasterToAgent::Ping) {
            break message;
        }
    };
    assert!(
        matches!(acked, MasterToAgent::AcknowledgeUpdate { ref uuid, .. } if uuid == "AAAAAAAAAAAAAAAAAAAAAA==")
    );

    let state: Value = reqwest::get(format!("{base}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);

    let keys = [
        "master/elected",
        "master/tasks_running",
        "master/slaves_active",
        "master/frameworks_active",
        "master/cpus_used",
    ];
    let samples = prometheus_matching_snapshot(&base, &keys).await;
    assert_eq!(samples.value("mesos_master_tasks_running"), Some(1.0));
    assert_eq!(samples.value("mesos_master_cpus_used"), Some(1.0));
}
