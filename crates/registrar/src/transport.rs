//! Replica-to-replica messages over HTTP: each message is a `POST /internal/v1/replog` of one JSON
//! `Envelope`, answered 202 at once; replies travel the same way in the other direction. Delivery is
//! best effort (the protocol retransmits), so a lost or refused post is only logged at debug level.

use crate::runtime::Input;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use replog::{Envelope, FORMAT_VERSION};
use std::time::Duration;
use tokio::sync::mpsc;

pub const REPLOG_PATH: &str = "/internal/v1/replog";

/// How long one post may take before it counts as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
}

impl Default for Transport {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Transport { client }
    }
}

impl Transport {
    /// Sends without waiting for the outcome.
    pub fn send(&self, address: &str, envelope: &Envelope) {
        let Ok(body) = serde_json::to_vec(envelope) else {
            return;
        };
        let request = self
            .client
            .post(format!("http://{address}{REPLOG_PATH}"))
            .header("Content-Type", "application/json")
            .body(body);
        let address = address.to_string();
        tokio::spawn(async move {
            if let Err(e) = request.send().await {
                tracing::debug!(%address, error = %e, "replicated log message not delivered");
            }
        });
    }
}

/// The receiving side, mounted on the master's router.
pub async fn receive(
    State(inbox): State<mpsc::UnboundedSender<Input>>,
    body: Bytes,
) -> impl IntoResponse {
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a replicated log envelope: {e}"),
            )
                .into_response()
        }
    };
    if envelope.format_version > FORMAT_VERSION {
        return (
            StatusCode::BAD_REQUEST,
            format!("replicated log message format {} is newer than this release reads ({FORMAT_VERSION})", envelope.format_version),
        )
            .into_response();
    }
    if inbox.send(Input::Receive(envelope)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "replicated log is stopped").into_response();
    }
    StatusCode::ACCEPTED.into_response()
}

pub fn router(inbox: mpsc::UnboundedSender<Input>) -> axum::Router {
    axum::Router::new()
        .route(REPLOG_PATH, axum::routing::post(receive))
        .with_state(inbox)
}
