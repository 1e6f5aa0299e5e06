//! The master's HTTP surface (mesos-http-api.md): the v1 scheduler API, the operator API and the
//! classic JSON endpoints, the internal endpoint agents connect to, and the web UI (`ui/`).
//!
//! Routes are registered both as `/<name>` and `/master/<name>` (and with the pre-1.7 `.json`
//! aliases), since Mesos serves each endpoint under its process name too (spec section 1).

mod agent_link;
mod endpoints;
mod operator;
mod scheduler;
pub mod state_json;
mod streaming;
mod ui;

use crate::server::{Leadership, Master};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub type AppState = Arc<Master>;

pub fn router(master: Arc<Master>) -> Router {
    let mut router = ui::routes(Router::new())
        .route("/health", get(endpoints::health))
        .route("/redirect", get(endpoints::redirect))
        .route("/redirect/{*rest}", get(endpoints::not_found))
        .route("/version", get(endpoints::version))
        .route("/flags", get(endpoints::flags))
        .route("/metrics/snapshot", get(endpoints::metrics))
        .route("/metrics/prometheus", get(endpoints::prometheus))
        .route("/api/v1/scheduler", post(scheduler::handle))
        .route("/api/v1", post(operator::handle))
        .route("/api/v1/{*rest}", post(operator::handle))
        .route(proto::agent_protocol::AGENT_PATH, post(agent_link::handle))
        .route("/registrar(1)/registry", get(endpoints::registry));
    for prefix in ["", "/master"] {
        let p = |name: &str| format!("{prefix}/{name}");
        router = router
            .route(&p("state"), get(endpoints::state))
            .route(&p("state.json"), get(endpoints::state))
            .route(&p("state-summary"), get(endpoints::state_summary))
            .route(&p("frameworks"), get(endpoints::frameworks))
            .route(&p("frameworks.json"), get(endpoints::frameworks))
            .route(&p("slaves"), get(endpoints::slaves))
            .route(&p("slaves.json"), get(endpoints::slaves))
            .route(&p("tasks"), get(endpoints::tasks))
            .route(&p("tasks.json"), get(endpoints::tasks))
            .route(&p("roles"), get(endpoints::roles))
            .route(&p("roles.json"), get(endpoints::roles))
            .route(&p("teardown"), post(endpoints::teardown));
        if !prefix.is_empty() {
            router = router
                .route(&p("health"), get(endpoints::health))
                .route(&p("redirect"), get(endpoints::redirect))
                .route(&p("flags"), get(endpoints::flags))
                .route(&p("version"), get(endpoints::version));
        }
    }
    router.fallback(endpoints::not_found).with_state(master)
}

/// A plain-text error, as Mesos answers 4xx/5xx on its HTTP APIs (spec section 1).
pub fn text_error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = (status, message.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub fn json_response(value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Classic endpoints answer JSONP when `?jsonp=<callback>` is given (spec section 1).
pub fn json_or_jsonp(value: &serde_json::Value, jsonp: Option<&str>) -> Response {
    match jsonp {
        Some(callback)
            if !callback.is_empty()
                && callback
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            let body = format!("{callback}({});", value);
            ([(header::CONTENT_TYPE, "text/javascript")], body).into_response()
        }
        Some(_) => text_error(
            StatusCode::BAD_REQUEST,
            "'jsonp' must be a JavaScript identifier",
        ),
        None => json_response(value),
    }
}

/// Leader-only endpoints on a master that does not lead: 307 to the leader, or 503 when none is
/// known (spec section 2). `None` means this master leads and the request may proceed.
pub fn redirect_unless_leader(master: &Master, path_and_query: &str) -> Option<Response> {
    match master.leadership() {
        Leadership::Leading => None,
        Leadership::Following(Some(leader)) => {
            let location = format!("//{}{path_and_query}", leader.endpoint);
            Some(
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response(),
            )
        }
        Leadership::Following(None) => Some(text_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "No leader elected",
        )),
        Leadership::Recovering => Some(text_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master has not finished recovery",
        )),
    }
}

/// Checks `Content-Type` and `Accept` of a v1 API request (spec section 1, content negotiation).
pub fn negotiate(headers: &HeaderMap) -> Result<(), Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match content_type.as_deref() {
        None => return Err(text_error(StatusCode::BAD_REQUEST, "Expecting 'Content-Type' to be present")),
        Some(ct) if ct.split(';').next().map(str::trim) == Some("application/json") => {}
        Some(ct) if ct.starts_with("application/x-protobuf") => {
            return Err(text_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type 'application/x-protobuf' is not supported by tepui; use 'application/json'",
            ))
        }
        Some(ct) => {
            return Err(text_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Expecting 'Content-Type' of application/json or application/x-protobuf, got '{ct}'"),
            ))
        }
    }
    if let Some(accept) = headers.get(header::ACCEPT) {
        let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
        let acceptable = accept.split(',').any(|part| {
            let media = part.split(';').next().unwrap_or("").trim();
            matches!(media, "application/json" | "*/*" | "application/*" | "")
        });
        if !acceptable {
            return Err(text_error(
                StatusCode::NOT_ACCEPTABLE,
                format!("Expecting 'Accept' to allow application/json, got '{accept}'"),
            ));
        }
    }
    Ok(())
}
