//! Test harness: the router on a real TCP port over a hand-built `ServiceView`, with a fake
//! leader task that answers every `Command` and records what it was asked.
#![allow(dead_code)]

use marathon_api::service::*;
use marathon_model::{
    AppDefinition, HealthCheckResult, IpAddress, LastTaskFailure, ParseContext, PathId, Task,
    Timestamp, VersionInfo,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

pub const V1: Timestamp = Timestamp(1_714_564_800_123); // 2024-05-01T12:00:00.123Z
pub const V0: Timestamp = Timestamp(1_714_564_000_000);
pub const DEPLOYMENT: &str = "2e5b1c3a-8d0f-4a4e-9b55-0c4a3d1e7f10";
pub const HELLO_TASK: &str = "hello2.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1";
pub const WEB_TASK: &str = "prod_web.instance-6f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1";

/// What the fake leader was asked.
#[derive(Debug, Clone)]
pub enum Recorded {
    Deploy {
        changes: Vec<AppChange>,
        force: bool,
        create_only: bool,
    },
    Kill {
        ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
    },
    Cancel {
        id: String,
        force: bool,
    },
    ResetDelay(PathId),
    Abdicate,
    GetAppVersion(PathId, Timestamp),
}

/// How the fake leader answers deployments.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub deploy_error: Option<CommandError>,
}

pub struct Harness {
    pub base: String,
    pub addr: String,
    pub view: watch::Sender<Arc<ServiceView>>,
    pub leader: watch::Sender<LeaderState>,
    pub events: broadcast::Sender<MarathonEvent>,
    pub recorded: Arc<Mutex<Vec<Recorded>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub http: reqwest::Client,
}

pub fn app(body: Value, version: Timestamp) -> AppEntry {
    let mut definition = AppDefinition::from_json(&body, &ParseContext::post()).expect("app");
    definition.version = Some(version);
    AppEntry {
        definition,
        version_info: VersionInfo {
            last_scaling_at: version,
            last_config_change_at: version,
        },
        versions: vec![V0, version],
    }
}

pub fn task(id: &str, app_id: &str, state: &str, alive: Option<bool>) -> Task {
    Task {
        id: id.into(),
        app_id: PathId::parse(app_id).unwrap(),
        host: "agent-1".into(),
        state: state.into(),
        slave_id: "7c1e-S0".into(),
        staged_at: Some(Timestamp(V1.0 + 389)),
        started_at: Some(Timestamp(V1.0 + 917)),
        version: V1,
        ports: vec![31742],
        service_ports: vec![],
        ip_addresses: vec![IpAddress::new("10.0.0.11")],
        health_check_results: alive
            .map(|alive| {
                vec![HealthCheckResult {
                    alive,
                    consecutive_failures: 0,
                    first_success: Some(V1),
                    last_success: Some(V1),
                    last_failure: None,
                    last_failure_cause: None,
                    instance_id: "i".into(),
                }]
            })
            .unwrap_or_default(),
        local_volumes: vec![],
        role: "*".into(),
        region: None,
        zone: None,
    }
}

/// `/hello2` (one running task, port 10000), `/prod/web` (label tier=web, healthy task, being
/// deployed), `/prod/db` (label tier=db, queued, last failure).
pub fn sample_view() -> ServiceView {
    let mut v = ServiceView::default();
    let hello = app(
        json!({"id":"/hello2","cmd":"echo hello; sleep 10","mem":16,"cpus":0.1,"instances":1,
               "disk":0.0,"portDefinitions":[{"port":10000}]}),
        V1,
    );
    let web = app(
        json!({"id":"/prod/web","cmd":"web","labels":{"tier":"web"}}),
        V1,
    );
    let db = app(
        json!({"id":"/prod/db","cmd":"db","labels":{"tier":"db"},"instances":0}),
        V1,
    );
    for e in [hello, web, db] {
        v.apps.insert(e.definition.id.clone(), e);
    }
    let id = |s: &str| PathId::parse(s).unwrap();
    v.tasks.insert(
        id("/hello2"),
        vec![task(HELLO_TASK, "/hello2", "TASK_RUNNING", None)],
    );
    v.tasks.insert(
        id("/prod/web"),
        vec![task(WEB_TASK, "/prod/web", "TASK_RUNNING", Some(true))],
    );
    v.deployments.push(
        json!({"id": DEPLOYMENT, "version": V1, "affectedApps": ["/prod/web"],
        "affectedPods": [], "steps": [], "currentActions": [], "currentStep": 1, "totalSteps": 1}),
    );
    v.deployments_by_app
        .insert(id("/prod/web"), vec![DEPLOYMENT.into()]);
    v.last_failures.insert(
        id("/prod/db"),
        LastTaskFailure {
            app_id: id("/prod/db"),
            host: "agent-1".into(),
            message: "boom".into(),
            state: "TASK_FAILED".into(),
            task_id: "prod_db.instance-7f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1".into(),
            timestamp: V1,
            version: V1,
            slave_id: None,
        },
    );
    v.queue.push(QueueEntry {
        app_id: id("/prod/db"),
        item: json!({"app": {"id": "/prod/db"}, "count": 1, "delay": {"timeLeftSeconds": 3, "overdue": false},
            "since": V1, "processedOffersSummary": {"processedOffersCount": 0, "unusedOffersCount": 0}}),
        last_unused_offers: vec![json!({"offer": {"id": "o1"}})],
    });
    v
}

