//! The agent's HTTP server (mesos-http-api.md sections 1 and 5).
//!
//! Agent endpoints belong to process `slave(1)`, so each is served both as `/<name>` and as
//! `/slave(1)/<name>`; the pre-1.7 `.json` aliases are kept for older clients. Classic endpoints
//! always answer JSON; `/metrics/prometheus` answers the Prometheus text format.

use crate::files;
use crate::shared::Shared;
use crate::state_json::{self, BuildInfo};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use std::sync::{Arc, OnceLock};

fn build() -> &'static BuildInfo {
    static BUILD: OnceLock<BuildInfo> = OnceLock::new();
    BUILD.get_or_init(state_json::build_info)
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(state_json::state(&shared, build()))
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn flags(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "flags": shared.info.flags }))
}

async fn version() -> Json<serde_json::Value> {
    let b = build();
    Json(serde_json::json!({
        "version": proto::MESOS_VERSION,
        "build_date": b.build_date,
        "build_time": b.build_time,
        "build_user": b.build_user,
    }))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(state_json::metrics(&shared))
}

/// `/metrics/snapshot` in the Prometheus text format, plus the `process_*` block.
async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = state_json::metrics(&shared);
    let numbers = snapshot
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_f64()?)));
    let text = metrics_text::exposition(metrics_text::mesos::from_snapshot(numbers));
    (
        [(axum::http::header::CONTENT_TYPE, metrics_text::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "No such endpoint on this agent").into_response()
}

/// Routes every endpoint under `/name`, `/slave(1)/name` and the listed aliases.
pub fn router(shared: Arc<Shared>) -> Router {
    let endpoints: Vec<(&[&str], MethodRouter<Arc<Shared>>)> = vec![
        (&["/state", "/state.json"], get(state)),
        (&["/health"], get(health)),
        (&["/flags"], get(flags)),
        (&["/version"], get(version)),
        (&["/metrics/snapshot"], get(metrics)),
        (&["/metrics/prometheus"], get(prometheus)),
        (&["/files/browse", "/files/browse.json"], get(files::browse)),
        (&["/files/read", "/files/read.json"], get(files::read)),
        (
            &["/files/download", "/files/download.json"],
            get(files::download),
        ),
        (&["/files/debug", "/files/debug.json"], get(files::debug)),
    ];
    let mut router = Router::new();
    for (paths, handler) in endpoints {
        for path in paths {
            router = router
                .route(path, handler.clone())
                .route(&format!("/slave(1){path}"), handler.clone());
        }
    }
    router.fallback(not_found).with_state(shared)
}
