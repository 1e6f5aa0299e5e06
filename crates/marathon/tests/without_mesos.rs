//! The service without a reachable Mesos master (no processes): REST commands, the store written
//! before answering, cancellation, abdication and the §8.2 framework-id rule.

mod support;

use marathon::MarathonError;
use marathon_store::{InMemoryStore, StateStore, StoreOp};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use support::{free_port, init_logs, Marathon};

const WAIT: Duration = Duration::from_secs(20);

fn nowhere() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_queue_cancel_and_store() {
    init_logs();
    let store = InMemoryStore::default();
    let m = Marathon::start_master(&nowhere(), store.handle()).await;
    let app = json!({"id":"/q","cmd":"sleep 100","mem":16,"cpus":0.1,"instances":2,"ports":[0,0]});
    let (status, body) = m.send(Method::POST, "/v2/apps", Some(app.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = m.send(Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 409, "POST of an existing app");

    // Stored before the answer: the app version and the deployment are in the store.
    let snapshot = store.handle().load().await.expect("load");
    assert!(snapshot.apps.contains_key("/q"));
    assert_eq!(snapshot.deployments.len(), 1);

    // Nothing launches without Mesos: the queue shows two waiting instances.
    let queue = m
        .wait("2 queued", WAIT, |m| async move {
            let q = m.get("/v2/queue").await.ok()?;
            (q["queue"][0]["count"] == 2).then_some(q)
        })
        .await;
    assert_eq!(queue["queue"][0]["app"]["id"], "/q");
    assert!(queue["queue"][0].get("role").is_none(), "[compat] no role");
    let app = m.app("q").await.expect("app");
    assert_eq!(app["portDefinitions"][0]["port"], 10000);
    assert_eq!(app["portDefinitions"][1]["port"], 10001);
    assert_eq!(app["versionInfo"]["lastScalingAt"], app["version"]);
    assert_eq!(app["versionInfo"]["lastConfigChangeAt"], app["version"]);

    // A change while the deployment runs is locked (409); with force it takes over.
    let (status, body) = m
        .send(Method::PUT, "/v2/apps/q", Some(json!({"instances": 3})))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = m
        .send(
            Method::PUT,
            "/v2/apps/q?force=true",
            Some(json!({"instances": 3})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_string();
    let deployments = m.get("/v2/deployments").await.expect("deployments");
    assert_eq!(
        deployments.as_array().map(Vec::len),
        Some(1),
        "{deployments}"
    );
    let app = m.app("q").await.expect("app");
    assert_eq!(
        app["portDefinitions"][0]["port"], 10000,
        "service ports stay"
    );
    assert_ne!(
        app["versionInfo"]["lastConfigChangeAt"], app["version"],
        "scale only"
    );

    // Cancel with force: stopped in place.
    let (status, _) = m
        .send(
            Method::DELETE,
            &format!("/v2/deployments/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        m.get("/v2/deployments").await.expect("deployments"),
        json!([])
    );
    assert!(store
        .handle()
        .load()
        .await
        .expect("load")
        .deployments
        .is_empty());

    // Delete: the app is gone at once (its instances were never launched).
    let (status, _) = m.send(Method::DELETE, "/v2/apps/q", None).await;
    assert_eq!(status, 200);
    m.wait("app gone", WAIT, |m| async move {
        m.app("q").await.is_none().then_some(())
    })
    .await;
    assert!(store.handle().load().await.expect("load").apps.is_empty());
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abdication_ends_the_service_with_its_exit_code() {
    init_logs();
    let m = Marathon::start_master(&nowhere(), InMemoryStore::default()).await;
    let (status, body) = m.send(Method::DELETE, "/v2/leader", None).await;
    assert_eq!(status, 200, "{body}");
    let result = tokio::time::timeout(WAIT, m.task)
        .await
        .expect("run ends")
        .expect("join");
    match result {
        Err(e @ MarathonError::Abdicated) => assert_eq!(e.exit_code(), marathon::exit::ABDICATED),
        other => panic!("expected Abdicated, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_instances_without_a_framework_id_refuse_to_register() {
    init_logs();
    let store = InMemoryStore::default();
    let writer = store.handle();
    writer.fence().await.expect("fence");
    writer
        .commit(vec![StoreOp::PutInstance {
            id: "x.instance-1".into(),
            value: json!({"instance": null}),
        }])
        .await
        .expect("commit");
    let port = free_port();
    let config =
        marathon::default_config(&nowhere(), "127.0.0.1".parse().unwrap(), port).expect("config");
    let election = marathon_store::MarathonElection::standalone(&format!("127.0.0.1:{port}"));
    let result = tokio::time::timeout(
        WAIT,
        marathon::run_with(
            config,
            std::sync::Arc::new(store),
            election,
            std::future::pending(),
        ),
    )
    .await;
    match result.expect("run returns") {
        Err(e @ MarathonError::FrameworkIdMissing) => assert_eq!(e.exit_code(), 108),
        other => panic!("expected FrameworkIdMissing, got {other:?}"),
    }
}

/// A change too big for one deployment record is refused with 422 and leaves nothing behind; the
/// leader keeps serving (a store failure would have stopped it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_too_big_for_one_deployment_is_refused_and_nothing_is_applied() {
    init_logs();
    let store = InMemoryStore::default();
    let m = Marathon::start_master(&nowhere(), store.handle()).await;
    let apps: Vec<serde_json::Value> = (0..600)
        .map(|i| json!({"id": format!("/many/app-{i}"), "cmd": "sleep 100", "cpus": 0.01, "mem": 8, "instances": 1,
                        "env": {"PADDING": "x".repeat(64)}}))
        .collect();
    let (status, body) = m.send(Method::PUT, "/v2/apps", Some(json!(apps))).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["details"][0]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("600 apps"),
        "{body}"
    );
    let snapshot = store.handle().load().await.expect("load");
    assert!(snapshot.apps.is_empty() && snapshot.deployments.is_empty());
    // Still leading and serving: a normal change goes through.
    let (status, body) = m
        .send(
            Method::POST,
            "/v2/apps",
            Some(json!({"id": "/small", "cmd": "sleep 1", "mem": 8, "cpus": 0.01})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
