//! `/v2/queue` and `DELETE /v2/queue/{id}/delay` (marathon-api.md §4, §7 "Backoff").
//!
//! What: the queue items come rendered from the leader (**[compat]** no `role`, no pod items);
//! `embed=lastUnusedOffers` adds `lastUnusedOffers`. Resetting a delay is a command; an app with
//! nothing queued is a 404 with Marathon's text.

use crate::errors::ApiError;
use crate::routes::{ok_json, ApiState, Req};
use crate::service::Command;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use marathon_model::PathId;
use serde_json::{json, Value};

/// `GET /v2/queue[?embed=lastUnusedOffers]`.
pub async fn list(State(api): State<ApiState>, req: Req) -> Response {
    let offers = req
        .params
        .all("embed")
        .iter()
        .any(|e| e == "lastUnusedOffers");
    let view = api.view();
    let items: Vec<Value> = view
        .queue
        .iter()
        .map(|q| {
            let mut item = q.item.clone();
            if offers {
                if let Value::Object(m) = &mut item {
                    m.insert(
                        "lastUnusedOffers".into(),
                        Value::Array(q.last_unused_offers.clone()),
                    );
                }
            }
            item
        })
        .collect();
    ok_json(&json!({ "queue": items }))
}

/// `DELETE /v2/queue/{id}/delay` → 204.
pub async fn reset_delay(State(api): State<ApiState>, req: Req) -> Result<Response, ApiError> {
    let rest = req.uri.path().strip_prefix("/v2/queue").unwrap_or("");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some((&"delay", id_segs)) = segs.split_last() else {
        return Err(ApiError::not_found(format!(
            "Unknown path {}",
            req.uri.path()
        )));
    };
    let raw = format!("/{}", id_segs.join("/"));
    let not_queued =
        |id: &str| ApiError::not_found(format!("Application {id} not found in tasks queue."));
    let app_id = PathId::parse(&raw).map_err(|_| not_queued(&raw))?;
    if !api.view().queue.iter().any(|q| q.app_id == app_id) {
        return Err(not_queued(&app_id.to_string()));
    }
    let id = app_id.clone();
    api.call(|reply| Command::ResetDelay { app_id: id, reply })
        .await??;
    Ok(StatusCode::NO_CONTENT.into_response())
}
