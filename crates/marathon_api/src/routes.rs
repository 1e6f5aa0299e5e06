//! The route table and what every handler shares (marathon-api.md §4).
//!
//! What: [`router`] maps each §4 path to its handler module and wraps everything in the leader
//! gate of `proxy.rs` (§8.3), so a handler only ever runs on the leader. [`Api`] is the shared
//! state: the [`ServiceHandle`] and the proxy client. [`Api::call`] sends one [`Command`] and waits
//! for its oneshot reply, turning a dead or silent leader into a 503.
//!
//! Why one gate outside the routes: proxying applies to every path, including unknown ones and
//! `/ping` (§8.3), so it must run before routing, not inside each handler.

use crate::errors::{json_response, ApiError};
use crate::params::Params;
use crate::service::{Command, DeploymentResult, ServiceHandle, ServiceView};
use crate::{apps, deployments, events, groups, info, proxy, queue, tasks, ui};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a handler waits for the leader to answer a command before giving up with 503. The
/// leader answers once the plan is stored (§9), so this only trips when it is stuck.
pub const COMMAND_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Response header naming a deployment a call started (§1).
pub const DEPLOYMENT_ID_HEADER: &str = "marathon-deployment-id";

/// What every handler holds.
pub struct Api {
    pub handle: ServiceHandle,
    /// Client for forwarding requests to the leader (no redirects followed, §8.3 timeouts).
    pub proxy: reqwest::Client,
}

pub type ApiState = Arc<Api>;

impl Api {
    /// The leader's latest published view.
    pub fn view(&self) -> Arc<ServiceView> {
        self.handle.view.borrow().clone()
    }

    /// `--mesos_role`, the role of apps that name none.
    pub fn default_role(&self) -> String {
        let r = &self.handle.info.mesos_role;
        if r.is_empty() {
            "*".to_string()
        } else {
            r.clone()
        }
    }

    /// Send one command and wait for its reply.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let exchange = async {
            self.handle
                .commands
                .send(make(tx))
                .await
                .map_err(|_| ApiError::unavailable("The leader is not accepting commands"))?;
            rx.await
                .map_err(|_| ApiError::unavailable("The leader dropped the request"))
        };
        match tokio::time::timeout(COMMAND_REPLY_TIMEOUT, exchange).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::unavailable("The leader did not answer in time")),
        }
    }
}

/// The request parts handlers need: method, URI, headers, decoded query, client address.
pub struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub params: Params,
    pub client: Option<SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Req, ApiError> {
        Ok(Req {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            params: Params::from_uri(&parts.uri)?,
            client: client_addr(&parts.extensions),
        })
    }
}

impl Req {
    /// The client's IP as text (events' `clientIp`, `remoteAddress`).
    pub fn client_ip(&self) -> String {
        self.client
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// `http://<Host><path>` when the request named a host, else the bare path (`Location`).
    pub fn absolute(&self, path: &str) -> String {
        match self.headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) if !host.is_empty() => format!("http://{host}{path}"),
            _ => path.to_string(),
        }
    }
}

/// The peer address, when the server was started with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>()`).
pub fn client_addr(ext: &axum::http::Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// A JSON 200.
pub fn ok_json(body: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// A deploymentResult answer with its `Marathon-Deployment-Id` header (§1).
pub fn deployment_response(status: StatusCode, result: &DeploymentResult) -> Response {
    let body = serde_json::json!({
        "version": result.version,
        "deploymentId": result.deployment_id,
    });
    let mut r = json_response(status, &body);
    if let Ok(v) = HeaderValue::from_str(&result.deployment_id) {
        r.headers_mut().insert(DEPLOYMENT_ID_HEADER, v);
    }
    r
}

/// Parse a request body as JSON whatever its Content-Type (§1); not JSON → 400 Invalid JSON.
pub fn json_body(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(e.to_string()))
}

/// Build the REST API v2 router (§4) over `handle`, standby proxying included (§8.3).
pub fn router(handle: ServiceHandle) -> Router {
    let api: ApiState = Arc::new(Api {
        proxy: proxy::client(&handle.info),
        handle,
    });
    Router::new()
        .route("/", get(redirect_ui))
        .route("/ping", get(info::ping))
        .route("/metrics", get(info::metrics))
        .route(info::PROMETHEUS_PATH, get(info::prometheus))
        .route("/v2/info", get(info::info))
        .route("/v2/leader", get(info::leader).delete(info::abdicate))
        .route(
            "/v2/apps",
            get(apps::list)
                .post(apps::create)
                .put(apps::put_many)
                .patch(apps::patch_many),
        )
        .route(
            "/v2/apps/",
            get(apps::list)
                .post(apps::create)
                .put(apps::put_many)
                .patch(apps::patch_many),
        )
        .route("/v2/apps/{*rest}", any(apps::dispatch))
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete_many))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/groups", any(groups::dispatch))
        .route("/v2/groups/", any(groups::dispatch))
        .route("/v2/groups/{*rest}", any(groups::dispatch))
        .route("/v2/queue", get(queue::list))
        .route("/v2/queue/{*rest}", delete(queue::reset_delay))
        .route("/v2/events", get(events::stream))
        .merge(ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api.clone())
        .layer(axum::middleware::from_fn_with_state(
            api,
            proxy::leader_gate,
        ))
}

/// `GET /` → 302 `/ui/` (§1).
async fn redirect_ui() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/ui/")]).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("Unknown path {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}
