//! Error responses (marathon-api.md §1 "Error model").
//!
//! What: [`ApiError`] is a status plus a JSON object body; every handler returns
//! `Result<Response, ApiError>`. Conversions from the model's [`AppError`] (400/422) and the
//! leader's [`CommandError`] (404/409/422/403/503) live here so the wire shapes are written once.
//!
//! Why: clients read only `message` (and `details`, `deployments`) from an error, and call
//! `.get()` on the body, so every error must be a JSON *object* with `message` (§1, §9).

use crate::service::CommandError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use marathon_model::{AppError, PathId, Violation};
use serde_json::{json, Value};

/// The 409 text of a change refused because a deployment holds the app (§1; Marathon's
/// `AppLockedException` writes the `<DEPLOYMENT_ID>` placeholder literally).
pub const LOCKED_MESSAGE: &str = "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.";

/// An error answer: status and JSON object body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "message": message.into() }),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// `App '/x' does not exist` (§1).
    pub fn app_not_found(id: &PathId) -> ApiError {
        ApiError::not_found(format!("App '{id}' does not exist"))
    }

    /// `App '<raw>' does not exist` for an id that does not even parse.
    pub fn app_not_found_raw(raw: &str) -> ApiError {
        let raw = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("/{raw}")
        };
        ApiError::not_found(format!("App '{raw}' does not exist"))
    }

    pub fn group_not_found(id: &PathId) -> ApiError {
        ApiError::not_found(format!("Group '{id}' does not exist"))
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 422 `Object is not valid` with details.
    pub fn invalid(details: Vec<Violation>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "message": "Object is not valid", "details": details }),
        }
    }

    /// 400 `Invalid JSON` for a body that is not JSON at all.
    pub fn malformed(parser_message: impl Into<String>) -> ApiError {
        ApiError::from(AppError::Malformed(parser_message.into()))
    }

    /// 400 `Invalid JSON` with one detail (wrong JSON type at `path`).
    pub fn invalid_json(path: &str, error: &str) -> ApiError {
        ApiError::from(AppError::InvalidJson(vec![Violation::new(path, error)]))
    }

    /// The same error with its `details` paths prefixed (`/apps(1)` + `/cpus`), for array bodies.
    pub fn under_path(mut self, prefix: &str) -> ApiError {
        if let Some(Value::Array(details)) = self.body.get_mut("details") {
            for d in details {
                if let Some(Value::String(p)) = d.get_mut("path") {
                    *p = if p == "/" {
                        prefix.to_string()
                    } else {
                        format!("{prefix}{p}")
                    };
                }
            }
        }
        self
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            body: e.body(),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        match e {
            CommandError::NotFound(m) => ApiError::not_found(m),
            CommandError::AlreadyExists(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            CommandError::Locked { deployment_ids } => ApiError {
                status: StatusCode::CONFLICT,
                body: json!({
                    "message": LOCKED_MESSAGE,
                    "deployments": deployment_ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                }),
            },
            CommandError::Invalid(details) => ApiError::invalid(details),
            CommandError::TooManyDeployments(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            CommandError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// A JSON response with `Content-Type: application/json` (§1).
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_body_lists_deployments() {
        let e = ApiError::from(CommandError::Locked {
            deployment_ids: vec!["d1".into()],
        });
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.body["message"], LOCKED_MESSAGE);
        assert_eq!(e.body["deployments"], json!([{"id": "d1"}]));
    }

    #[test]
    fn already_exists_message() {
        let id = PathId::parse("/x").unwrap();
        let e = ApiError::from(CommandError::AlreadyExists(id));
        assert_eq!(
            e.body,
            json!({"message": "An app with id [/x] already exists."})
        );
    }

    #[test]
    fn details_are_prefixed_for_arrays() {
        let e = ApiError::invalid(vec![Violation::new("/cpus", "x"), Violation::new("/", "y")])
            .under_path("(1)");
        assert_eq!(e.body["details"][0]["path"], "(1)/cpus");
        assert_eq!(e.body["details"][1]["path"], "(1)");
    }

    #[test]
    fn raw_not_found_adds_slash() {
        assert_eq!(
            ApiError::app_not_found_raw("A_b").body["message"],
            "App '/A_b' does not exist"
        );
    }
}
