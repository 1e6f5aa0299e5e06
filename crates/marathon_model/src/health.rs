//! Health checks of an app (marathon-api.md §2.1): reading with defaults, and the
//! output form that echoes every field with defaults filled.

use serde_json::{json, Map, Value};

use crate::app::{enum_error, WireEnum};
use crate::json::{at, Reader};

pub const GRACE_PERIOD_SECONDS: i64 = 300;
pub const INTERVAL_SECONDS: i64 = 60;
pub const TIMEOUT_SECONDS: i64 = 20;
pub const MAX_CONSECUTIVE_FAILURES: i64 = 3;
pub const DELAY_SECONDS: i64 = 15;
pub const HTTP_PATH: &str = "/";

/// Who runs the check and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthProtocol {
    #[default]
    Http,
    Https,
    Tcp,
    Command,
    MesosHttp,
    MesosHttps,
    MesosTcp,
}

crate::app::wire_enum_impl!(HealthProtocol,
    "HTTP" => HealthProtocol::Http, "HTTPS" => HealthProtocol::Https, "TCP" => HealthProtocol::Tcp,
    "COMMAND" => HealthProtocol::Command, "MESOS_HTTP" => HealthProtocol::MesosHttp,
    "MESOS_HTTPS" => HealthProtocol::MesosHttps, "MESOS_TCP" => HealthProtocol::MesosTcp);

impl HealthProtocol {
    /// Checks the Marathon leader runs itself (the others run on the agent).
    pub fn is_marathon_level(self) -> bool {
        matches!(
            self,
            HealthProtocol::Http | HealthProtocol::Https | HealthProtocol::Tcp
        )
    }

    /// HTTP-like checks (have `path` and `ignoreHttp1xx`).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            HealthProtocol::Http
                | HealthProtocol::Https
                | HealthProtocol::MesosHttp
                | HealthProtocol::MesosHttps
        )
    }

    /// Checks that address a port (all but `COMMAND`).
    pub fn uses_port(self) -> bool {
        self != HealthProtocol::Command
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpProtocol {
    #[default]
    IPv4,
    IPv6,
}

crate::app::wire_enum_impl!(IpProtocol, "IPv4" => IpProtocol::IPv4, "IPv6" => IpProtocol::IPv6);

/// One health check, defaults filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// HTTP-like checks only (`/` by default).
    pub path: Option<String>,
    pub port_index: Option<i64>,
    pub port: Option<i64>,
    /// Shell command of a `COMMAND` check (`{"value": …}` on the wire).
    pub command: Option<String>,
    pub grace_period_seconds: i64,
    pub interval_seconds: i64,
    pub timeout_seconds: i64,
    /// 0 = never kill.
    pub max_consecutive_failures: i64,
    pub delay_seconds: i64,
    pub ignore_http1xx: bool,
    pub ip_protocol: IpProtocol,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            protocol: HealthProtocol::Http,
            path: Some(HTTP_PATH.to_string()),
            port_index: None,
            port: None,
            command: None,
            grace_period_seconds: GRACE_PERIOD_SECONDS,
            interval_seconds: INTERVAL_SECONDS,
            timeout_seconds: TIMEOUT_SECONDS,
            max_consecutive_failures: MAX_CONSECUTIVE_FAILURES,
            delay_seconds: DELAY_SECONDS,
            ignore_http1xx: false,
            ip_protocol: IpProtocol::IPv4,
        }
    }
}

/// Read an enum literal at `parent/key`; unknown literal → 422 violation.
pub(crate) fn read_enum<E: WireEnum>(
    r: &mut Reader,
    m: &Map<String, Value>,
    key: &str,
    parent: &str,
) -> Option<E> {
    let s = r.opt_string(m, key, parent)?;
    let v = E::from_wire(&s);
    if v.is_none() {
        r.invalid(&at(parent, key), enum_error::<E>());
    }
    v
}

