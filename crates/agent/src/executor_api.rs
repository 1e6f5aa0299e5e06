//! `POST /api/v1/executor`: the v1 executor API on the agent (mesos-http-api.md section 9).
//!
//! What: parses and checks each call (content type, `type`, `framework_id`, `executor_id`, the
//! payload its type needs), then hands it to the driver as an `ApiRequest` and answers with what
//! the core decided: SUBSCRIBE opens a `200 OK` chunked RecordIO stream (section 7) fed by the
//! driver, with a HEARTBEAT every `EXECUTOR_HEARTBEAT_SECS`; UPDATE, MESSAGE and HEARTBEAT answer
//! `202 Accepted` with an empty body. A refusal is a plain-text 4xx naming what is wrong: 400 for
//! a malformed call, 404 for an unknown framework or executor, 403 for a call from an executor
//! that is not subscribed (or shutting down), 415 for anything but JSON.
//!
//! Why through the driver: an UPDATE is a checkpoint and a status update, a SUBSCRIBE delivers
//! queued tasks; both are core steps whose effects must follow the checkpoints they depend on,
//! which only the driver's commit pipeline orders. The stream's sender lives in the driver, so
//! events reach it in the order the core decided them. When the client goes away the stream's
//! guard tells the driver (`Unsubscribed`), naming the connection so a newer subscription is
//! never mistaken for it.

use crate::core::ExecutorCallError;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use proto::executor::{Call, Event, Subscribe, EXECUTOR_HEARTBEAT_SECS};
use proto::{ExecutorId, FrameworkId, TaskStatus};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Paths the API answers on (the agent's endpoints belong to process `slave(1)`).
pub const EXECUTOR_PATHS: [&str; 2] = ["/api/v1/executor", "/slave(1)/api/v1/executor"];
/// Largest call accepted.
const CALL_BYTES_MAX: usize = 4 << 20;

/// What the driver answers a call with.
pub type Reply = oneshot::Sender<Result<(), ExecutorCallError>>;

/// A call, as the driver receives it.
#[derive(Debug)]
pub enum ApiRequest {
    /// `events` carries the stream's records (RecordIO-framed); dropping it ends the stream.
    Subscribe {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        connection: u64,
        subscribe: Subscribe,
        events: mpsc::UnboundedSender<Bytes>,
        reply: Reply,
    },
    /// The stream of `connection` ended (the executor went away).
    Unsubscribed {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        connection: u64,
    },
    Update {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        status: TaskStatus,
        reply: Reply,
    },
    Message {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        data: String,
        reply: Reply,
    },
}

struct Api {
    requests: mpsc::UnboundedSender<ApiRequest>,
    connections: AtomicU64,
}

/// The API's routes, feeding `requests` (the driver's end).
pub fn router(requests: mpsc::UnboundedSender<ApiRequest>) -> Router {
    let api = Arc::new(Api {
        requests,
        connections: AtomicU64::new(0),
    });
    let mut router = Router::new();
    for path in EXECUTOR_PATHS {
        router = router.route(path, post(call));
    }
    router.with_state(api)
}

/// Frames one event as a RecordIO record.
pub fn record(event: &Event) -> Bytes {
    // Events hold only strings, numbers and JSON values: serialization cannot fail.
    let json = serde_json::to_vec(event).unwrap_or_default();
    Bytes::from(proto::recordio::encode(&json))
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = (status, message.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn refused(error: &ExecutorCallError) -> Response {
    let status = match error {
        ExecutorCallError::UnknownFramework(_) | ExecutorCallError::UnknownExecutor { .. } => {
            StatusCode::NOT_FOUND
        }
        ExecutorCallError::NotSubscribed(_) | ExecutorCallError::Terminating(_) => {
            StatusCode::FORBIDDEN
        }
        ExecutorCallError::UnknownTask { .. } | ExecutorCallError::BadUpdate(_) => {
            StatusCode::BAD_REQUEST
        }
    };
    text(status, error.to_string())
}

/// Content negotiation (mesos-http-api.md section 1): JSON only.
#[allow(clippy::result_large_err)] // the refusal is the response, built once per bad request
fn check_content_type(headers: &HeaderMap) -> Result<(), Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match content_type.as_deref() {
        None => Err(text(StatusCode::BAD_REQUEST, "Expecting 'Content-Type' to be present")),
        Some(ct) if ct.split(';').next().map(str::trim) == Some("application/json") => Ok(()),
        Some(ct) if ct.starts_with("application/x-protobuf") => Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type 'application/x-protobuf' is not supported by tepui; use 'application/json'",
        )),
        Some(ct) => Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Content-Type' of application/json or application/x-protobuf, got '{ct}'"),
        )),
    }
}

