//! Mesos health checks: the `HealthCheck` a TaskInfo may carry (mesos-http-api.md 8.4,
//! `health_check`), in the Mesos v1 JSON mapping.
//!
//! What: `HealthCheck` with its `type` (COMMAND, HTTP, TCP), the matching `command` / `http` /
//! `tcp` part, and the timing fields with Mesos' defaults (delay 15 s, interval 10 s, timeout
//! 20 s, 3 consecutive failures, grace period 10 s). `HealthCheck::from_json` reads one and
//! validates it, naming the offending field in its error, so that an agent can refuse the task
//! with TASK_ERROR as it does for other invalid TaskInfo fields.
//!
//! Why `TaskInfo::health_check` stays raw JSON: a malformed health check must become the task's
//! TASK_ERROR at launch, not a parse failure of the whole message carrying it (an ACCEPT at the
//! master, a RUN_TASK at the agent); the same JSON is stored and rendered unchanged in `/state`.
//! Unknown keys are ignored, as everywhere in the Mesos JSON mapping.

use crate::serde_util;
use crate::task::CommandInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Mesos' defaults (`HealthCheck` in mesos.proto).
pub const DEFAULT_DELAY_SECONDS: f64 = 15.0;
pub const DEFAULT_INTERVAL_SECONDS: f64 = 10.0;
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 20.0;
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 3;
pub const DEFAULT_GRACE_PERIOD_SECONDS: f64 = 10.0;
/// Longest duration a timing field may hold (a year); more is surely a unit mistake.
pub const HEALTH_CHECK_SECONDS_MAX: f64 = 365.0 * 24.0 * 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthCheckType {
    Command,
    Http,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheckInfo {
    /// `http` (the default) or `https` (the certificate is not verified, as Mesos' checker runs
    /// `curl -k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(deserialize_with = "serde_util::lenient_i64")]
    pub port: i64,
    /// Defaults to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Status codes counted as healthy; empty means 200-399.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpCheckInfo {
    #[serde(deserialize_with = "serde_util::lenient_i64")]
    pub port: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthCheckType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckInfo>,
    pub delay_seconds: f64,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub consecutive_failures: u32,
    pub grace_period_seconds: f64,
}

/// Why a health check is unusable: `field` is its JSON path (`health_check.http.port`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{field}' {message}")]
pub struct HealthCheckError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> HealthCheckError {
    HealthCheckError {
        field: format!("health_check.{field}"),
        message: message.into(),
    }
}

/// One optional field, deserialized on its own so that a failure names it.
fn field<T: serde::de::DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<T>, HealthCheckError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|e| error(name, format!("is invalid: {e}"))),
    }
}

