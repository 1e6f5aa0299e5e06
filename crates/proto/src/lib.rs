//! Wire types shared by every tepui component.
//!
//! What: identifiers, resources, task states and statuses, `MasterInfo`, the Mesos v1 scheduler API
//! messages, the v1 executor API messages (`executor`), the internal master<->agent protocol, and the RecordIO framing used by streaming calls.
//! Why here: these are the only types that get serialized. Internal state of the master and agent
//! converts to and from them at the edge, so a change of wire format is a change in this crate only.
//!
//! The JSON mapping follows the protobuf JSON rules of Mesos (mesos-http-api.md section 1): snake_case
//! keys, enums as names, unset fields omitted, unknown input keys ignored.
//!
//! This crate does no I/O and reads no clock.

pub mod agent_protocol;
pub mod executor;
pub mod framework;
pub mod health_check;
pub mod ids;
pub mod master_info;
pub mod recordio;
pub mod resources;
pub mod scheduler;
pub mod serde_util;
pub mod task;

pub use framework::*;
pub use health_check::{HealthCheck, HealthCheckError, HealthCheckType};
pub use ids::*;
pub use master_info::*;
pub use resources::*;
pub use task::*;

/// The Mesos version tepui presents. pymesos parses every dot-separated part as an integer
/// (mesos-http-api.md section 11), so it must stay purely numeric.
pub const MESOS_VERSION: &str = "1.11.0";

/// tepui's own release, reported beside the Mesos version.
pub const TEPUI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A duration as v1 messages carry it: `{"nanoseconds": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DurationInfo {
    #[serde(deserialize_with = "serde_util::lenient_i64")]
    pub nanoseconds: i64,
}

impl DurationInfo {
    pub fn from_secs_f64(secs: f64) -> Self {
        DurationInfo {
            nanoseconds: (secs * 1e9) as i64,
        }
    }
    pub fn as_secs_f64(&self) -> f64 {
        self.nanoseconds as f64 / 1e9
    }
}

/// A point in time as v1 messages carry it: nanoseconds since the epoch.
pub type TimeInfo = DurationInfo;

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Labels {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// Parses a Mesos duration flag such as `5secs`, `100ms`, `2mins`, `1hrs`, `1days` or a bare number of
/// seconds, into seconds.
pub fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. 5secs, 100ms, 2mins)"))?;
    let scale = match unit.trim() {
        "" | "secs" | "sec" | "s" => 1.0,
        "ns" | "nsecs" => 1e-9,
        "us" | "usecs" => 1e-6,
        "ms" | "msecs" => 1e-3,
        "mins" | "min" | "m" => 60.0,
        "hrs" | "hr" | "h" => 3600.0,
        "days" | "day" | "d" => 86400.0,
        "weeks" | "week" | "w" => 604800.0,
        other => return Err(format!("'{text}' has an unknown duration unit '{other}'")),
    };
    Ok(value * scale)
}

/// Formats seconds the way Mesos prints durations in `/flags` (`5secs`, `100ms`).
pub fn format_duration_secs(secs: f64) -> String {
    if secs >= 1.0 || secs == 0.0 {
        format!("{}secs", trim_float(secs))
    } else {
        format!("{}ms", trim_float(secs * 1000.0))
    }
}

fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_mesos_units() {
        assert_eq!(parse_duration_secs("5secs").unwrap(), 5.0);
        assert_eq!(parse_duration_secs("100ms").unwrap(), 0.1);
        assert_eq!(parse_duration_secs("2mins").unwrap(), 120.0);
        assert_eq!(parse_duration_secs("3").unwrap(), 3.0);
        assert!(parse_duration_secs("5 parsecs").is_err());
        assert!(parse_duration_secs("abc").is_err());
        assert_eq!(format_duration_secs(5.0), "5secs");
        assert_eq!(format_duration_secs(0.1), "100ms");
    }
}
