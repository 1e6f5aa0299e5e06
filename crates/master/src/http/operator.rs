//! `POST /api/v1` (and `/api/v1/...`, served by prefix: pymesos posts to `/api/v1/operator`): the
//! v1 operator API's read calls (mesos-http-api.md section 10).

use super::endpoints::metrics_snapshot;
use super::{json_response, negotiate, redirect_unless_leader, state_json, text_error, AppState};
use crate::server::now_secs;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub async fn handle(
    State(master): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = negotiate(&headers) {
        return response;
    }
    let call: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into Call: {e}"),
            )
        }
    };
    let Some(kind) = call.get("type").and_then(Value::as_str) else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Failed to parse body into Call: missing field 'type'",
        );
    };
    // Calls any master answers; the rest are leader-only (spec section 10).
    let answer =
        |payload: Value| json_response(&json!({"type": kind, kind.to_ascii_lowercase(): payload}));
    match kind {
        "GET_HEALTH" => return answer(json!({"healthy": true})),
        "GET_VERSION" => return answer(json!({"version_info": state_json::version_json()})),
        "GET_FLAGS" => {
            let flags: Vec<Value> = master
                .config
                .flags
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            return answer(json!({"flags": flags}));
        }
        "GET_METRICS" => {
            let metrics: Vec<Value> = metrics_snapshot(&master)
                .into_iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            return answer(json!({"metrics": metrics}));
        }
        "UNKNOWN" => return text_error(StatusCode::NOT_IMPLEMENTED, "Received an unknown call"),
        _ => {}
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/api/v1");
    if let Some(response) = redirect_unless_leader(&master, path) {
        return response;
    }
    if kind == "MARK_AGENT_GONE" {
        return mark_agent_gone(&master, &call).await;
    }
    let inner = master.lock();
    let core = &inner.core;
    let tasks = || {
        let active: Vec<Value> = core
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values())
            .map(state_json::v1_task)
            .collect();
        let completed: Vec<Value> = core
            .frameworks
            .values()
            .chain(core.completed_frameworks.iter())
            .flat_map(|f| f.completed_tasks.iter())
            .map(state_json::v1_task)
            .collect();
        let unreachable: Vec<Value> = core
            .frameworks
            .values()
            .flat_map(|f| f.unreachable_tasks.values())
            .map(state_json::v1_task)
            .collect();
        json!({"tasks": active, "completed_tasks": completed, "unreachable_tasks": unreachable})
    };
    let agents = || json!({"agents": core.agents.values().map(state_json::v1_agent).collect::<Vec<_>>(), "recovered_agents": []});
    let frameworks = || {
        json!({
            "frameworks": core.frameworks.values().map(|f| state_json::v1_framework(core, f)).collect::<Vec<_>>(),
            "completed_frameworks": core.completed_frameworks.iter().map(|f| state_json::v1_framework(core, f)).collect::<Vec<_>>(),
        })
    };
    let executors = || json!({"executors": [], "orphan_executors": []});
    match kind {
        "GET_MASTER" => {
            let elected = master.elected_time.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(now_secs());
            answer(json!({
                "master_info": master.info,
                "start_time": master.start_time,
                "elected_time": elected,
            }))
        }
        "GET_AGENTS" => answer(agents()),
        "GET_FRAMEWORKS" => answer(frameworks()),
        "GET_TASKS" => answer(tasks()),
        "GET_EXECUTORS" => answer(executors()),
        "GET_STATE" => answer(json!({
            "get_tasks": tasks(),
            "get_executors": executors(),
            "get_frameworks": frameworks(),
            "get_agents": agents(),
        })),
        "GET_ROLES" => {
            let mut roles: Vec<String> = core.frameworks.values().map(|f| f.role()).collect();
            roles.sort();
            roles.dedup();
            answer(json!({"roles": roles.into_iter().map(|r| json!({"name": r, "weight": 1.0})).collect::<Vec<_>>()}))
        }
        other => text_error(
            StatusCode::BAD_REQUEST,
            format!("Operator call '{other}' is not supported by tepui; supported: GET_HEALTH, GET_FLAGS, GET_VERSION, GET_METRICS, GET_MASTER, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS, GET_EXECUTORS, GET_STATE, GET_ROLES, MARK_AGENT_GONE"),
        ),
    }
}

/// `MARK_AGENT_GONE` (`mark_agent_gone.agent_id`): recorded in the registry first, then the agent's
/// tasks are reported gone and the agent is told to shut down; it can never re-register.
async fn mark_agent_gone(master: &AppState, call: &Value) -> Response {
    let Some(id) = call
        .pointer("/mark_agent_gone/agent_id/value")
        .and_then(Value::as_str)
    else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Expecting 'mark_agent_gone.agent_id.value' to be present",
        );
    };
    let id = proto::AgentId::new(id);
    let known = {
        let inner = master.lock();
        inner.registry.is_admitted(&id) || inner.registry.is_unreachable(&id)
    };
    if !known {
        return text_error(
            StatusCode::NOT_FOUND,
            format!("Agent '{id}' is not known to the registry"),
        );
    }
    let now = now_secs();
    if let Err(e) = master
        .update_registry(&[registry::Operation::MarkGone {
            id: id.clone(),
            timestamp: now,
        }])
        .await
    {
        master.registry_failed(e.to_string());
        return text_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Registry unavailable: {e}"),
        );
    }
    let mut inner = master.lock();
    let effects = inner.core.mark_gone(now, &id);
    inner.execute(effects);
    StatusCode::OK.into_response()
}
