//! Classic master endpoints: `/state` and friends, `/metrics/snapshot` (and its figures as
//! `/metrics/prometheus`), `/version`, `/flags`, `/health`, `/redirect` and `/teardown`
//! (mesos-http-api.md sections 2-6); `/` is the web UI (`ui/`).

use super::{
    json_or_jsonp, json_response, redirect_unless_leader, state_json, text_error, AppState,
};
use crate::server::{now_secs, Leadership, Master};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use proto::FrameworkId;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

pub async fn health() -> StatusCode {
    StatusCode::OK
}

pub async fn not_found(uri: Uri) -> Response {
    text_error(
        StatusCode::NOT_FOUND,
        format!("No endpoint at '{}'", uri.path()),
    )
}

pub async fn redirect(State(master): State<AppState>) -> Response {
    let endpoint = match master.leadership() {
        Leadership::Leading | Leadership::Recovering => Some(master.info.endpoint()),
        Leadership::Following(leader) => leader.map(|l| l.endpoint),
    };
    match endpoint {
        Some(endpoint) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{endpoint}"))],
        )
            .into_response(),
        None => text_error(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

pub async fn version() -> Response {
    json_response(&state_json::version_json())
}

pub async fn flags(State(master): State<AppState>, Query(params): Params) -> Response {
    json_or_jsonp(
        &json!({"flags": master.config.flags}),
        params.get("jsonp").map(String::as_str),
    )
}

pub async fn state(State(master): State<AppState>, uri: Uri, Query(params): Params) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let inner = master.lock();
    let value = state_json::state(&master, &inner.core);
    drop(inner);
    json_or_jsonp(&value, params.get("jsonp").map(String::as_str))
}

pub async fn state_summary(State(master): State<AppState>, uri: Uri) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let inner = master.lock();
    let core = &inner.core;
    let frameworks: Vec<Value> = core
        .frameworks
        .values()
        .map(|f| {
            let mut object = json!({
                "id": f.id.value, "name": f.info.name, "pid": "", "used_resources": Value::Object(f.used().flatten()),
                "offered_resources": {}, "capabilities": f.info.capabilities.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
                "hostname": f.info.hostname.clone().unwrap_or_default(), "webui_url": f.info.webui_url.clone().unwrap_or_default(),
                "active": f.active, "connected": f.connected, "recovered": f.recovered,
                "slave_ids": f.tasks.values().map(|t| t.agent_id.value.clone()).collect::<std::collections::BTreeSet<_>>(),
            });
            let counts = state_json::task_counts(f.tasks.values().chain(f.completed_tasks.iter()));
            if let (Value::Object(o), Value::Object(c)) = (&mut object, counts) {
                o.extend(c);
            }
            object
        })
        .collect();
    let slaves: Vec<Value> = core.agents.values().map(state_json::agent).collect();
    json_response(&json!({
        "hostname": master.info.hostname,
        "cluster": master.config.cluster,
        "slaves": slaves,
        "frameworks": frameworks,
    }))
}

pub async fn frameworks(
    State(master): State<AppState>,
    uri: Uri,
    Query(params): Params,
) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let wanted = params.get("framework_id").cloned();
    let inner = master.lock();
    let core = &inner.core;
    let keep = |id: &FrameworkId| wanted.as_ref().is_none_or(|w| w == &id.value);
    let value = json!({
        "frameworks": core.frameworks.values().filter(|f| keep(&f.id)).map(|f| state_json::framework(core, f)).collect::<Vec<_>>(),
        "completed_frameworks": core.completed_frameworks.iter().filter(|f| keep(&f.id)).map(|f| state_json::framework(core, f)).collect::<Vec<_>>(),
        "unregistered_frameworks": [],
    });
    drop(inner);
    json_or_jsonp(&value, params.get("jsonp").map(String::as_str))
}

pub async fn slaves(State(master): State<AppState>, uri: Uri, Query(params): Params) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let wanted = params.get("slave_id").cloned();
    let inner = master.lock();
    let value = json!({
        "slaves": inner.core.agents.values().filter(|a| wanted.as_ref().is_none_or(|w| w == &a.id.value)).map(state_json::agent).collect::<Vec<_>>(),
        "recovered_slaves": [],
    });
    drop(inner);
    json_or_jsonp(&value, params.get("jsonp").map(String::as_str))
}

