//! Streaming responses: a RecordIO body fed from a channel, with a guard that reports when the
//! client has gone (hyper drops the body), so the core can mark the framework or agent disconnected.

use crate::server::Outbound;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use std::convert::Infallible;
use tokio::sync::mpsc;

/// Runs `on_close` once when dropped.
pub struct CloseGuard(Option<Box<dyn FnOnce() + Send>>);

impl CloseGuard {
    pub fn new(on_close: impl FnOnce() + Send + 'static) -> Self {
        CloseGuard(Some(Box::new(on_close)))
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A `200 OK` chunked `application/json` RecordIO stream of what arrives on `receiver`, ending at
/// `Outbound::Close` or when every sender is gone.
pub fn recordio_response(
    receiver: mpsc::UnboundedReceiver<Outbound>,
    guard: CloseGuard,
    extra_header: Option<(&'static str, String)>,
) -> Response {
    let stream = futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
        match receiver.recv().await {
            Some(Outbound::Record(bytes)) => {
                Some((Ok::<Bytes, Infallible>(bytes), (receiver, guard)))
            }
            Some(Outbound::Close) | None => None,
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some((name, value)) = extra_header {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
