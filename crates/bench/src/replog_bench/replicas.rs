//! tepui's replicated log under test: three replicas in this process, each a `LogHandle` over its
//! own `DiskStorage` and its own axum server on 127.0.0.11-13, replica 1 elected writer; the
//! bench's etcd-shaped HTTP endpoint in front of the writer; and the in-process driver that calls
//! `handle.append` directly.

use super::drivers::{
    concurrent, print_sequential, print_throughput, self_cpu, sequential, throughput,
};
use super::report::SystemFigures;
use super::{Settings, B64, PUT_PATH, QUORUM};
use crate::stats::summarize;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use registrar::runtime::Input;
use registrar::{LogConfig, LogHandle};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The replicas' addresses are 127.0.0.11-13 (any port): loopback, but each its own address.
const REPLICA_IP_BASE: u8 = 10;

struct Replica {
    address: String,
    handle: LogHandle,
}

pub(super) struct TepuiCluster {
    replicas: Vec<Replica>,
    servers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    pub(super) elected_in: Duration,
    /// The last position appended (what the untimed truncate keeps).
    last: Arc<std::sync::atomic::AtomicU64>,
}

async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: &watch::Sender<bool>,
) -> JoinHandle<()> {
    let mut stop_rx = stop.subscribe();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("tepui-bench replog: a server failed: {e}");
        }
    })
}

impl TepuiCluster {
    pub(super) async fn start(dir: &Path, timeout: Duration) -> Result<TepuiCluster> {
        let (stop, _) = watch::channel(false);
        let mut listeners = Vec::new();
        for i in 1..=3u8 {
            let ip = Ipv4Addr::new(127, 0, 0, REPLICA_IP_BASE + i);
            let listener = tokio::net::TcpListener::bind(SocketAddrV4::new(ip, 0))
                .await
                .with_context(|| format!("cannot bind {ip}:0"))?;
            let address = listener
                .local_addr()
                .context("no local address")?
                .to_string();
            listeners.push((address, listener));
        }
        let network: BTreeSet<String> = listeners.iter().map(|(a, _)| a.clone()).collect();
        let mut cluster = TepuiCluster {
            replicas: Vec::new(),
            servers: Vec::new(),
            stop,
            elected_in: Duration::ZERO,
            last: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        for (i, (address, listener)) in listeners.into_iter().enumerate() {
            let store_dir = dir.join(format!("replica{}", i + 1)).join("replicated_log");
            let storage = replog::DiskStorage::open(&store_dir).with_context(|| {
                format!("cannot open the log storage in {}", store_dir.display())
            })?;
            let config = LogConfig {
                address: address.clone(),
                quorum: QUORUM,
                auto_initialize: true,
            };
            let handle = LogHandle::start(config, Box::new(storage))
                .with_context(|| format!("cannot start replica {address}"))?;
            let server = serve(
                listener,
                registrar::transport::router(handle.inbox.clone()),
                &cluster.stop,
            )
            .await;
            cluster.servers.push(server);
            cluster.replicas.push(Replica { address, handle });
        }
        for r in &cluster.replicas {
            r.handle
                .inbox
                .send(Input::Network(network.clone()))
                .map_err(|_| anyhow!("replica {} stopped", r.address))?;
        }
        let started = Instant::now();
        let writer = &cluster.replicas[0].handle;
        writer
            .inbox
            .send(Input::StartWriter)
            .map_err(|_| anyhow!("the writer replica stopped"))?;
        let mut stats = writer.stats.clone();
        let waited = tokio::time::timeout(timeout, async {
            stats
                .wait_for(|s| s.writer_elected || s.writer_demoted || s.storage_error.is_some())
                .await
                .map(|s| (s.writer_elected, s.clone()))
        })
        .await;
        match waited {
            Err(_) => bail!(
                "replica 1 was not elected writer within {timeout:?}; replica stats: {}",
                cluster.describe()
            ),
            Ok(Err(_)) => bail!(
                "replica 1's log task stopped before its election; replica stats: {}",
                cluster.describe()
            ),
            Ok(Ok((false, s))) => bail!(
                "replica 1's election failed: {s:?}; replica stats: {}",
                cluster.describe()
            ),
            Ok(Ok((true, _))) => {}
        }
        cluster.elected_in = started.elapsed();
        Ok(cluster)
    }

    pub(super) fn addresses(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.address.clone()).collect()
    }

