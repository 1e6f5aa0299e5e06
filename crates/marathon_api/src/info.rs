//! `/v2/info`, `/v2/leader`, `/ping`, `/metrics`, `/metrics/prometheus` (marathon-api.md §4, §8.3).
//!
//! What: `/v2/info` in the exact §8.3 shape (`marathon_config`, `zookeeper_config`, `http_config`
//! always present as objects, `version` "1.10.0" for version-gated clients, `frameworkId` null
//! before registration); `/v2/leader` GET/DELETE (abdication is a command to the leader);
//! `/ping` as `pong` text or `"pong"` JSON; `/metrics` Dropwizard-shaped, and the same figures in
//! the Prometheus text format at `/metrics/prometheus` (as Marathon 1.9+ serves them).

use crate::errors::ApiError;
use crate::routes::{ok_json, ApiState, Req};
use crate::service::{Command, LeaderState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The Marathon version we answer as (§8.3: "≥ 1.0 style for version-gated clients").
pub const MARATHON_VERSION: &str = "1.10.0";
/// `--https_port` default; we serve no HTTPS but the key must be there (§8.3).
const HTTPS_PORT: u16 = 8443;

fn leader_address(state: &LeaderState) -> Option<String> {
    match state {
        LeaderState::Leading(a) | LeaderState::Following(a) => Some(a.clone()),
        LeaderState::Unknown => None,
    }
}

/// `GET /v2/info`.
pub async fn info(State(api): State<ApiState>) -> Response {
    let c = &api.handle.info;
    let state = api.handle.leader.borrow().clone();
    let view = api.view();
    let mut marathon_config = json!({
        "master": c.master,
        "ha": c.ha,
        "hostname": c.hostname,
        "framework_name": c.framework_name,
        "failover_timeout": c.failover_timeout_secs,
        "checkpoint": true,
        "executor": "//cmd",
        "mesos_role": api.default_role(),
        "mesos_user": c.mesos_user,
        "local_port_min": c.local_port_min,
        "local_port_max": c.local_port_max,
        "task_launch_timeout": c.task_launch_timeout_ms,
        "reconciliation_initial_delay": c.reconciliation_initial_delay_ms,
        "reconciliation_interval": c.reconciliation_interval_ms,
        "scale_apps_initial_delay": c.scale_apps_initial_delay_ms,
        "scale_apps_interval": c.scale_apps_interval_ms,
        "leader_proxy_connection_timeout_ms": c.leader_proxy_connection_timeout_ms,
        "leader_proxy_read_timeout_ms": c.leader_proxy_read_timeout_ms,
        "max_instances_per_offer": c.max_instances_per_offer,
        "webui_url": format!("http://{}:{}", c.hostname, c.http_port),
        "features": [],
    });
    if let (Some(url), Value::Object(m)) = (&view.mesos_leader_url, &mut marathon_config) {
        let url = if url.ends_with('/') {
            url.clone()
        } else {
            format!("{url}/")
        };
        m.insert("mesos_leader_ui_url".into(), json!(url));
    }
    let body = json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": option_env!("TEPUI_GIT_SHA").unwrap_or("unknown"),
        "elected": matches!(state, LeaderState::Leading(_)),
        "leader": leader_address(&state),
        "frameworkId": view.framework_id,
        "marathon_config": marathon_config,
        "zookeeper_config": {
            "zk": c.zk,
            "zk_timeout": c.zk_timeout_ms,
            "zk_session_timeout": c.zk_session_timeout_ms,
            "zk_connection_timeout": c.zk_timeout_ms,
            "zk_max_versions": c.zk_max_versions,
        },
        "http_config": { "http_port": c.http_port, "https_port": HTTPS_PORT },
    });
    ok_json(&body)
}

/// `GET /v2/leader` → `{"leader":"host:port"}`; 404 `There is no leader`.
pub async fn leader(State(api): State<ApiState>) -> Result<Response, ApiError> {
    let state = api.handle.leader.borrow().clone();
    leader_address(&state)
        .map(|l| ok_json(&json!({ "leader": l })))
        .ok_or_else(|| ApiError::not_found("There is no leader"))
}

/// `DELETE /v2/leader` (`backup`/`restore` ignored): ask the leader to step down.
pub async fn abdicate(State(api): State<ApiState>) -> Result<Response, ApiError> {
    if !matches!(*api.handle.leader.borrow(), LeaderState::Leading(_)) {
        return Err(ApiError::not_found("There is no leader"));
    }
    api.call(|reply| Command::Abdicate { reply }).await?;
    Ok(ok_json(&json!({ "message": "Leadership abdicated" })))
}

/// `GET /ping`: `pong` as text, `"pong"` with `Accept: application/json`.
pub async fn ping(req: Req) -> Response {
    let wants_json = req
        .headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        ok_json(&json!("pong"))
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "pong",
        )
            .into_response()
    }
}

/// `GET /metrics`: Dropwizard shape; a few gauges from the view.
pub async fn metrics(State(api): State<ApiState>) -> Response {
    ok_json(&dropwizard(&api))
}

fn dropwizard(api: &ApiState) -> Value {
    let view = api.view();
    let tasks: usize = view.tasks.values().map(Vec::len).sum();
    json!({
        "version": "4.0.0",
        "counters": {},
        "gauges": {
            "marathon.apps.active.gauge": {"value": view.apps.len()},
            "marathon.tasks.running.gauge": {"value": tasks},
            "marathon.deployments.active.gauge": {"value": view.deployments.len()},
            "marathon.launch-queue.size.gauge": {"value": view.queue.len()},
        },
        "histograms": {},
        "meters": {},
        "timers": {},
    })
}

/// The path served by every instance itself, never proxied: metrics describe the process that
/// answers, and a scrape of each instance must not read the leader's figures twice.
pub const PROMETHEUS_PATH: &str = "/metrics/prometheus";

/// `GET /metrics/prometheus`: the Dropwizard gauges (`marathon.apps.active.gauge` becomes
/// `marathon_apps_active_gauge`) and counters (their `count`), plus the `process_*` block.
pub async fn prometheus(State(api): State<ApiState>) -> Response {
    let registry = dropwizard(&api);
    let mut metrics = Vec::new();
    for (section, kind, field) in [
        ("gauges", metrics_text::Kind::Gauge, "value"),
        ("counters", metrics_text::Kind::Counter, "count"),
    ] {
        for (key, entry) in registry[section].as_object().into_iter().flatten() {
            if let Some(value) = entry[field].as_f64() {
                let name = match key.starts_with("marathon.") {
                    true => key.clone(),
                    false => format!("marathon.{key}"),
                };
                metrics.push(metrics_text::Metric::new(
                    &name,
                    kind,
                    format!("Marathon metric {key}"),
                    value,
                ));
            }
        }
    }
    (
        [(header::CONTENT_TYPE, metrics_text::CONTENT_TYPE)],
        metrics_text::exposition(metrics),
    )
        .into_response()
}
