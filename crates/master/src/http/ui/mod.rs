//! The master's web UI (issue 7): static assets embedded in the binary, a small leadership
//! endpoint the page polls, and a proxy to the agents' `/files/*` so sandboxes reach the browser
//! through the master.
//!
//! Why a `/ui/status` endpoint: on a standby every leader-only endpoint (`/state`, ...) answers 307
//! to another origin, which a browser `fetch` can neither follow (CORS) nor read (`redirect:
//! "manual"` hides `Location`). `/ui/status` is answered by every master and names the leader, so
//! the page on a standby can send the browser to the leader's UI itself. It also lists every
//! master registered in the election, so a page whose master stops answering can look for the new
//! leader among them (`failover.js`).
//!
//! Assets are plain HTML/CSS/JS with no build step, embedded with `include_str!` so the single
//! binary serves them; `Cache-Control: no-cache` makes an upgraded master's page load at once.

mod files_proxy;

use super::{json_response, AppState};
use crate::server::Leadership;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

const INDEX_HTML: &str = include_str!("../../../ui/index.html");
const APP_JS: &str = include_str!("../../../ui/app.js");
const FAILOVER_JS: &str = include_str!("../../../ui/failover.js");
const SANDBOX_JS: &str = include_str!("../../../ui/sandbox.js");
const STYLE_CSS: &str = include_str!("../../../ui/style.css");

/// Adds the UI's routes: `/` (the page), `/ui/*` (assets and status), and the sandbox file proxy
/// `/agents/{agent_id}/files/{browse|read|download}`.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/index.html",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/failover.js",
            get(|| async { asset("text/javascript; charset=utf-8", FAILOVER_JS) }),
        )
        .route(
            "/ui/sandbox.js",
            get(|| async { asset("text/javascript; charset=utf-8", SANDBOX_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/ui/status", get(status))
        .route(
            "/agents/{agent_id}/files/{operation}",
            get(files_proxy::forward),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/status`: who this master is and who leads, answered by any master (never redirects).
/// `leader_url` is protocol-relative (`//host:port/`), like the `Location` of `/redirect`.
/// `masters` lists the masters registered in ZooKeeper (none without `--zk`), each with its UI's
/// URL and whether it leads; only `host:port` from their MasterInfo, never the `--zk` URL (which
/// may carry credentials).
async fn status(State(master): State<AppState>) -> Response {
    let (state, leader_endpoint, leader_pid) = match master.leadership() {
        Leadership::Leading => (
            "leading",
            Some(master.info.endpoint()),
            Some(master.info.pid.clone()),
        ),
        Leadership::Recovering => (
            "recovering",
            Some(master.info.endpoint()),
            Some(master.info.pid.clone()),
        ),
        Leadership::Following(Some(leader)) => {
            let pid = leader.info.as_ref().map(|i| i.pid.clone());
            ("following", Some(leader.endpoint), pid)
        }
        Leadership::Following(None) => ("following", None, None),
    };
    let masters: Vec<_> = master
        .known_masters()
        .into_iter()
        .map(|endpoint| {
            let leading = leader_endpoint.as_deref() == Some(endpoint.as_str());
            json!({ "endpoint": endpoint, "url": format!("//{endpoint}/"), "leader": leading })
        })
        .collect();
    json_response(&json!({
        "state": state,
        "leading": state == "leading",
        "pid": master.info.pid,
        "hostname": master.info.hostname,
        "endpoint": master.info.endpoint(),
        "cluster": master.config.cluster,
        "version": proto::MESOS_VERSION,
        "tepui_version": proto::TEPUI_VERSION,
        "leader": leader_pid,
        "leader_endpoint": leader_endpoint,
        "leader_url": leader_endpoint.as_ref().map(|e| format!("//{e}/")),
        "masters": masters,
    }))
}
