//! `GET /v2/events`: the Server-Sent Events stream (marathon-api.md §6), and the events the REST
//! layer itself publishes (`event_stream_attached`/`_detached`, `api_post_event`).
//!
//! What: the request must accept `text/event-stream` (else 405); the answer is 200
//! `text/event-stream;charset=UTF-8`, one frame `event: <type>\ndata: <json>\n\n` per event, a
//! bare CRLF every [`HEARTBEAT_INTERVAL`]. `event_type` (repeatable) filters; with none every
//! type is sent except the `scheduler_*` ones, which go only to streams that named them
//! (**[compat]**: the Python client aborts on unknown types). On connect `event_stream_attached`
//! is published to all streams, on close `event_stream_detached`. Standbys redirect (proxy.rs).
//!
//! Why a drop guard: a client that goes away only shows up as the body stream being dropped, so
//! the detach event is sent from `Drop`.

use crate::app_info::now;
use crate::errors::ApiError;
use crate::routes::{ApiState, Req};
use crate::service::MarathonEvent;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use marathon_model::AppDefinition;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Time between heartbeats on an idle stream (§6 "~10 s").
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Heartbeat bytes: a bare CRLF (§6).
const HEARTBEAT: &[u8] = b"\r\n";
/// Event types sent only to streams that asked for them by `event_type` (§6 **[compat]**).
pub const OPT_IN_EVENT_TYPES: [&str; 3] = [
    "scheduler_registered_event",
    "scheduler_reregistered_event",
    "scheduler_disconnected_event",
];

/// Publish an event built here: `eventType` and `timestamp` are added to `fields`.
pub fn publish(api: &ApiState, event_type: &str, fields: Map<String, Value>) {
    let mut m = fields;
    m.insert("eventType".into(), json!(event_type));
    m.insert("timestamp".into(), json!(now()));
    let payload = Value::Object(m).to_string();
    // No receiver is not an error: nobody listens.
    let _ = api.handle.events.send(MarathonEvent {
        event_type: event_type.to_string(),
        payload: Arc::from(payload),
    });
}

/// `api_post_event` after an app was created or changed through the API (§6).
pub fn publish_api_post(api: &ApiState, req: &Req, app: &AppDefinition) {
    let mut m = Map::new();
    m.insert("clientIp".into(), json!(req.client_ip()));
    m.insert("uri".into(), json!(req.uri.path()));
    m.insert("appDefinition".into(), app.to_json());
    publish(api, "api_post_event", m);
}

/// Which event types a stream gets.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Empty = all (but the opt-in ones).
    wanted: Vec<String>,
}

impl Filter {
    pub fn new(wanted: Vec<String>) -> Filter {
        Filter { wanted }
    }

    pub fn accepts(&self, event_type: &str) -> bool {
        if self.wanted.is_empty() {
            !OPT_IN_EVENT_TYPES.contains(&event_type)
        } else {
            self.wanted.iter().any(|w| w == event_type)
        }
    }
}

/// One SSE frame; the payload is made single-line (compact JSON has no raw newlines, but the
/// leader's payload is not ours to trust).
pub fn frame(e: &MarathonEvent) -> Bytes {
    let data = e.payload.replace(['\r', '\n'], " ");
    Bytes::from(format!("event: {}\ndata: {}\n\n", e.event_type, data))
}

/// Sends `event_stream_detached` when the stream's body is dropped.
struct DetachGuard {
    api: ApiState,
    remote: String,
}

impl Drop for DetachGuard {
    fn drop(&mut self) {
        let mut m = Map::new();
        m.insert("remoteAddress".into(), json!(self.remote));
        publish(&self.api, "event_stream_detached", m);
    }
}

struct StreamState {
    rx: broadcast::Receiver<MarathonEvent>,
    filter: Filter,
    heartbeat: tokio::time::Interval,
    _guard: DetachGuard,
}

/// The next chunk: a frame for an accepted event, or a heartbeat; `None` when the leader's
/// event channel closed.
async fn next_chunk(mut s: StreamState) -> Option<(Result<Bytes, std::io::Error>, StreamState)> {
    loop {
        tokio::select! {
            r = s.rx.recv() => match r {
                Ok(e) if s.filter.accepts(&e.event_type) => {
                    let f = frame(&e);
                    return Some((Ok(f), s));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event stream fell behind; events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = s.heartbeat.tick() => return Some((Ok(Bytes::from_static(HEARTBEAT)), s)),
        }
    }
}

/// `GET /v2/events[?event_type=…]`.
pub async fn stream(State(api): State<ApiState>, req: Req) -> Result<Response, ApiError> {
    let accepts = req
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|a| a.to_str().ok())
        .any(|a| a.contains("text/event-stream"));
    if !accepts {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The event stream needs the header 'Accept: text/event-stream'",
        ));
    }
    let filter = Filter::new(req.params.all("event_type"));
    let remote = req.client_ip();
    // Subscribe first so the stream sees its own attach event.
    let rx = api.handle.events.subscribe();
    let mut m = Map::new();
    m.insert("remoteAddress".into(), json!(remote));
    publish(&api, "event_stream_attached", m);
    let start = tokio::time::Instant::now() + HEARTBEAT_INTERVAL;
    let mut heartbeat = tokio::time::interval_at(start, HEARTBEAT_INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = StreamState {
        rx,
        filter,
        heartbeat,
        _guard: DetachGuard {
            api: api.clone(),
            remote,
        },
    };
    let body = Body::from_stream(futures::stream::unfold(state, next_chunk));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_events_are_opt_in() {
        let all = Filter::new(vec![]);
        assert!(all.accepts("status_update_event"));
        assert!(!all.accepts("scheduler_registered_event"));
        let some = Filter::new(vec!["scheduler_registered_event".into()]);
        assert!(some.accepts("scheduler_registered_event"));
        assert!(!some.accepts("status_update_event"));
    }

    #[test]
    fn frames_are_single_line() {
        let e = MarathonEvent {
            event_type: "x".into(),
            payload: Arc::from("{\"a\":\n1}"),
        };
        assert_eq!(&frame(&e)[..], b"event: x\ndata: {\"a\": 1}\n\n");
    }
}