impl HealthCheck {
    /// Read one check at `path`; `None` if it had errors (recorded in `r`).
    pub(crate) fn read(r: &mut Reader, v: &Value, path: &str) -> Option<HealthCheck> {
        let m = r.object(v, path)?;
        let before = (r.json.len(), r.semantic.len());
        let d = HealthCheck::default();
        let protocol = read_enum(r, m, "protocol", path).unwrap_or_default();
        let path_field = r.opt_string(m, "path", path);
        let command = match Reader::field(m, "command") {
            None => None,
            Some(c) => {
                let cpath = at(path, "command");
                r.object(c, &cpath)
                    .and_then(|o| r.req_string(o, "value", &cpath))
            }
        };
        let hc = HealthCheck {
            protocol,
            path: if protocol.is_http() {
                Some(path_field.unwrap_or(d.path.unwrap_or_default()))
            } else {
                None
            },
            port_index: r.opt_int(m, "portIndex", path),
            port: r.opt_int(m, "port", path),
            command,
            grace_period_seconds: r
                .opt_int(m, "gracePeriodSeconds", path)
                .unwrap_or(d.grace_period_seconds),
            interval_seconds: r
                .opt_int(m, "intervalSeconds", path)
                .unwrap_or(d.interval_seconds),
            timeout_seconds: r
                .opt_int(m, "timeoutSeconds", path)
                .unwrap_or(d.timeout_seconds),
            max_consecutive_failures: r
                .opt_int(m, "maxConsecutiveFailures", path)
                .unwrap_or(d.max_consecutive_failures),
            delay_seconds: r
                .opt_int(m, "delaySeconds", path)
                .unwrap_or(d.delay_seconds),
            ignore_http1xx: r.opt_bool(m, "ignoreHttp1xx", path).unwrap_or(false),
            ip_protocol: read_enum(r, m, "ipProtocol", path).unwrap_or_default(),
        };
        ((r.json.len(), r.semantic.len()) == before).then_some(hc)
    }

    /// Add `portIndex: 0` when neither `port` nor `portIndex` is given, the check
    /// addresses a port and the app has ports (§2.1).
    pub fn fill_port_index(&mut self, app_has_ports: bool) {
        if self.port.is_none()
            && self.port_index.is_none()
            && self.protocol.uses_port()
            && app_has_ports
        {
            self.port_index = Some(0);
        }
    }

    /// The output form: every field with defaults filled; protocol-specific fields only
    /// where they apply.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("protocol".into(), json!(self.protocol.as_wire()));
        if let Some(p) = &self.path {
            m.insert("path".into(), json!(p));
        }
        if let Some(i) = self.port_index {
            m.insert("portIndex".into(), json!(i));
        }
        if let Some(p) = self.port {
            m.insert("port".into(), json!(p));
        }
        if let Some(c) = &self.command {
            m.insert("command".into(), json!({ "value": c }));
        }
        m.insert(
            "gracePeriodSeconds".into(),
            json!(self.grace_period_seconds),
        );
        m.insert("intervalSeconds".into(), json!(self.interval_seconds));
        m.insert("timeoutSeconds".into(), json!(self.timeout_seconds));
        m.insert(
            "maxConsecutiveFailures".into(),
            json!(self.max_consecutive_failures),
        );
        m.insert("delaySeconds".into(), json!(self.delay_seconds));
        if self.protocol.is_http() {
            m.insert("ignoreHttp1xx".into(), json!(self.ignore_http1xx));
        }
        m.insert("ipProtocol".into(), json!(self.ip_protocol.as_wire()));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: Value) -> (Option<HealthCheck>, Reader) {
        let mut r = Reader::default();
        let hc = HealthCheck::read(&mut r, &v, "/healthChecks(0)");
        (hc, r)
    }

    #[test]
    fn defaults_are_filled() {
        let (hc, _) = read(json!({}));
        let mut hc = hc.unwrap();
        assert_eq!(hc, HealthCheck::default());
        hc.fill_port_index(true);
        assert_eq!(
            hc.to_json(),
            json!({"protocol":"HTTP","path":"/","portIndex":0,"gracePeriodSeconds":300,"intervalSeconds":60,
                   "timeoutSeconds":20,"maxConsecutiveFailures":3,"delaySeconds":15,"ignoreHttp1xx":false,
                   "ipProtocol":"IPv4"})
        );
    }

    #[test]
    fn port_index_only_when_needed() {
        let mut with_port = read(json!({"protocol":"TCP","port":8080})).0.unwrap();
        with_port.fill_port_index(true);
        assert_eq!(with_port.port_index, None);
        assert_eq!(with_port.path, None);
        let mut no_ports = read(json!({})).0.unwrap();
        no_ports.fill_port_index(false);
        assert_eq!(no_ports.port_index, None);
        let mut cmd = read(json!({"protocol":"COMMAND","command":{"value":"true"}}))
            .0
            .unwrap();
        cmd.fill_port_index(true);
        assert_eq!(cmd.port_index, None);
        assert_eq!(cmd.to_json()["command"], json!({"value":"true"}));
    }

    #[test]
    fn bad_fields_are_reported_at_their_path() {
        let (hc, r) = read(json!({"protocol":"FTP","intervalSeconds":"x","command":{"value":1}}));
        assert!(hc.is_none());
        assert_eq!(r.semantic[0].path, "/healthChecks(0)/protocol");
        let paths: Vec<&str> = r.json.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/healthChecks(0)/command/value",
                "/healthChecks(0)/intervalSeconds"
            ]
        );
    }
}
