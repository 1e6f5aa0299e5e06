//! The leader gate: serve on the leader, forward on a standby (marathon-api.md §8.3, §6).
//!
//! What: [`leader_gate`] runs before routing. Leading → the request is handled here and the
//! response gets `X-Marathon-Leader` and the no-cache headers (§1). Following another instance →
//! the request is forwarded to it (`X-Marathon-Via`, `X-Forwarded-For`, response streamed back),
//! except `/v2/events`, which is redirected (302, Marathon 1.7+). No leader (or "self" while not
//! leading) → wait up to [`LEADER_WAIT`] for one, then 503 "Could not determine the current
//! leader". A request whose `X-Marathon-Via` already carries our address is a loop → 502.
//! `/metrics/prometheus` passes the gate untouched in every state: it describes this process.
//!
//! Why: standbys serve HTTP only by proxying (§8.1); clients may talk to any instance.

use crate::errors::{json_response, ApiError};
use crate::routes::{client_addr, ApiState};
use crate::service::{InfoConfig, LeaderState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a request waits for a leader to become known (§8.3 "~2.5 s for consistency").
pub const LEADER_WAIT: Duration = Duration::from_millis(2500);
/// Largest request body forwarded to the leader.
pub const PROXY_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// §8.4 defaults, used when the flags read 0.
pub const PROXY_CONNECT_TIMEOUT_DEFAULT_MS: u64 = 5000;
pub const PROXY_READ_TIMEOUT_DEFAULT_MS: u64 = 10000;

pub const VIA_HEADER: &str = "x-marathon-via";
pub const LEADER_HEADER: &str = "x-marathon-leader";
const FORWARDED_FOR: &str = "x-forwarded-for";

/// Headers not copied across the proxy: hop-by-hop ones, and lengths the client recomputes.
const NOT_FORWARDED: [HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
];

/// The forwarding client: no redirects followed (a 302 from the leader is the client's), the
/// §8.3 timeouts.
pub fn client(info: &InfoConfig) -> reqwest::Client {
    let ms = |v: u64, d: u64| Duration::from_millis(if v == 0 { d } else { v });
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(ms(
            info.leader_proxy_connection_timeout_ms,
            PROXY_CONNECT_TIMEOUT_DEFAULT_MS,
        ))
        .read_timeout(ms(
            info.leader_proxy_read_timeout_ms,
            PROXY_READ_TIMEOUT_DEFAULT_MS,
        ))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A leader state we can act on: leading, or following someone else.
fn settled(state: &LeaderState, self_address: &str) -> bool {
    match state {
        LeaderState::Leading(_) => true,
        LeaderState::Following(l) => l != self_address,
        LeaderState::Unknown => false,
    }
}

/// The gate (see the module doc).
pub async fn leader_gate(State(api): State<ApiState>, req: Request, next: Next) -> Response {
    if req.uri().path() == crate::info::PROMETHEUS_PATH {
        return next.run(req).await;
    }
    let self_address = api.handle.self_address.clone();
    let is_leader_query =
        req.uri().path() == "/v2/leader" && req.method() == axum::http::Method::GET;
    let mut state = api.handle.leader.borrow().clone();
    if !settled(&state, &self_address) && !is_leader_query {
        let mut rx = api.handle.leader.clone();
        let waited =
            tokio::time::timeout(LEADER_WAIT, rx.wait_for(|s| settled(s, &self_address))).await;
        if let Ok(Ok(s)) = waited {
            state = s.clone();
        }
    }
    match state {
        LeaderState::Leading(addr) => {
            let mut r = next.run(req).await;
            add_leader_headers(r.headers_mut(), &addr);
            r
        }
        LeaderState::Following(leader) if leader != self_address => {
            if req.uri().path() == "/v2/events" {
                redirect_to(&leader, &req)
            } else {
                forward(&api, req, &leader).await
            }
        }
        _ if is_leader_query => ApiError::not_found("There is no leader").into_response(),
        _ => ApiError::unavailable("Could not determine the current leader").into_response(),
    }
}

/// `X-Marathon-Leader` and the no-cache headers of §1.
fn add_leader_headers(h: &mut HeaderMap, leader: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("http://{leader}")) {
        h.insert(LEADER_HEADER, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

fn path_and_query(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string())
}

/// 302 to the same URL on the leader (`/v2/events` on a standby, §6).
fn redirect_to(leader: &str, req: &Request) -> Response {
    let location = format!("http://{leader}{}", path_and_query(req));
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::new(StatusCode::BAD_GATEWAY, "Invalid leader address").into_response(),
    }
}

/// Whether any `X-Marathon-Via` entry is ours.
fn is_loop(headers: &HeaderMap, via: &str) -> bool {
    headers
        .get_all(VIA_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == via)
}

/// Forward `req` to `http://<leader>` and stream the answer back.
async fn forward(api: &ApiState, req: Request, leader: &str) -> Response {
    let via = format!("1.1 {}", api.handle.self_address);
    if is_loop(req.headers(), &via) {
        return ApiError::new(StatusCode::BAD_GATEWAY, "Detected proxying loop.").into_response();
    }
    let url = format!("http://{leader}{}", path_and_query(&req));
    let client_ip = client_addr(req.extensions()).map(|a| a.ip().to_string());
    let method = req.method().clone();
    let mut headers = HeaderMap::new();
    for (k, v) in req.headers() {
        if !NOT_FORWARDED.contains(k) && k.as_str() != FORWARDED_FOR {
            headers.append(k.clone(), v.clone());
        }
    }
    let via_value = HeaderValue::from_str(&via).ok();
    if let Some(v) = &via_value {
        headers.append(VIA_HEADER, v.clone());
    }
    let forwarded: Vec<String> = req
        .headers()
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .chain(client_ip)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&forwarded.join(", ")) {
        if !forwarded.is_empty() {
            headers.insert(FORWARDED_FOR, v);
        }
    }
    let body = match axum::body::to_bytes(req.into_body(), PROXY_BODY_BYTES_MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body could not be read: {e}"),
            )
            .into_response()
        }
    };
    let upstream = match api
        .proxy
        .request(method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%leader, error = %e, "could not reach the Marathon leader");
            return json_response(
                StatusCode::BAD_GATEWAY,
                &serde_json::json!({"message": format!("Could not reach the leader at {leader}: {e}")}),
            );
        }
    };
    let status = upstream.status();
    let mut out_headers = HeaderMap::new();
    for (k, v) in upstream.headers() {
        if !NOT_FORWARDED.contains(k) {
            out_headers.append(k.clone(), v.clone());
        }
    }
    if let Some(v) = via_value {
        out_headers.append(VIA_HEADER, v);
    }
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = out_headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_detection_reads_every_entry() {
        let mut h = HeaderMap::new();
        h.append(VIA_HEADER, HeaderValue::from_static("1.1 a:1, 1.1 b:2"));
        assert!(is_loop(&h, "1.1 b:2"));
        assert!(!is_loop(&h, "1.1 c:3"));
    }

    #[test]
    fn self_as_leader_is_not_settled() {
        assert!(!settled(&LeaderState::Following("me:1".into()), "me:1"));
        assert!(settled(&LeaderState::Following("other:1".into()), "me:1"));
        assert!(!settled(&LeaderState::Unknown, "me:1"));
    }
}