async fn fake_leader(
    mut rx: mpsc::Receiver<Command>,
    view: watch::Receiver<Arc<ServiceView>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) {
    let result = || DeploymentResult {
        deployment_id: "dep-1".into(),
        version: Timestamp(V1.0 + 1000),
    };
    while let Some(cmd) = rx.recv().await {
        let rec = |r: Recorded| recorded.lock().unwrap().push(r);
        match cmd {
            Command::Deploy {
                changes,
                force,
                create_only,
                reply,
            } => {
                rec(Recorded::Deploy {
                    changes,
                    force,
                    create_only,
                });
                let err = behaviour.lock().unwrap().deploy_error.clone();
                let _ = reply.send(err.map_or_else(|| Ok(result()), Err));
            }
            Command::KillTasks {
                task_ids,
                scale,
                wipe,
                force,
                reply,
            } => {
                let v = view.borrow().clone();
                let killed = v
                    .tasks
                    .values()
                    .flatten()
                    .filter(|t| task_ids.contains(&t.id))
                    .cloned()
                    .collect();
                rec(Recorded::Kill {
                    ids: task_ids,
                    scale,
                    wipe,
                    force,
                });
                let _ = reply.send(Ok(KillResult {
                    killed,
                    deployment: scale.then(result),
                }));
            }
            Command::CancelDeployment { id, force, reply } => {
                rec(Recorded::Cancel { id, force });
                let _ = reply.send(Ok((!force).then(result)));
            }
            Command::ResetDelay { app_id, reply } => {
                rec(Recorded::ResetDelay(app_id));
                let _ = reply.send(Ok(()));
            }
            Command::Abdicate { reply } => {
                rec(Recorded::Abdicate);
                let _ = reply.send(());
            }
            Command::GetAppVersion {
                app_id,
                version,
                reply,
            } => {
                rec(Recorded::GetAppVersion(app_id.clone(), version));
                let v = view.borrow().clone();
                let r = v.apps.get(&app_id).map(|e| {
                    let mut d = e.definition.clone();
                    d.version = Some(version);
                    d.instances = 7;
                    d
                });
                let _ = reply.send(r.ok_or(CommandError::NotFound("no".into())));
            }
        }
    }
}

/// Start a router; `leader` maps our own address to the leader state.
pub async fn start(view: ServiceView, leader: impl FnOnce(&str) -> LeaderState) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (view_tx, view_rx) = watch::channel(Arc::new(view));
    let (leader_tx, leader_rx) = watch::channel(leader(&addr));
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let (events, _) = broadcast::channel(64);
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let behaviour = Arc::new(Mutex::new(Behaviour::default()));
    tokio::spawn(fake_leader(
        cmd_rx,
        view_rx.clone(),
        recorded.clone(),
        behaviour.clone(),
    ));
    let info = InfoConfig {
        master: "zk://z1:2181/mesos".into(),
        zk: "zk://z1:2181/marathon".into(),
        ha: true,
        hostname: "127.0.0.1".into(),
        http_port: listener.local_addr().unwrap().port(),
        framework_name: "marathon".into(),
        mesos_role: "*".into(),
        leader_proxy_connection_timeout_ms: 1000,
        leader_proxy_read_timeout_ms: 5000,
        zk_max_versions: 50,
        ..InfoConfig::default()
    };
    let handle = ServiceHandle {
        view: view_rx,
        commands: cmd_tx,
        events: events.clone(),
        leader: leader_rx,
        self_address: addr.clone(),
        info: Arc::new(info),
    };
    let app = marathon_api::router(handle);
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Harness {
        base: format!("http://{addr}"),
        addr,
        view: view_tx,
        leader: leader_tx,
        events,
        recorded,
        behaviour,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

pub async fn leading(view: ServiceView) -> Harness {
    start(view, |a| LeaderState::Leading(a.to_string())).await
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// Send and return status, headers and the JSON body (`Null` when empty or not JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

impl Harness {
    /// `GET /metrics/prometheus` read by the strict reader (every line valid, a TYPE line before
    /// its samples, no duplicate names), the process block there; also the response headers.
    pub async fn prometheus(&self) -> (reqwest::header::HeaderMap, metrics_text::strict::Samples) {
        let r = self
            .http
            .get(self.url("/metrics/prometheus"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let headers = r.headers().clone();
        assert_eq!(
            headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = r.text().await.unwrap();
        let samples = metrics_text::strict::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for name in [
            "process_start_time_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(samples.value(name).unwrap_or_default() > 0.0, "{name}");
        }
        (headers, samples)
    }

    /// [`Harness::prometheus`], with each `/metrics` gauge present with the same value and kind
    /// (on the leader: a standby proxies `/metrics`).
    pub async fn prometheus_matching_metrics(
        &self,
    ) -> (reqwest::header::HeaderMap, metrics_text::strict::Samples) {
        let (headers, samples) = self.prometheus().await;
        let (_, _, dropwizard) = self.send("GET", "/metrics", None).await;
        let gauges = dropwizard["gauges"].as_object().unwrap();
        assert!(!gauges.is_empty());
        for (key, gauge) in gauges {
            let name = key.replace(['.', '-'], "_");
            assert_eq!(samples.value(&name), gauge["value"].as_f64(), "{name}");
            assert_eq!(samples.kind(&name), Some("gauge"));
        }
        (headers, samples)
    }
}
