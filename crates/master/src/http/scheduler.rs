//! `POST /api/v1/scheduler` (mesos-http-api.md section 8): SUBSCRIBE opens a RecordIO stream of
//! events; every other call is answered 202 and acts through that stream.

use super::streaming::{recordio_response, CloseGuard};
use super::{negotiate, redirect_unless_leader, text_error, AppState};
use crate::core::CallError;
use crate::server::{now_secs, Outbound, StreamHandle};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use proto::scheduler::{Call, Event};
use tokio::sync::mpsc;

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// Call types the scheduler API knows (spec 8.3).
const KNOWN_CALLS: &[&str] = &[
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "REVIVE",
    "SUPPRESS",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE",
    "RECONCILE_OPERATIONS",
    "MESSAGE",
    "REQUEST",
    "UPDATE_FRAMEWORK",
];

pub async fn handle(
    State(master): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/api/v1/scheduler");
    if let Some(response) = redirect_unless_leader(&master, path) {
        return response;
    }
    if let Err(response) = negotiate(&headers) {
        return response;
    }
    let call: Call = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into Call: {e}"),
            )
        }
    };
    if call.kind == "UNKNOWN" {
        return text_error(StatusCode::NOT_IMPLEMENTED, "Received an unknown call");
    }
    if !KNOWN_CALLS.contains(&call.kind.as_str()) {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!(
                "Failed to parse body into Call: unknown call type '{}'",
                call.kind
            ),
        );
    }
    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if call.kind == "SUBSCRIBE" {
        return subscribe(master, call, stream_id);
    }
    let now = now_secs();
    let mut inner = master.lock();
    let framework_id = match inner
        .core
        .authorize_call(call.framework_id.as_ref(), stream_id.as_deref())
    {
        Ok(id) => id,
        Err(e) => return call_error(e),
    };
    if matches!(
        call.kind.as_str(),
        "UPDATE_FRAMEWORK" | "ACKNOWLEDGE_OPERATION_STATUS" | "RECONCILE_OPERATIONS"
    ) {
        return text_error(
            StatusCode::NOT_IMPLEMENTED,
            format!("Call type '{}' is not supported by tepui yet", call.kind),
        );
    }
    match inner.core.apply_call(now, &framework_id, call) {
        Ok(effects) => {
            inner.execute(effects);
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => call_error(e),
    }
}

fn call_error(error: CallError) -> Response {
    let status = match error {
        CallError::BadRequest(_) => StatusCode::BAD_REQUEST,
        CallError::Forbidden(_) => StatusCode::FORBIDDEN,
        CallError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
    };
    text_error(status, error.to_string())
}

fn subscribe(master: AppState, call: Call, stream_id_header: Option<String>) -> Response {
    if stream_id_header.is_some() {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Expecting 'Mesos-Stream-Id' header to be absent for SUBSCRIBE",
        );
    }
    let Some(subscribe) = call.subscribe else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    if let (Some(top), Some(inner_id)) = (&call.framework_id, &subscribe.framework_info.id) {
        if top != inner_id {
            return text_error(
                StatusCode::BAD_REQUEST,
                "'framework_id' differs from 'subscribe.framework_info.id'",
            );
        }
    }
    let mut info = subscribe.framework_info;
    if info.id.is_none() {
        info.id = call.framework_id;
    }
    let stream_id = uuid::Uuid::new_v4().to_string();
    let (sender, receiver) = mpsc::unbounded_channel();
    let now = now_secs();
    let mut inner = master.lock();
    match inner.core.subscribe(now, info, stream_id.clone()) {
        Ok(outcome) => {
            inner.execute(outcome.before_stream);
            let framework_id = outcome.framework_id.clone();
            inner.framework_streams.insert(
                framework_id.clone(),
                StreamHandle {
                    stream_id: stream_id.clone(),
                    sender,
                },
            );
            inner.execute(outcome.after_stream);
            // Offers for the newcomer right away rather than at the next allocation tick.
            let effects = inner.core.allocate(now);
            inner.execute(effects);
            drop(inner);
            tracing::info!(framework = %framework_id, "framework subscribed");
            let weak = std::sync::Arc::downgrade(&master);
            let closing_stream = stream_id.clone();
            let guard = CloseGuard::new(move || {
                let Some(master) = weak.upgrade() else { return };
                let mut inner = master.lock();
                if inner
                    .framework_streams
                    .get(&framework_id)
                    .is_some_and(|s| s.stream_id == closing_stream)
                {
                    inner.framework_streams.remove(&framework_id);
                }
                let effects =
                    inner
                        .core
                        .framework_disconnected(now_secs(), &framework_id, &closing_stream);
                inner.execute(effects);
            });
            recordio_response(receiver, guard, Some((STREAM_ID_HEADER, stream_id)))
        }
        Err(refusal) => {
            drop(inner);
            // An invalid or removed framework gets an ERROR event, then the stream closes (spec 8.1).
            let _ = sender.send(Outbound::Record(bytes::Bytes::from(
                proto::recordio::encode(
                    &serde_json::to_vec(&Event::error(refusal.to_string())).unwrap_or_default(),
                ),
            )));
            let _ = sender.send(Outbound::Close);
            recordio_response(receiver, CloseGuard::new(|| {}), None)
        }
    }
}