/// `/tasks?limit=&offset=&order=&framework_id=&task_id=` (spec section 3).
pub async fn tasks(State(master): State<AppState>, uri: Uri, Query(params): Params) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let number = |name: &str, default: usize| -> Result<usize, Response> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                text_error(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse '{name}': '{v}' is not a non-negative integer"),
                )
            }),
        }
    };
    let limit = match number("limit", 100) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let offset = match number("offset", 0) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let descending = match params.get("order").map(String::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("'order' must be 'asc' or 'desc', got '{other}'"),
            )
        }
    };
    let inner = master.lock();
    let mut tasks: Vec<(f64, Value)> = Vec::new();
    for framework in inner
        .core
        .frameworks
        .values()
        .chain(inner.core.completed_frameworks.iter())
    {
        if params
            .get("framework_id")
            .is_some_and(|w| w != &framework.id.value)
        {
            continue;
        }
        for task in framework
            .tasks
            .values()
            .chain(framework.completed_tasks.iter())
        {
            if params
                .get("task_id")
                .is_some_and(|w| w != &task.info.task_id.value)
            {
                continue;
            }
            let started = task.statuses.first().map(|s| s.timestamp).unwrap_or(0.0);
            tasks.push((started, state_json::task(task)));
        }
    }
    drop(inner);
    tasks.sort_by(|a, b| a.0.total_cmp(&b.0));
    if descending {
        tasks.reverse();
    }
    let page: Vec<Value> = tasks
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, t)| t)
        .collect();
    json_or_jsonp(
        &json!({"tasks": page}),
        params.get("jsonp").map(String::as_str),
    )
}

pub async fn roles(State(master): State<AppState>, uri: Uri) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let inner = master.lock();
    let mut roles: std::collections::BTreeMap<String, (Vec<String>, proto::ResourceBag)> =
        Default::default();
    for framework in inner.core.frameworks.values() {
        let entry = roles.entry(framework.role()).or_default();
        entry.0.push(framework.id.value.clone());
        let _ = entry.1.add(&framework.used());
    }
    let list: Vec<Value> = roles
        .into_iter()
        .map(|(name, (frameworks, used))| {
            json!({"name": name, "weight": 1.0, "frameworks": frameworks, "resources": Value::Object(used.flatten()),
                   "allocated": Value::Object(used.flatten())})
        })
        .collect();
    json_response(&json!({"roles": list}))
}

/// `POST /teardown` with form body `frameworkId=<id>` (spec section 3).
pub async fn teardown(State(master): State<AppState>, uri: Uri, body: Bytes) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let form: HashMap<String, String> = url_form(&body);
    let Some(id) = form.get("frameworkId") else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Missing 'frameworkId' in the form body",
        );
    };
    let id = FrameworkId::new(id.clone());
    let mut inner = master.lock();
    if !inner.core.frameworks.contains_key(&id) {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!("No framework found with specified ID '{id}'"),
        );
    }
    let mut effects = Vec::new();
    inner.core.remove_framework(now_secs(), &id, &mut effects);
    inner.execute(effects);
    StatusCode::OK.into_response()
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn url_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub async fn registry(State(master): State<AppState>, uri: Uri) -> Response {
    if let Some(r) = redirect_unless_leader(&master, path_of(&uri)) {
        return r;
    }
    let inner = master.lock();
    json_response(&serde_json::to_value(&inner.registry).unwrap_or(Value::Null))
}

pub async fn metrics(State(master): State<AppState>) -> Response {
    json_response(&Value::Object(metrics_snapshot(&master)))
}

/// `/metrics/snapshot` in the Prometheus text format, plus the `process_*` block. Like the
/// snapshot it describes this process, so a backup answers too and never redirects.
pub async fn prometheus(State(master): State<AppState>) -> Response {
    let snapshot = metrics_snapshot(&master);
    let numbers = snapshot
        .iter()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_f64()?)));
    let text = metrics_text::exposition(metrics_text::mesos::from_snapshot(numbers));
    ([(header::CONTENT_TYPE, metrics_text::CONTENT_TYPE)], text).into_response()
}

