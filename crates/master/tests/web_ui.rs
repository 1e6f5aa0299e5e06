//! The master's web UI over a real socket: the page and its assets, `/ui/status`, and the proxy
//! to agents' `/files/*` (against a stand-in agent that serves canned answers).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use proto::agent_protocol::{AgentCall, AgentInfo, MasterToAgent, AGENT_PATH, PROTOCOL_VERSION};
use proto::recordio::Decoder;
use proto::ResourceBag;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    flags: master::MasterFlags,
}

const DEADLINE: Duration = Duration::from_secs(10);

async fn start_master() -> String {
    start_master_with(Arc::new(election::StandaloneContender), "leading").await
}

/// Starts a master and waits until `/ui/status` reports `state` (`leading` or `following`).
async fn start_master_with(contender: Arc<dyn election::Contender>, state: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let flags = Flags::try_parse_from([
        "master",
        "--ip=127.0.0.1",
        &format!("--port={port}"),
        "--cluster=ui-test",
    ])
    .unwrap()
    .flags;
    let master = master::server::Master::new(
        flags.validate().unwrap(),
        Box::new(registry::InMemoryStore::default()),
        None,
    )
    .unwrap();
    tokio::spawn(master::server::serve(
        master,
        listener,
        contender,
        std::future::pending(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/ui/status")).await {
            let status: Value = r.json().await.unwrap_or_default();
            if status["state"] == state
                && (state != "following" || status["leader_url"].is_string())
            {
                return base;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "master did not reach '{state}'"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Registers an agent whose HTTP server is at `endpoint`; returns its id and the open link
/// (dropping the link would disconnect the agent).
async fn register_agent(base: &str, hostname: &str, endpoint: &str) -> (String, reqwest::Response) {
    let register = AgentCall::Register {
        protocol_version: PROTOCOL_VERSION,
        agent_info: AgentInfo {
            id: None,
            hostname: hostname.into(),
            port: 5051,
            resources: ResourceBag::parse("cpus:2;mem:512")
                .unwrap()
                .to_resources(None),
            attributes: vec![],
        },
        endpoint: endpoint.into(),
        version: "1.11.0".into(),
    };
    let mut response = reqwest::Client::new()
        .post(format!("{base}{AGENT_PATH}"))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&register).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut decoder = Decoder::new();
    let record = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(record) = decoder.next_record().unwrap() {
                return record;
            }
            decoder.feed(&response.chunk().await.unwrap().expect("agent link ended"));
        }
    })
    .await
    .expect("no REGISTERED before the deadline");
    let MasterToAgent::Registered { agent_id, .. } = serde_json::from_slice(&record).unwrap()
    else {
        panic!("expected REGISTERED")
    };
    (agent_id.value, response)
}

/// A stand-in agent: `/files/read` echoes its query, `/files/download` sends an attachment.
async fn start_fake_agent() -> String {
    let app = axum::Router::new()
        .route(
            "/files/read",
            get(|uri: axum::http::Uri| async move {
                axum::Json(serde_json::json!({"data": uri.query().unwrap_or(""), "offset": 0}))
            }),
        )
        .route(
            "/files/download",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "application/octet-stream"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=stdout"),
                    ],
                    "hello from the sandbox\n",
                )
                    .into_response()
            }),
        )
        .route(
            "/files/browse",
            get(|| async { (axum::http::StatusCode::NOT_FOUND, "No such file").into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    endpoint
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_types() {
    let base = start_master().await;
    let index = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        content_type(&index).starts_with("text/html"),
        "{}",
        content_type(&index)
    );
    let html = index.text().await.unwrap();
    for needle in [
        r#"<script src="/ui/app.js">"#,
        r#"<script src="/ui/failover.js">"#,
        r#"href="/ui/style.css""#,
        r#"id="leader""#,
        r#"id="file-content""#,
        r#"id="follow""#,
    ] {
        assert!(html.contains(needle), "index.html lacks {needle}");
    }
    for (path, kind, needle) in [
        ("/ui/app.js", "text/javascript", "task-row"),
        ("/ui/sandbox.js", "text/javascript", "/files/"),
        ("/ui/failover.js", "text/javascript", "failover"),
        ("/ui/style.css", "text/css", "focus-visible"),
    ] {
        let asset = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert!(
            content_type(&asset).starts_with(kind),
            "{path}: {}",
            content_type(&asset)
        );
        assert!(
            asset.text().await.unwrap().contains(needle),
            "{path} lacks {needle}"
        );
    }
    // The JSON endpoints the page reads are still where they were.
    assert_eq!(
        reqwest::get(format!("{base}/state"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/ui/missing.js"))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn ui_status_names_the_leader() {
    let base = start_master().await;
    let status: Value = reqwest::get(format!("{base}/ui/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "leading");
    assert_eq!(status["leading"], true);
    assert_eq!(status["cluster"], "ui-test");
    assert_eq!(status["version"], proto::MESOS_VERSION);
    let port = base.rsplit(':').next().unwrap();
    assert_eq!(status["leader_url"], format!("//127.0.0.1:{port}/"));
    assert_eq!(status["leader"], format!("master@127.0.0.1:{port}"));
    assert_eq!(
        status["masters"],
        serde_json::json!([]),
        "without ZooKeeper a master knows no peers"
    );
}

#[tokio::test]
async fn the_file_proxy_answers_404_json_for_unknown_agents_and_operations() {
    let base = start_master().await;
    let unknown = reqwest::get(format!("{base}/agents/no-such-agent/files/browse?path=/x"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(content_type(&unknown).starts_with("application/json"));
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no-such-agent"),
        "{body}"
    );

    let (agent_id, _link) = register_agent(&base, "a1", &start_fake_agent().await).await;
    let bad_op = reqwest::get(format!("{base}/agents/{agent_id}/files/delete?path=/x"))
        .await
        .unwrap();
    assert_eq!(bad_op.status(), 404);
    assert!(content_type(&bad_op).starts_with("application/json"));
}

#[tokio::test]
async fn the_file_proxy_relays_the_agent_and_reports_a_silent_one() {
    let base = start_master().await;
    let (agent_id, _link) = register_agent(&base, "a1", &start_fake_agent().await).await;

    let read = reqwest::get(format!(
        "{base}/agents/{agent_id}/files/read?path=%2Fframeworks%2Ff%2Fstdout&offset=5&length=10"
    ))
    .await
    .unwrap();
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.unwrap();
    assert_eq!(
        body["data"], "path=%2Fframeworks%2Ff%2Fstdout&offset=5&length=10",
        "the query is passed through untouched"
    );

    let download = reqwest::get(format!(
        "{base}/agents/{agent_id}/files/download?path=/x/stdout"
    ))
    .await
    .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=stdout"
    );
    assert_eq!(download.text().await.unwrap(), "hello from the sandbox\n");

    let browse = reqwest::get(format!("{base}/agents/{agent_id}/files/browse?path=/nope"))
        .await
        .unwrap();
    assert_eq!(browse.status(), 404, "the agent's own errors pass through");
    assert_eq!(browse.text().await.unwrap(), "No such file");

    // An agent whose port no longer answers.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (silent_id, _silent_link) = register_agent(&base, "a2", &endpoint).await;
    let silent = reqwest::get(format!(
        "{base}/agents/{silent_id}/files/read?path=/x&offset=0"
    ))
    .await
    .unwrap();
    assert_eq!(silent.status(), 502);
    let body: Value = silent.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
}

#[tokio::test]
async fn a_standby_serves_the_page_and_names_the_leader() {
    let ensemble = election::memory::MemoryEnsemble::new();
    let leader = start_master_with(Arc::new(ensemble.clone()), "leading").await;
    let standby = start_master_with(Arc::new(ensemble), "following").await;

    let page = reqwest::get(format!("{standby}/")).await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "a standby serves the page, which then sends the browser on"
    );
    let status: Value = reqwest::get(format!("{standby}/ui/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["leading"], false);
    assert_eq!(
        status["leader_url"],
        format!("//{}/", leader.trim_start_matches("http://"))
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let proxied = no_redirects
        .get(format!("{standby}/agents/a1/files/browse?path=/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 307, "only the leader knows agents");
    let location = proxied.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!(
            "//{}/agents/a1/files/browse?path=/x",
            leader.trim_start_matches("http://")
        )
    );
}

#[tokio::test]
async fn every_master_lists_the_registered_masters_with_the_leader_marked() {
    let ensemble = election::memory::MemoryEnsemble::new();
    let leader = start_master_with(Arc::new(ensemble.clone()), "leading").await;
    let standby = start_master_with(Arc::new(ensemble), "following").await;
    let leader_endpoint = leader.trim_start_matches("http://").to_string();
    let standby_endpoint = standby.trim_start_matches("http://").to_string();
    let expected = serde_json::json!([
        {"endpoint": leader_endpoint, "url": format!("//{leader_endpoint}/"), "leader": true},
        {"endpoint": standby_endpoint, "url": format!("//{standby_endpoint}/"), "leader": false},
    ]);
    for base in [&leader, &standby] {
        // The standby's membership may be read a moment after it joined: wait for it, bounded.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let status: Value = reqwest::get(format!("{base}/ui/status"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["masters"] == expected {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{base}: masters {} instead of {expected}",
                status["masters"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
