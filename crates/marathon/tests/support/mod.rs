//! Test support: a real `tepui dev` child process, Marathon in-process over an in-memory store,
//! an HTTP client, and waits on conditions with deadlines (never sleeps to synchronise).

#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;

#[allow(unused_imports)] // each test file uses a different part
pub use dev_process::{free_port, tepui_bin, Dev, TempDir};

/// `tepui dev` on two free ports, its state under `dir`.
pub fn start_dev(dir: &TempDir) -> Dev {
    Dev::start(free_port(), free_port(), dir, "dev")
}

/// Marathon in-process (in-memory store, standalone election) against `dev`.
pub struct Marathon {
    /// Its HTTP API (`m.get(..)`, `m.url` reach it through `Deref`).
    pub client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), marathon::MarathonError>>,
}

impl Marathon {
    pub async fn start(dev: &Dev) -> Marathon {
        Marathon::start_with_store(dev, marathon_store::InMemoryStore::default()).await
    }

    /// Over a given store (another handle on the same data = a later leader of the same cluster).
    pub async fn start_with_store(dev: &Dev, store: marathon_store::InMemoryStore) -> Marathon {
        Marathon::start_master(&dev.address(), store).await
    }

    pub async fn start_master(master: &str, store: marathon_store::InMemoryStore) -> Marathon {
        let port = free_port();
        let mut config =
            marathon::default_config(master, "127.0.0.1".parse().unwrap(), port).expect("config");
        config.hostname = "127.0.0.1".into();
        config.failover_timeout = Duration::from_secs(60);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let election = marathon_store::MarathonElection::standalone(&format!("127.0.0.1:{port}"));
        let task = tokio::spawn(marathon::run_with(
            config,
            std::sync::Arc::new(store),
            election,
            async move {
                let _ = stopped.await;
            },
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let m = Marathon {
            client: Client { url, http },
            stop: Some(stop),
            task,
        };
        m.wait("/ping answers", Duration::from_secs(10), |m| async move {
            m.get("/v2/info").await.ok().map(|_| ())
        })
        .await;
        m
    }

    /// Polls `check` until it returns `Some` or `timeout` passes (then panics naming `what`).
    pub async fn wait<'a, T, F, Fut>(&'a self, what: &str, timeout: Duration, check: F) -> T
    where
        F: Fn(&'a Marathon) -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let apps = self.get("/v2/apps?embed=apps.tasks").await;
                let deployments = self.get("/v2/deployments").await;
                let queue = self.get("/v2/queue").await;
                panic!("timed out after {timeout:?} waiting for {what}\napps: {apps:?}\ndeployments: {deployments:?}\nqueue: {queue:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, not synchronisation
        }
    }

    /// A handle for HTTP only (same URL and client), for closures that outlive a borrow.
    pub fn clone_client(&self) -> Client {
        self.client.clone()
    }

    pub async fn stop(mut self) -> Result<(), marathon::MarathonError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("marathon stops")
            .expect("join")
    }
}

impl std::ops::Deref for Marathon {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// HTTP access to a Marathon without owning it.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
}

impl Client {
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    /// The app's JSON (`GET /v2/apps/{id}`).
    pub async fn app(&self, id: &str) -> Option<Value> {
        self.get(&format!("/v2/apps/{id}"))
            .await
            .ok()
            .map(|v| v["app"].clone())
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Ids of the app's tasks in `state`.
pub fn task_ids(app: &Value, state: &str) -> Vec<String> {
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == state)
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

/// The sandbox `directory` of the executor with this id, from the agent's /state.
pub fn find_sandbox(agent_state: &Value, executor_id: &str) -> Option<String> {
    let frameworks = ["frameworks", "completed_frameworks"];
    let executors = ["executors", "completed_executors"];
    for f in frameworks
        .iter()
        .flat_map(|k| agent_state[*k].as_array().cloned().unwrap_or_default())
    {
        for e in executors
            .iter()
            .flat_map(|k| f[*k].as_array().cloned().unwrap_or_default())
        {
            if e["id"] == executor_id {
                if let Some(d) = e["directory"].as_str() {
                    return Some(d.to_string());
                }
            }
        }
    }
    None
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "marathon=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// `/v2/events` as a channel of `(eventType, payload)`, read by a background task.
pub async fn events(url: &str) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
    use futures::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/v2/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("GET /v2/events");
    assert_eq!(resp.status().as_u16(), 200);
    tokio::spawn(async move {
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let kind = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .map(str::to_string);
                let data = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .and_then(|d| serde_json::from_str(d).ok());
                if let (Some(kind), Some(data)) = (kind, data) {
                    if tx.send((kind, data)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Waits for an event of `kind` matching `pick`; returns the event types seen before it.
pub async fn wait_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    kind: &str,
    timeout: Duration,
    pick: impl Fn(&Value) -> bool,
) -> (Value, Vec<String>) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((k, v))) => {
                if k == kind && pick(&v) {
                    return (v, seen);
                }
                seen.push(k);
            }
            Ok(None) => panic!("event stream closed waiting for {kind}; saw {seen:?}"),
            Err(_) => panic!("timed out waiting for {kind}; saw {seen:?}"),
        }
    }
}
