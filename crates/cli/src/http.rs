//! HTTP requests to the masters and Marathon, and their answers as values or `CliError`s.
//!
//! Every request has a bounded connect time and a bounded total time, so an address that does
//! not answer ends the command quickly (exit 3) instead of hanging. Error bodies are read the way
//! Marathon writes them (`message`, `details[].path/errors`; marathon-api.md 1, "Error model"),
//! or as the master's plain text.

use crate::CliError;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Time allowed to open a connection; an unreachable address fails within it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole request and its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Redirects followed (standby masters answer 307 to the leader).
const REDIRECTS_MAX: usize = 5;
/// Longest error body quoted in a message.
const ERROR_BODY_CHARS_MAX: usize = 500;

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    /// For `/redirect`, whose answer is the redirect itself.
    no_redirect: reqwest::Client,
}

/// A successful answer: its JSON body (`Null` when empty) and the deployment it started, if any.
pub struct Answer {
    pub body: Value,
    pub deployment_id: Option<String>,
}

impl Http {
    pub fn new() -> Result<Http, CliError> {
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(redirects)
                .build()
                .map_err(|e| CliError::Failed(format!("cannot set up the HTTP client: {e}")))
        };
        Ok(Http {
            client: build(reqwest::redirect::Policy::limited(REDIRECTS_MAX))?,
            no_redirect: build(reqwest::redirect::Policy::none())?,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn no_redirect(&self) -> &reqwest::Client {
        &self.no_redirect
    }

    /// `GET url` and its JSON body.
    pub async fn get(&self, url: &str) -> Result<Value, CliError> {
        Ok(self.send(Method::GET, url, None).await?.body)
    }

    /// Sends a request and reads its answer; any status but 2xx is an error.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
        let mut request = self.client.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(url, &e))?;
        let status = response.status();
        let deployment_id = response
            .headers()
            .get("Marathon-Deployment-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(url, &e))?;
        if !status.is_success() {
            return Err(status_error(method.as_str(), url, status, &text));
        }
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| CliError::BadAnswer {
                url: url.to_string(),
                reason: format!("not JSON: {e}"),
            })?
        };
        Ok(Answer {
            body,
            deployment_id,
        })
    }
}

/// The address part of a URL (`http://host:port`), for messages.
pub fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}",
            u.scheme(),
            u.host_str()
                .map(|h| format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
        Err(_) => url.to_string(),
    }
}

/// A request that got no answer.
pub fn transport_error(url: &str, error: &reqwest::Error) -> CliError {
    let reason = if error.is_timeout() {
        "no answer in time".to_string()
    } else if error.is_connect() {
        format!("connection failed ({})", root_cause(error))
    } else {
        root_cause(error)
    };
    CliError::Unreachable {
        address: origin(url),
        reason,
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error status as a `CliError`: 404 is "not found", 503 (and a proxy's 502) "no leader".
pub fn status_error(method: &str, url: &str, status: StatusCode, body: &str) -> CliError {
    let message = api_message(body);
    match status.as_u16() {
        404 => CliError::NotFound(message),
        502 | 503 => CliError::NoLeader {
            address: origin(url),
            reason: format!("{status}: {message}"),
        },
        code => CliError::Refused {
            method: method.to_string(),
            url: url.to_string(),
            status: code,
            message,
        },
    }
}

/// The explanation in an error body: Marathon's `message` with each `details[]` entry as
/// `path: error, error`, the master's `error` or plain text, or the body itself (shortened).
pub fn api_message(body: &str) -> String {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) else {
        let text = body.trim();
        return match text.char_indices().nth(ERROR_BODY_CHARS_MAX) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None if text.is_empty() => "(empty answer)".to_string(),
            None => text.to_string(),
        };
    };
    let mut message = object
        .get("message")
        .or_else(|| object.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| Value::Object(object.clone()).to_string());
    if let Some(details) = object.get("details").and_then(Value::as_array) {
        for detail in details {
            let path = detail.get("path").and_then(Value::as_str).unwrap_or("/");
            let errors: Vec<String> = match detail.get("errors") {
                Some(Value::Array(errors)) => errors
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect(),
                Some(other) => vec![other.to_string()],
                None => Vec::new(),
            };
            message.push_str(&format!("\n  {path}: {}", errors.join(", ")));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marathon_errors_name_each_path() {
        let body = r#"{"message":"Object is not valid","details":[{"path":"/cpus","errors":["got -1.0, expected 0.001 or more"]},{"path":"/mem","errors":["a","b"]}]}"#;
        assert_eq!(
            api_message(body),
            "Object is not valid\n  /cpus: got -1.0, expected 0.001 or more\n  /mem: a, b"
        );
        assert_eq!(
            api_message(r#"{"message":"App '/x' does not exist"}"#),
            "App '/x' does not exist"
        );
        assert_eq!(
            api_message(r#"{"error":"Agent 'a' is not known"}"#),
            "Agent 'a' is not known"
        );
        assert_eq!(api_message("No leader elected"), "No leader elected");
        assert_eq!(api_message(""), "(empty answer)");
        assert!(api_message(&"x".repeat(2000)).chars().count() <= ERROR_BODY_CHARS_MAX + 1);
        assert_eq!(api_message("[1,2]"), "[1,2]");
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let not_found = status_error(
            "GET",
            "http://h:8080/v2/apps/x",
            StatusCode::NOT_FOUND,
            r#"{"message":"App '/x' does not exist"}"#,
        );
        assert_eq!(
            not_found,
            CliError::NotFound("App '/x' does not exist".into())
        );
        assert_eq!(not_found.exit_code(), crate::EXIT_NOT_FOUND);
        let conflict = status_error(
            "POST",
            "http://h:8080/v2/apps",
            StatusCode::CONFLICT,
            r#"{"message":"An app with id [/x] already exists."}"#,
        );
        assert_eq!(conflict.exit_code(), crate::EXIT_FAILED);
        assert!(conflict.to_string().contains("already exists"));
        let no_leader = status_error(
            "GET",
            "http://h:5050/state",
            StatusCode::SERVICE_UNAVAILABLE,
            "No leader elected",
        );
        assert_eq!(no_leader.exit_code(), crate::EXIT_UNREACHABLE);
        assert!(no_leader.to_string().contains("http://h:5050"));
    }

    #[test]
    fn origin_keeps_scheme_host_and_port() {
        assert_eq!(
            origin("http://10.0.0.1:5050/state?x=1"),
            "http://10.0.0.1:5050"
        );
        assert_eq!(origin("not a url"), "not a url");
    }
}