/// `/metrics/snapshot` with Mesos key names (spec section 6). Backups report zero cluster gauges.
pub fn metrics_snapshot(master: &Master) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: f64| {
        m.insert(k.to_string(), json!(v));
    };
    let leader = master.is_leader();
    put("master/elected", if leader { 1.0 } else { 0.0 });
    put("master/uptime_secs", now_secs() - master.start_time);
    // With the replicated log: 1 once the local replica is VOTING; ensemble size from
    // `log_replicas` (spec section 6). The in-memory registry is always recovered.
    match &master.log_stats {
        Some(stats) => {
            let stats = stats.borrow().clone();
            put(
                "registrar/log/recovered",
                if stats.status == Some(replog::ReplicaStatus::Voting) {
                    1.0
                } else {
                    0.0
                },
            );
            put("registrar/log/ensemble_size", stats.ensemble_size as f64);
        }
        None => put("registrar/log/recovered", 1.0),
    }
    let inner = master.lock();
    let core = &inner.core;
    let agents = core.agents.values();
    let active = agents.clone().filter(|a| a.active).count() as f64;
    let connected = core.agents.values().filter(|a| a.connected).count() as f64;
    put("master/slaves_active", active);
    put("master/slaves_inactive", core.agents.len() as f64 - active);
    put("master/slaves_connected", connected);
    put(
        "master/slaves_disconnected",
        core.agents.len() as f64 - connected,
    );
    put(
        "master/slaves_unreachable",
        core.unreachable_agents.len() as f64,
    );
    let fw_active = core.frameworks.values().filter(|f| f.active).count() as f64;
    let fw_connected = core.frameworks.values().filter(|f| f.connected).count() as f64;
    put("master/frameworks_active", fw_active);
    put(
        "master/frameworks_inactive",
        core.frameworks.len() as f64 - fw_active,
    );
    put("master/frameworks_connected", fw_connected);
    put(
        "master/frameworks_disconnected",
        core.frameworks.len() as f64 - fw_connected,
    );
    let mut gauges: HashMap<&str, f64> = HashMap::new();
    for task in core
        .frameworks
        .values()
        .flat_map(|f| f.tasks.values().chain(f.unreachable_tasks.values()))
    {
        *gauges.entry(task.state.metric_suffix()).or_default() += 1.0;
    }
    for state in ["STAGING", "STARTING", "RUNNING", "KILLING", "UNREACHABLE"] {
        put(
            &format!("master/tasks_{}", state.to_lowercase()),
            gauges.get(state).copied().unwrap_or(0.0),
        );
    }
    for state in [
        "FINISHED",
        "FAILED",
        "KILLED",
        "LOST",
        "ERROR",
        "DROPPED",
        "GONE",
        "GONE_BY_OPERATOR",
    ] {
        let count = core
            .counters
            .tasks_terminal
            .get(state)
            .copied()
            .unwrap_or(0) as f64;
        put(&format!("master/tasks_{}", state.to_lowercase()), count);
    }
    put(
        "master/slave_registrations",
        core.counters.slave_registrations as f64,
    );
    put(
        "master/slave_reregistrations",
        core.counters.slave_reregistrations as f64,
    );
    put("master/slave_removals", core.counters.slave_removals as f64);
    put("master/outstanding_offers", core.offers.len() as f64);
    put(
        "master/valid_status_updates",
        core.counters.valid_status_updates as f64,
    );
    put(
        "master/invalid_status_updates",
        core.counters.invalid_status_updates as f64,
    );
    put(
        "master/messages_scheduler_calls",
        core.counters.messages_scheduler_calls as f64,
    );
    let mut total = proto::ResourceBag::new();
    let mut used = proto::ResourceBag::new();
    for agent in core.agents.values() {
        let _ = total.add(&agent.total);
        let _ = used.add(&agent.used);
    }
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = total.scalar(name);
        let u = used.scalar(name);
        put(&format!("master/{name}_total"), t);
        put(&format!("master/{name}_used"), u);
        put(
            &format!("master/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    put("registrar/queued_operations", 0.0);
    let registry_size = serde_json::to_vec(&inner.registry)
        .map(|v| v.len())
        .unwrap_or(0);
    put("registrar/registry_size_bytes", registry_size as f64);
    drop(inner);
    for (key, value) in system_metrics() {
        put(key, value);
    }
    m
}

/// Host figures from /proc, as Mesos reports them under `system/`.
pub fn system_metrics() -> Vec<(&'static str, f64)> {
    let mut out = vec![(
        "system/cpus_total",
        std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0),
    )];
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let mut parts = load
            .split_whitespace()
            .filter_map(|p| p.parse::<f64>().ok());
        if let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) {
            out.extend([
                ("system/load_1min", a),
                ("system/load_5min", b),
                ("system/load_15min", c),
            ]);
        }
    }
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let field = |name: &str| {
            meminfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map(|kb| kb * 1024.0)
        };
        if let Some(total) = field("MemTotal:") {
            out.push(("system/mem_total_bytes", total));
        }
        if let Some(free) = field("MemAvailable:").or_else(|| field("MemFree:")) {
            out.push(("system/mem_free_bytes", free));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        let form = url_form(b"frameworkId=abc-0001&x=a%20b+c");
        assert_eq!(form["frameworkId"], "abc-0001");
        assert_eq!(form["x"], "a b c");
        assert!(percent_decode("%zz").is_none());
        assert_eq!(percent_decode("%41").as_deref(), Some("A"));
    }
}
