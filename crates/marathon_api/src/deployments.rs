//! `/v2/deployments` (marathon-api.md §4, §5).
//!
//! What: GET is the leader's rendered list as a **bare array** (§9: the Python client requires
//! it). DELETE `{id}` cancels: without `force` the leader starts a rollback deployment and we
//! answer 200 with its deploymentResult; with `force=true` it stops in place and we answer 202
//! with an empty body. Unknown ids: 404 `DeploymentPlan <id> does not exist`.

use crate::errors::ApiError;
use crate::routes::{deployment_response, ApiState, Req};
use crate::service::Command;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// `GET /v2/deployments`.
pub async fn list(State(api): State<ApiState>) -> Response {
    let view = api.view();
    crate::routes::ok_json(&Value::Array(view.deployments.clone()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("DeploymentPlan {id} does not exist"))
}

/// `DELETE /v2/deployments/{id}[?force=true]`.
pub async fn cancel(
    State(api): State<ApiState>,
    Path(id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let known = api
        .view()
        .deployments
        .iter()
        .any(|d| d.get("id").and_then(Value::as_str) == Some(id.as_str()));
    if !known {
        return Err(not_found(&id));
    }
    let cancel_id = id.clone();
    let result = api
        .call(|reply| Command::CancelDeployment {
            id: cancel_id,
            force,
            reply,
        })
        .await??;
    Ok(match result {
        Some(d) => deployment_response(StatusCode::OK, &d),
        None => StatusCode::ACCEPTED.into_response(),
    })
}
