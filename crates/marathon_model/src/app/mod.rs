//! The app definition (marathon-api.md §2) as a plain Rust value.
//!
//! - [`input`]: JSON → [`AppDefinition`] with every default filled and legacy fields
//!   migrated (400 on wrong JSON types).
//! - [`validate`]: the 422 rules of §2.
//! - [`output`]: [`AppDefinition`] (+ caller-supplied status) → AppInfo JSON (§3).
//! - [`patch`]: partial updates, rollback and scale requests (§4 PUT/PATCH).
//! - [`change`]: how a new definition differs at runtime (§7).
//!
//! Enumerations the wire restricts (`killSelection`, container `type`, volume `mode`,
//! network `mode`, health-check `protocol`) are Rust enums; an unknown literal is found
//! while reading and reported as a 422 violation at its path. Constraints stay as the
//! raw string lists the client sent (op upper-cased) so validation can report their
//! shape; [`crate::constraints::Constraint`] is the typed form.

pub mod change;
pub mod defaults;
pub mod input;
pub mod output;
pub mod patch;
pub mod validate;

#[cfg(test)]
mod input_tests;
#[cfg(test)]
mod output_tests;
#[cfg(test)]
mod update_tests;
#[cfg(test)]
mod validate_tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::health::HealthCheck;
use crate::id::PathId;
use crate::time::Timestamp;

/// An app definition as stored: normalized, defaults filled.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDefinition {
    pub id: PathId,
    pub cmd: Option<String>,
    /// Exec form; empty = not given.
    pub args: Vec<String>,
    pub user: Option<String>,
    pub env: BTreeMap<String, EnvValue>,
    /// Validated ≥ 0.
    pub instances: i64,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub gpus: i64,
    /// `""` = the command executor.
    pub executor: String,
    /// Raw `[field, OP, value?]` lists, OP upper-cased; see [`crate::constraints`].
    pub constraints: Vec<Vec<String>>,
    pub fetch: Vec<FetchUri>,
    /// Host networking only; dropped for container networking.
    pub port_definitions: Vec<PortDefinition>,
    pub require_ports: bool,
    pub backoff_seconds: i64,
    pub backoff_factor: f64,
    pub max_launch_delay_seconds: i64,
    pub container: Option<Container>,
    pub health_checks: Vec<HealthCheck>,
    /// Accepted and stored verbatim.
    pub readiness_checks: Vec<Value>,
    pub task_kill_grace_period_seconds: Option<i64>,
    /// Absolute ids (relative ones resolved against the app's group).
    pub dependencies: Vec<PathId>,
    pub upgrade_strategy: UpgradeStrategy,
    pub labels: BTreeMap<String, String>,
    /// Empty = not given.
    pub accepted_resource_roles: Vec<String>,
    pub networks: Vec<Network>,
    pub unreachable_strategy: UnreachableStrategy,
    pub kill_selection: KillSelection,
    /// Accepted and stored verbatim.
    pub secrets: Map<String, Value>,
    /// Accepted and stored verbatim.
    pub residency: Option<Value>,
    pub tty: Option<bool>,
    pub role: String,
    /// Read-only on input (always `None` after parsing); the caller stamps stored apps.
    pub version: Option<Timestamp>,
}

/// An `env` value: a plain string or a secret reference `{"secret": "name"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Value(String),
    Secret(String),
}

/// One `portDefinitions` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PortDefinition {
    /// 0 = assign a service port (done by the caller, which knows the free ports).
    pub port: i64,
    /// `tcp`, `udp` or `udp,tcp` (validated).
    pub protocol: String,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `upgradeStrategy` (fractions in [0, 1], validated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpgradeStrategy {
    pub minimum_health_capacity: f64,
    pub maximum_over_capacity: f64,
}

/// `unreachableStrategy`: `"disabled"` or the two delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    Disabled,
    Enabled {
        inactive_after_seconds: i64,
        expunge_after_seconds: i64,
    },
}

/// `killSelection`: which instance dies first on scale-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillSelection {
    #[default]
    YoungestFirst,
    OldestFirst,
}

/// One `networks` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub mode: NetworkMode,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Host,
    ContainerBridge,
    Container,
}

/// One `fetch` entry (also produced from deprecated `uris`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchUri {
    pub uri: String,
    pub extract: bool,
    pub executable: bool,
    pub cache: bool,
    pub dest_path: Option<String>,
}