    fn writer(&self) -> LogHandle {
        self.replicas[0].handle.clone()
    }

    /// Every replica's stats, for error messages.
    pub(super) fn describe(&self) -> String {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "replica {} ({}): {:?}",
                    i + 1,
                    r.address,
                    *r.handle.stats.borrow()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Untimed, between phases: truncates below the last append (as the registrar does after every
    /// store). Later appends queue behind it; the next warmup absorbs it.
    pub(super) fn truncate(&self) {
        let last = self.last.load(Ordering::Relaxed);
        if last > 0 {
            let _ = self.replicas[0].handle.inbox.send(Input::Truncate(last));
        }
    }

    /// The bench's HTTP front of the writer: `POST /v3/kv/put` with etcd's JSON (base64 value),
    /// answered after `handle.append` completes. Returns its URL.
    pub(super) async fn start_endpoint(&mut self) -> Result<String> {
        let listener = tokio::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot bind 127.0.0.1:0")?;
        let addr: SocketAddr = listener.local_addr().context("no local address")?;
        let state = (self.writer(), self.last.clone());
        let app = axum::Router::new()
            .route(PUT_PATH, axum::routing::post(put_handler))
            .with_state(state);
        let server = serve(listener, app, &self.stop).await;
        self.servers.push(server);
        Ok(format!("http://{addr}{PUT_PATH}"))
    }

    /// Stops the servers (gracefully, so their connections end and the replicas' inboxes close).
    pub(super) async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.replicas.clear();
    }
}

impl Drop for TepuiCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for server in &self.servers {
            server.abort();
        }
    }
}

type EndpointState = (LogHandle, Arc<std::sync::atomic::AtomicU64>);

async fn put_handler(
    axum::extract::State((handle, last)): axum::extract::State<EndpointState>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let value = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("value")
                .and_then(|v| v.as_str())
                .map(|s| B64.decode(s))
        });
    let bytes = match value {
        Some(Ok(bytes)) => bytes,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "{\"error\":\"expected {\\\"key\\\":...,\\\"value\\\":base64}\"}".into(),
            )
        }
    };
    match handle.append(bytes).await {
        Ok(position) => {
            last.fetch_max(position, Ordering::Relaxed);
            (
                StatusCode::OK,
                format!("{{\"header\":{{\"revision\":\"{position}\"}}}}"),
            )
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    }
}

async fn append_op(
    handle: &LogHandle,
    bytes: Vec<u8>,
    last: &std::sync::atomic::AtomicU64,
    timeout: Duration,
) -> Result<()> {
    match tokio::time::timeout(timeout, handle.append(bytes)).await {
        Err(_) => bail!("append did not complete within {timeout:?}"),
        Ok(Err(e)) => bail!("append failed: {e} ({e:?})"),
        Ok(Ok(position)) => {
            last.fetch_max(position, Ordering::Relaxed);
            Ok(())
        }
    }
}

pub(super) async fn tepui_in_process(
    cluster: &TepuiCluster,
    s: &Settings,
    value: &Arc<Vec<u8>>,
) -> Result<SystemFigures> {
    let handle = cluster.writer();
    let last = cluster.last.clone();
    let op = {
        let (handle, value, last, timeout) =
            (handle.clone(), value.clone(), last.clone(), s.op_timeout);
        move |_i: usize| {
            let (handle, value, last) = (handle.clone(), value.clone(), last.clone());
            async move { append_op(&handle, value.to_vec(), &last, timeout).await }
        }
    };
    sequential(s.warmup, &op).await.context("warmup")?;
    let latencies = sequential(s.appends, &op).await?;
    let seq = summarize(&latencies);
    print_sequential(&seq, s.appends, None);
    cluster.truncate();
    sequential(s.warmup, &op).await.context("warmup")?;
    let cpu0 = self_cpu();
    let (elapsed, latencies) = concurrent(s.throughput_appends, s.concurrency, op).await?;
    let cpu = self_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    let t = throughput(
        s.throughput_appends,
        s.value_bytes,
        elapsed,
        &latencies,
        cpu,
    );
    print_throughput(&t, s.concurrency);
    cluster.truncate();
    Ok(SystemFigures {
        sequential: seq,
        throughput: t,
    })
}
