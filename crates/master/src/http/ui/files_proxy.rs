//! `GET /agents/{agent_id}/files/{browse|read|download}?path=...`: the agent's `/files/*` reached
//! through the master, so the web UI needs no route to agents (mesos-http-api.md section 5).
//!
//! The query string is forwarded untouched; the agent's path guard is what confines paths to
//! sandboxes, the master adds no rule of its own. Answers: the agent's status and body as they
//! are (bodies streamed, `Content-Disposition` kept for downloads); 404 JSON for an unknown agent
//! or operation; 502 JSON when the agent does not answer. On a standby, 307 to the leader like the
//! other leader-only endpoints (only the leader knows the agents).

use super::super::{json_response, redirect_unless_leader, AppState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::Response;
use futures::TryStreamExt;
use proto::AgentId;
use serde_json::json;
use std::sync::OnceLock;
use std::time::Duration;

/// Time allowed to open a connection to an agent.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole `browse` or `read` answer (reads are at most 1 MiB on the agent).
const AGENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Headers of the agent's answer passed on to the browser.
const FORWARDED_HEADERS: [header::HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_DISPOSITION,
];

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(AGENT_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

fn json_error(status: StatusCode, message: String) -> Response {
    let mut response = json_response(&json!({ "error": message }));
    *response.status_mut() = status;
    response
}

pub async fn forward(
    State(master): State<AppState>,
    Path((agent_id, operation)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(r) = redirect_unless_leader(&master, path_and_query) {
        return r;
    }
    let operation = operation.trim_end_matches(".json");
    let streamed = match operation {
        "browse" | "read" => false,
        "download" => true,
        other => {
            return json_error(
                StatusCode::NOT_FOUND,
                format!("No file operation '{other}'; use browse, read or download"),
            )
        }
    };
    let endpoint = master
        .lock()
        .core
        .agents
        .get(&AgentId::new(agent_id.clone()))
        .map(|a| a.endpoint.clone());
    let Some(endpoint) = endpoint else {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("Agent '{agent_id}' is not known to this master"),
        );
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("http://{endpoint}/files/{operation}{query}");
    let mut request = client().get(&url);
    if !streamed {
        request = request.timeout(AGENT_ANSWER_TIMEOUT);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::debug!(agent = %agent_id, %url, error = %e, "agent did not answer a files request");
            return json_error(
                StatusCode::BAD_GATEWAY,
                format!("Agent '{agent_id}' at {endpoint} did not answer: {e}"),
            );
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = Response::builder().status(status);
    for name in FORWARDED_HEADERS {
        if let Some(value) = answer.headers().get(name.as_str()) {
            if let Ok(value) = header::HeaderValue::from_bytes(value.as_bytes()) {
                builder = builder.header(name, value);
            }
        }
    }
    let body = if streamed {
        Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other))
    } else {
        match answer.bytes().await {
            Ok(bytes) => Body::from(bytes),
            Err(e) => {
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    format!("Agent '{agent_id}' at {endpoint} broke off: {e}"),
                )
            }
        }
    };
    builder.body(body).unwrap_or_else(|e| {
        json_error(
            StatusCode::BAD_GATEWAY,
            format!("cannot relay the agent's answer: {e}"),
        )
    })
}