/// Parses a call and checks the fields every call and its type need.
#[allow(clippy::result_large_err)] // the refusal is the response, built once per bad request
fn parse(body: &[u8]) -> Result<(Call, FrameworkId, ExecutorId), Response> {
    if body.len() > CALL_BYTES_MAX {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Calls are limited to {CALL_BYTES_MAX} bytes"),
        ));
    }
    let call: Call = serde_json::from_slice(body).map_err(|e| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Failed to parse the executor call: {e}"),
        )
    })?;
    let missing = |field: &str| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Expecting '{field}' to be present"),
        )
    };
    let framework_id = call
        .framework_id
        .clone()
        .ok_or_else(|| missing("framework_id"))?;
    let executor_id = call
        .executor_id
        .clone()
        .ok_or_else(|| missing("executor_id"))?;
    match call.kind.as_str() {
        "SUBSCRIBE" | "HEARTBEAT" => {}
        "UPDATE" if call.update.is_none() => return Err(missing("update")),
        "MESSAGE" if call.message.is_none() => return Err(missing("message")),
        "UPDATE" | "MESSAGE" => {}
        "UNKNOWN" => return Err(text(StatusCode::NOT_IMPLEMENTED, "Received 'UNKNOWN' call")),
        other => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("Unsupported executor call type '{other}'"),
            ))
        }
    }
    Ok((call, framework_id, executor_id))
}

async fn call(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = check_content_type(&headers) {
        return response;
    }
    let (call, framework_id, executor_id) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let (reply, answer) = oneshot::channel();
    let request = match call.kind.as_str() {
        "SUBSCRIBE" => {
            return subscribe(
                &api,
                framework_id,
                executor_id,
                call.subscribe.unwrap_or_default(),
            )
            .await
        }
        "HEARTBEAT" => return StatusCode::ACCEPTED.into_response(),
        "UPDATE" => match call.update {
            Some(update) => ApiRequest::Update {
                framework_id,
                executor_id,
                status: update.status,
                reply,
            },
            None => return text(StatusCode::BAD_REQUEST, "Expecting 'update' to be present"),
        },
        _ => match call.message {
            Some(message) => ApiRequest::Message {
                framework_id,
                executor_id,
                data: message.data,
                reply,
            },
            None => return text(StatusCode::BAD_REQUEST, "Expecting 'message' to be present"),
        },
    };
    if api.requests.send(request).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "The agent is stopping");
    }
    match answer.await {
        Ok(Ok(())) => StatusCode::ACCEPTED.into_response(),
        Ok(Err(error)) => refused(&error),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "The agent is stopping"),
    }
}

/// Runs `on_close` once when dropped (the stream's body went away).
struct CloseGuard(Option<Box<dyn FnOnce() + Send>>);

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

async fn subscribe(
    api: &Api,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
    subscribe: Subscribe,
) -> Response {
    let connection = api.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let (events, receiver) = mpsc::unbounded_channel::<Bytes>();
    let (reply, answer) = oneshot::channel();
    let request = ApiRequest::Subscribe {
        framework_id: framework_id.clone(),
        executor_id: executor_id.clone(),
        connection,
        subscribe,
        events,
        reply,
    };
    if api.requests.send(request).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "The agent is stopping");
    }
    match answer.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return refused(&error),
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "The agent is stopping"),
    }
    let requests = api.requests.clone();
    let guard = CloseGuard(Some(Box::new(move || {
        let _ = requests.send(ApiRequest::Unsubscribed {
            framework_id,
            executor_id,
            connection,
        });
    })));
    let heartbeat = Duration::from_secs(EXECUTOR_HEARTBEAT_SECS);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures::stream::unfold(
        (receiver, ticker, guard),
        |(mut receiver, mut ticker, guard)| async move {
            let record = tokio::select! {
                next = receiver.recv() => next?,
                _ = ticker.tick() => record(&Event::heartbeat()),
            };
            Some((Ok::<Bytes, Infallible>(record), (receiver, ticker, guard)))
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(result: Result<(Call, FrameworkId, ExecutorId), Response>) -> Option<StatusCode> {
        result.err().map(|r| r.status())
    }

    #[test]
    fn calls_missing_what_they_need_are_refused_by_name() {
        assert_eq!(
            status_of(parse(b"{not json")),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status_of(parse(
                br#"{"type":"SUBSCRIBE","framework_id":{"value":"F"}}"#
            )),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status_of(parse(
                br#"{"type":"UPDATE","framework_id":{"value":"F"},"executor_id":{"value":"e"}}"#
            )),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status_of(parse(
                br#"{"type":"LAUNCH","framework_id":{"value":"F"},"executor_id":{"value":"e"}}"#
            )),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status_of(parse(
                br#"{"type":"UNKNOWN","framework_id":{"value":"F"},"executor_id":{"value":"e"}}"#
            )),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert!(parse(
            br#"{"type":"HEARTBEAT","framework_id":{"value":"F"},"executor_id":{"value":"e"}}"#
        )
        .is_ok());
    }

    #[test]
    fn only_json_is_accepted() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            check_content_type(&headers).err().map(|r| r.status()),
            Some(StatusCode::BAD_REQUEST)
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert_eq!(
            check_content_type(&headers).err().map(|r| r.status()),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_content_type(&headers).is_ok());
    }
}