fn seconds(
    object: &serde_json::Map<String, Value>,
    name: &str,
    default: f64,
) -> Result<f64, HealthCheckError> {
    #[derive(Deserialize)]
    struct Lenient(#[serde(deserialize_with = "serde_util::lenient_f64")] f64);
    let value = field::<Lenient>(object, name)?.map_or(default, |v| v.0);
    if !value.is_finite() || value < 0.0 {
        return Err(error(
            name,
            format!("must be a non-negative number of seconds, not {value}"),
        ));
    }
    if value > HEALTH_CHECK_SECONDS_MAX {
        return Err(error(
            name,
            format!("must be at most {HEALTH_CHECK_SECONDS_MAX} seconds"),
        ));
    }
    Ok(value)
}

fn port(port: i64, name: &str) -> Result<(), HealthCheckError> {
    if !(1..=65535).contains(&port) {
        return Err(error(
            name,
            format!("must be a port between 1 and 65535, not {port}"),
        ));
    }
    Ok(())
}

impl HealthCheck {
    /// Reads and validates a TaskInfo's `health_check` (Mesos validation: a known `type` with its
    /// matching part, non-negative durations, valid ports). A missing `type` is inferred from
    /// the part present, as pre-1.2 Mesos did.
    pub fn from_json(value: &Value) -> Result<HealthCheck, HealthCheckError> {
        let Some(object) = value.as_object() else {
            return Err(HealthCheckError {
                field: "health_check".into(),
                message: "must be an object".into(),
            });
        };
        let command: Option<CommandInfo> = field(object, "command")?;
        let http: Option<HttpCheckInfo> = field(object, "http")?;
        let tcp: Option<TcpCheckInfo> = field(object, "tcp")?;
        let kind = match field::<String>(object, "type")?.as_deref() {
            Some("COMMAND") => HealthCheckType::Command,
            Some("HTTP") => HealthCheckType::Http,
            Some("TCP") => HealthCheckType::Tcp,
            Some(other) => {
                return Err(error(
                    "type",
                    format!("'{other}' is not one of COMMAND, HTTP, TCP"),
                ))
            }
            None if command.is_some() => HealthCheckType::Command,
            None if http.is_some() => HealthCheckType::Http,
            None if tcp.is_some() => HealthCheckType::Tcp,
            None => return Err(error("type", "is required (COMMAND, HTTP or TCP)")),
        };
        #[derive(Deserialize)]
        struct Count(#[serde(deserialize_with = "serde_util::lenient_i64")] i64);
        let consecutive_failures = match field::<Count>(object, "consecutive_failures")? {
            None => DEFAULT_CONSECUTIVE_FAILURES,
            Some(Count(n)) => u32::try_from(n).map_err(|_| {
                error(
                    "consecutive_failures",
                    format!("must be a non-negative integer, not {n}"),
                )
            })?,
        };
        let check = HealthCheck {
            kind,
            command,
            http,
            tcp,
            delay_seconds: seconds(object, "delay_seconds", DEFAULT_DELAY_SECONDS)?,
            interval_seconds: seconds(object, "interval_seconds", DEFAULT_INTERVAL_SECONDS)?,
            timeout_seconds: seconds(object, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)?,
            consecutive_failures,
            grace_period_seconds: seconds(
                object,
                "grace_period_seconds",
                DEFAULT_GRACE_PERIOD_SECONDS,
            )?,
        };
        check.validate()?;
        Ok(check)
    }

    /// The part matching `type` is present and usable.
    fn validate(&self) -> Result<(), HealthCheckError> {
        match self.kind {
            HealthCheckType::Command => {
                let Some(command) = &self.command else {
                    return Err(error("command", "is required for a COMMAND health check"));
                };
                if command.value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(error(
                        "command.value",
                        "is required for a COMMAND health check",
                    ));
                }
            }
            HealthCheckType::Http => {
                let Some(http) = &self.http else {
                    return Err(error("http", "is required for an HTTP health check"));
                };
                port(http.port, "http.port")?;
                match http.scheme.as_deref() {
                    None | Some("http") | Some("https") => {}
                    Some(other) => {
                        return Err(error(
                            "http.scheme",
                            format!("'{other}' is not supported ('http' or 'https')"),
                        ))
                    }
                }
                if let Some(path) = &http.path {
                    if !path.is_empty() && !path.starts_with('/') {
                        return Err(error("http.path", format!("'{path}' must start with '/'")));
                    }
                }
                if let Some(bad) = http.statuses.iter().find(|s| !(100..=599).contains(*s)) {
                    return Err(error(
                        "http.statuses",
                        format!("{bad} is not an HTTP status code"),
                    ));
                }
            }
            HealthCheckType::Tcp => {
                let Some(tcp) = &self.tcp else {
                    return Err(error("tcp", "is required for a TCP health check"));
                };
                port(tcp.port, "tcp.port")?;
            }
        }
        Ok(())
    }

    /// The HTTP check's scheme: `https` when so given, else `http`.
    pub fn http_scheme(&self) -> &str {
        match self.http.as_ref().and_then(|h| h.scheme.as_deref()) {
            Some("https") => "https",
            _ => "http",
        }
    }

    /// The HTTP check's path, `/` when unset.
    pub fn http_path(&self) -> &str {
        match self.http.as_ref().and_then(|h| h.path.as_deref()) {
            None | Some("") => "/",
            Some(path) => path,
        }
    }

    /// Whether an HTTP answer with this status counts as healthy (200-399 unless `statuses`).
    pub fn http_status_ok(&self, status: u16) -> bool {
        match self.http.as_ref().map(|h| &h.statuses) {
            Some(statuses) if !statuses.is_empty() => statuses.contains(&i64::from(status)),
            _ => (200..400).contains(&status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_mesos_defaults() {
        let check =
            HealthCheck::from_json(&json!({"type": "TCP", "tcp": {"port": 31005}, "extra": 1}))
                .unwrap();
        assert_eq!(check.kind, HealthCheckType::Tcp);
        assert_eq!(check.delay_seconds, 15.0);
        assert_eq!(check.interval_seconds, 10.0);
        assert_eq!(check.timeout_seconds, 20.0);
        assert_eq!(check.consecutive_failures, 3);
        assert_eq!(check.grace_period_seconds, 10.0);
    }

    #[test]
    fn marathon_shapes_parse() {
        let http = HealthCheck::from_json(&json!({
            "type": "HTTP", "http": {"scheme": "http", "port": "31005", "path": "/ping"},
            "delay_seconds": 0, "interval_seconds": "1.5", "timeout_seconds": 1, "consecutive_failures": 2,
            "grace_period_seconds": 300
        }))
        .unwrap();
        assert_eq!(http.http_path(), "/ping");
        assert_eq!(http.interval_seconds, 1.5);
        assert!(http.http_status_ok(204) && http.http_status_ok(302) && !http.http_status_ok(500));
        let command = HealthCheck::from_json(&json!({"command": {"value": "test -e ok"}})).unwrap();
        assert_eq!(command.kind, HealthCheckType::Command);
        assert!(command.command.unwrap().shell);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"type": "PING"}), "health_check.type"),
            (json!({"type": "HTTP"}), "health_check.http"),
            (
                json!({"type": "HTTP", "http": {"port": 0}}),
                "health_check.http.port",
            ),
            (
                json!({"type": "HTTP", "http": {"port": 80, "scheme": "gopher"}}),
                "health_check.http.scheme",
            ),
            (
                json!({"type": "HTTP", "http": {"port": 80, "path": "x"}}),
                "health_check.http.path",
            ),
            (
                json!({"type": "HTTP", "http": {"port": 80, "statuses": [42]}}),
                "health_check.http.statuses",
            ),
            (
                json!({"type": "HTTP", "http": {"port": "eighty"}}),
                "health_check.http",
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 70000}}),
                "health_check.tcp.port",
            ),
            (
                json!({"type": "COMMAND", "command": {"value": " "}}),
                "health_check.command.value",
            ),
            (json!({"type": "COMMAND"}), "health_check.command"),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "interval_seconds": -1}),
                "health_check.interval_seconds",
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "timeout_seconds": "NaN"}),
                "health_check.timeout_seconds",
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "delay_seconds": 1e12}),
                "health_check.delay_seconds",
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "consecutive_failures": -3}),
                "health_check.consecutive_failures",
            ),
            (json!({}), "health_check.type"),
            (json!("x"), "health_check"),
        ];
        for (value, field) in cases {
            let err = HealthCheck::from_json(&value).expect_err(&value.to_string());
            assert_eq!(err.field, field, "{value}: {err}");
        }
    }

    #[test]
    fn statuses_restrict_healthy_codes() {
        let check = HealthCheck::from_json(
            &json!({"type": "HTTP", "http": {"port": 80, "statuses": [200, 503]}}),
        )
        .unwrap();
        assert!(check.http_status_ok(503) && !check.http_status_ok(204));
    }
}