/// `container` (marathon-api.md §2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub kind: ContainerType,
    pub docker: Option<Docker>,
    pub port_mappings: Vec<PortMapping>,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerType {
    Docker,
    Mesos,
}

/// `container.docker`; `network` and `portMappings` are migrated away on input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Docker {
    pub image: String,
    pub force_pull_image: bool,
    pub privileged: bool,
    pub parameters: Vec<(String, String)>,
}

/// `container.portMappings` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMapping {
    pub container_port: i64,
    /// `None` = no host port (container networking); bridge mode fills 0.
    pub host_port: Option<i64>,
    pub service_port: i64,
    pub protocol: String,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `container.volumes` entry. Persistent/external volume specs are kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub container_path: String,
    pub host_path: Option<String>,
    pub mode: VolumeMode,
    pub persistent: Option<Value>,
    pub external: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeMode {
    Ro,
    Rw,
}

/// Literal ↔ enum mapping for the wire enums.
pub trait WireEnum: Sized + Copy + 'static {
    /// `(literal, value)` pairs.
    const ALL: &'static [(&'static str, Self)];
    fn from_wire(s: &str) -> Option<Self>;
    fn as_wire(self) -> &'static str;
}

macro_rules! wire_enum_impl {
    ($t:ty, $($lit:literal => $v:expr),+ $(,)?) => {
        impl WireEnum for $t {
            const ALL: &'static [(&'static str, Self)] = &[$(($lit, $v)),+];
            fn from_wire(s: &str) -> Option<Self> {
                Self::ALL.iter().find(|(l, _)| *l == s).map(|(_, v)| *v)
            }
            fn as_wire(self) -> &'static str {
                Self::ALL.iter().find(|(_, v)| *v == self).map(|(l, _)| *l).unwrap_or("")
            }
        }
    };
}
pub(crate) use wire_enum_impl;

wire_enum_impl!(KillSelection, "YOUNGEST_FIRST" => KillSelection::YoungestFirst, "OLDEST_FIRST" => KillSelection::OldestFirst);
wire_enum_impl!(NetworkMode, "host" => NetworkMode::Host, "container/bridge" => NetworkMode::ContainerBridge, "container" => NetworkMode::Container);
wire_enum_impl!(ContainerType, "DOCKER" => ContainerType::Docker, "MESOS" => ContainerType::Mesos);
wire_enum_impl!(VolumeMode, "RO" => VolumeMode::Ro, "RW" => VolumeMode::Rw);

/// "is not one of (A,B)" message for an unknown literal.
pub(crate) fn enum_error<E: WireEnum>() -> String {
    let names: Vec<&str> = E::ALL.iter().map(|(l, _)| *l).collect();
    format!("is not one of ({})", names.join(","))
}

impl AppDefinition {
    /// Whether the app uses host networking (no container network in `networks`).
    pub fn is_host_networking(&self) -> bool {
        self.networks.iter().all(|n| n.mode == NetworkMode::Host)
    }

    /// Whether the app declares any port: port definitions (host networking) or
    /// container port mappings.
    pub fn has_ports(&self) -> bool {
        self.port_count() > 0
    }

    /// How many host/service ports a task of this app gets (what `portIndex` indexes).
    pub fn port_count(&self) -> usize {
        if self.is_host_networking() {
            self.port_definitions.len()
        } else {
            self.container.as_ref().map_or(0, |c| c.port_mappings.len())
        }
    }

    /// Whether any volume is persistent or external (changes defaults, §2).
    pub fn has_persistent_volumes(&self) -> bool {
        self.container.as_ref().is_some_and(|c| {
            c.volumes
                .iter()
                .any(|v| v.persistent.is_some() || v.external.is_some())
        })
    }

    /// Whether the app is resident (local persistent volumes).
    pub fn is_resident(&self) -> bool {
        self.residency.is_some()
            || self
                .container
                .as_ref()
                .is_some_and(|c| c.volumes.iter().any(|v| v.persistent.is_some()))
    }

    /// The constraints in typed form; entries that do not parse are skipped (run
    /// [`validate::validate`] first to report them).
    pub fn typed_constraints(&self) -> Vec<crate::constraints::Constraint> {
        self.constraints
            .iter()
            .filter_map(|c| crate::constraints::Constraint::from_parts(c).ok())
            .collect()
    }
}
