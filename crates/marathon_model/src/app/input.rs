//! JSON → [`AppDefinition`] (marathon-api.md §2, §2.2).
//!
//! Strict about JSON types (a wrong type is a 400 with a Play error key at its path),
//! lenient about everything else: unknown keys and read-only keys (`tasks`,
//! `tasksRunning`, `deployments`, `versionInfo`, `lastTaskFailure`, `version`, …) are
//! ignored so a GET→PUT round trip works (§1 "Unknown input keys"). `null` is absent.
//!
//! Normalization done here:
//! - every default of §2 ([`super::defaults`]), role from [`ParseContext`];
//! - `ports` (deprecated) → `portDefinitions` without names; `uris` → `fetch`
//!   (archives get `extract: true`); both old and new forms given → 422 at `/`;
//! - legacy `container.docker.network` / `container.docker.portMappings` and
//!   `ipAddress` → `networks` / `container.portMappings` (§2.2); bridge mode fills a
//!   missing `hostPort` with 0;
//! - non-host networking drops `portDefinitions` and forces `requirePorts` false;
//! - constraint operators upper-cased; health checks get `portIndex: 0` (§2.1);
//! - `dependencies` resolved against the app's group.
//!
//! The 422 rules of §2 are in [`super::validate`]; only problems that a typed value
//! cannot hold (unknown enum literals, unparsable ids) are reported from here.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::defaults::{self, IdSource, ParseContext};
use super::*;
use crate::error::AppError;
use crate::health::{read_enum, HealthCheck};
use crate::json::{at, idx, Reader};

impl AppDefinition {
    /// Parse a request body (bytes as received).
    pub fn from_slice(body: &[u8], ctx: &ParseContext) -> Result<AppDefinition, AppError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| AppError::Malformed(e.to_string()))?;
        AppDefinition::from_json(&v, ctx)
    }

    /// Parse a JSON value. Does not run [`super::validate::validate`].
    pub fn from_json(v: &Value, ctx: &ParseContext) -> Result<AppDefinition, AppError> {
        let mut r = Reader::default();
        let app = read_app(&mut r, v, ctx);
        if !r.json.is_empty() {
            return Err(AppError::InvalidJson(r.json));
        }
        if !r.semantic.is_empty() {
            return Err(AppError::Invalid(r.semantic));
        }
        app.ok_or_else(|| AppError::InvalidJson(vec![]))
    }

    /// Read back what [`AppDefinition::to_json`] wrote (a store's round trip): like a
    /// POST body, but `version` is kept.
    pub fn from_stored_json(v: &Value) -> Result<AppDefinition, AppError> {
        let mut app = AppDefinition::from_json(v, &ParseContext::post())?;
        if let Some(s) = v.get("version").and_then(Value::as_str) {
            let ts = crate::time::Timestamp::parse(s).map_err(|_| {
                AppError::InvalidJson(vec![crate::error::Violation::new(
                    "/version",
                    super::patch::EXPECTED_DATE,
                )])
            })?;
            app.version = Some(ts);
        }
        Ok(app)
    }

    /// The definition with every field at its default (`instances` 1, `cpus` 1, …),
    /// `cmd` unset; useful for tests and builders.
    pub fn with_defaults(id: PathId, role: &str) -> AppDefinition {
        let ctx = ParseContext::put(id).with_role(role);
        let mut r = Reader::default();
        read_object(&mut r, &Map::new(), &ctx)
    }
}

fn read_app(r: &mut Reader, v: &Value, ctx: &ParseContext) -> Option<AppDefinition> {
    let m = r.object(v, "/")?;
    Some(read_object(r, m, ctx))
}

fn read_object(r: &mut Reader, m: &Map<String, Value>, ctx: &ParseContext) -> AppDefinition {
    let p = "";
    let id = read_id(r, m, ctx);

    let env = read_env(r, m);
    let fetch = read_fetch(r, m);
    let mut port_definitions = read_port_definitions(r, m);
    let (container, legacy_network) = match r.opt_object(m, "container", p) {
        Some(c) => read_container(r, c),
        None => (None, None),
    };
    let networks = match r.opt_array(m, "networks", p) {
        Some(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, n)| read_network(r, n, &idx("/networks", i)))
            .collect(),
        None => match (legacy_network, r.opt_object(m, "ipAddress", p)) {
            (Some(mode), _) => vec![Network {
                mode,
                name: None,
                labels: BTreeMap::new(),
            }],
            (None, Some(ip)) => {
                let name = r.opt_string(ip, "networkName", "/ipAddress");
                vec![Network {
                    mode: NetworkMode::Container,
                    name,
                    labels: BTreeMap::new(),
                }]
            }
            (None, None) => vec![Network {
                mode: NetworkMode::Host,
                name: None,
                labels: BTreeMap::new(),
            }],
        },
    };

    let constraints = read_constraints(r, m);
    let health_checks: Vec<HealthCheck> = match r.opt_array(m, "healthChecks", p) {
        Some(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, h)| HealthCheck::read(r, h, &idx("/healthChecks", i)))
            .collect(),
        None => Vec::new(),
    };
    let readiness_checks = r
        .opt_array(m, "readinessChecks", p)
        .cloned()
        .unwrap_or_default();
    let dependencies = r
        .string_list(m, "dependencies", p)
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match PathId::parse_relative_to(d, &id.parent()) {
            Ok(dep) => Some(dep),
            Err(e) => {
                r.invalid(&idx("/dependencies", i), e.to_string());
                None
            }
        })
        .collect();
    let upgrade_strategy = r.opt_object(m, "upgradeStrategy", p).map(|u| {
        let path = "/upgradeStrategy";
        let d = defaults::UPGRADE_STRATEGY;
        UpgradeStrategy {
            minimum_health_capacity: r
                .opt_number(u, "minimumHealthCapacity", path)
                .unwrap_or(d.minimum_health_capacity),
            maximum_over_capacity: r
                .opt_number(u, "maximumOverCapacity", path)
                .unwrap_or(d.maximum_over_capacity),
        }
    });
    let unreachable_strategy = read_unreachable(r, m);

    let mut app = AppDefinition {
        id,
        cmd: r.opt_string(m, "cmd", p),
        args: r.string_list(m, "args", p),
        user: r.opt_string(m, "user", p),
        env,
        instances: r.opt_int(m, "instances", p).unwrap_or(defaults::INSTANCES),
        cpus: r.opt_number(m, "cpus", p).unwrap_or(defaults::CPUS),
        mem: r.opt_number(m, "mem", p).unwrap_or(defaults::MEM),
        disk: r.opt_number(m, "disk", p).unwrap_or(defaults::DISK),
        gpus: r.opt_int(m, "gpus", p).unwrap_or(defaults::GPUS),
        executor: r.opt_string(m, "executor", p).unwrap_or_default(),
        constraints,
        fetch,
        port_definitions: Vec::new(),
        require_ports: r.opt_bool(m, "requirePorts", p).unwrap_or(false),
        backoff_seconds: r
            .opt_int(m, "backoffSeconds", p)
            .unwrap_or(defaults::BACKOFF_SECONDS),
        backoff_factor: r
            .opt_number(m, "backoffFactor", p)
            .unwrap_or(defaults::BACKOFF_FACTOR),
        max_launch_delay_seconds: r
            .opt_int(m, "maxLaunchDelaySeconds", p)
            .unwrap_or(defaults::MAX_LAUNCH_DELAY_SECONDS),
        container,
        health_checks,
        readiness_checks,
        task_kill_grace_period_seconds: r.opt_int(m, "taskKillGracePeriodSeconds", p),
        dependencies,
        upgrade_strategy: defaults::UPGRADE_STRATEGY,
        labels: r.string_map(m, "labels", p),
        accepted_resource_roles: r.string_list(m, "acceptedResourceRoles", p),
        networks,
        unreachable_strategy: defaults::UNREACHABLE_STRATEGY,
        kill_selection: read_enum(r, m, "killSelection", p).unwrap_or_default(),
        secrets: r.opt_object(m, "secrets", p).cloned().unwrap_or_default(),
        residency: r
            .opt_object(m, "residency", p)
            .map(|o| Value::Object(o.clone())),
        tty: r.opt_bool(m, "tty", p),
        role: r
            .opt_string(m, "role", p)
            .unwrap_or_else(|| ctx.default_role.clone()),
        version: None,
    };

    // Networking decides ports (§2 `networks`).
    if app.is_host_networking() {
        app.port_definitions = port_definitions.take().unwrap_or_else(|| {
            vec![PortDefinition {
                port: 0,
                protocol: defaults::PORT_PROTOCOL.to_string(),
                name: Some(defaults::DEFAULT_PORT_NAME.to_string()),
                labels: BTreeMap::new(),
            }]
        });
    } else {
        app.require_ports = false;
        let bridge = app
            .networks
            .iter()
            .any(|n| n.mode == NetworkMode::ContainerBridge);
        if let (true, Some(c)) = (bridge, app.container.as_mut()) {
            for pm in &mut c.port_mappings {
                pm.host_port.get_or_insert(0);
            }
        }
    }
    let has_ports = app.has_ports();
    for hc in &mut app.health_checks {
        hc.fill_port_index(has_ports);
    }
    app.upgrade_strategy = upgrade_strategy
        .unwrap_or_else(|| defaults::upgrade_strategy(app.has_persistent_volumes()));
    app.unreachable_strategy =
        unreachable_strategy.unwrap_or_else(|| defaults::unreachable_strategy(app.is_resident()));
    app
}

fn read_id(r: &mut Reader, m: &Map<String, Value>, ctx: &ParseContext) -> PathId {
    let parsed = match &ctx.id {
        IdSource::Url(id) => id.check_app_id().map(|_| id.clone()),
        IdSource::Body { base } => match r.req_string(m, "id", "") {
            Some(s) => PathId::parse_app_id(&s, base),
            None => return PathId::root(),
        },
    };
    parsed.unwrap_or_else(|e| {
        r.invalid("/id", e.to_string());
        PathId::root()
    })
}

fn read_env(r: &mut Reader, m: &Map<String, Value>) -> BTreeMap<String, EnvValue> {
    let Some(o) = r.opt_object(m, "env", "") else {
        return BTreeMap::new();
    };
    let mut env = BTreeMap::new();
    for (k, v) in o {
        let path = at("/env", k);
        let value = match v {
            Value::Object(s) => r.req_string(s, "secret", &path).map(EnvValue::Secret),
            other => r.string(other, &path).map(EnvValue::Value),
        };
        if let Some(value) = value {
            env.insert(k.clone(), value);
        }
    }
    env
}

fn read_fetch(r: &mut Reader, m: &Map<String, Value>) -> Vec<FetchUri> {
    let has_uris = Reader::field(m, "uris").is_some();
    if has_uris && Reader::field(m, "fetch").is_some() {
        r.invalid("/", "You cannot specify both uris and fetch fields");
    }
    if has_uris {
        return r
            .string_list(m, "uris", "")
            .into_iter()
            .map(|uri| FetchUri {
                extract: defaults::ARCHIVE_SUFFIXES.iter().any(|s| uri.ends_with(s)),
                uri,
                executable: false,
                cache: false,
                dest_path: None,
            })
            .collect();
    }
    let Some(a) = r.opt_array(m, "fetch", "") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, f) in a.iter().enumerate() {
        let path = idx("/fetch", i);
        let Some(o) = r.object(f, &path) else {
            continue;
        };
        let uri = r.req_string(o, "uri", &path);
        let extract = r.opt_bool(o, "extract", &path).unwrap_or(true);
        let executable = r.opt_bool(o, "executable", &path).unwrap_or(false);
        let cache = r.opt_bool(o, "cache", &path).unwrap_or(false);
        let dest_path = r.opt_string(o, "destPath", &path);
        if let Some(uri) = uri {
            out.push(FetchUri {
                uri,
                extract,
                executable,
                cache,
                dest_path,
            });
        }
    }
    out
}

/// `Some(list)` when `ports` or `portDefinitions` was given.
fn read_port_definitions(r: &mut Reader, m: &Map<String, Value>) -> Option<Vec<PortDefinition>> {
    let has_ports = Reader::field(m, "ports").is_some();
    let has_defs = Reader::field(m, "portDefinitions").is_some();
    if has_ports && has_defs {
        r.invalid("/", "You cannot specify both ports and port definitions");
    }
    if has_ports {
        let a = r.opt_array(m, "ports", "")?;
        let ports = a
            .iter()
            .enumerate()
            .filter_map(|(i, v)| r.int(v, &idx("/ports", i)));
        return Some(
            ports
                .map(|port| PortDefinition {
                    port,
                    protocol: defaults::PORT_PROTOCOL.to_string(),
                    name: None,
                    labels: BTreeMap::new(),
                })
                .collect::<Vec<_>>(),
        );
    }
    let a = r.opt_array(m, "portDefinitions", "")?;
    let mut out = Vec::new();
    for (i, v) in a.iter().enumerate() {
        let path = idx("/portDefinitions", i);
        let Some(o) = r.object(v, &path) else {
            continue;
        };
        out.push(PortDefinition {
            port: r.opt_int(o, "port", &path).unwrap_or(0),
            protocol: r
                .opt_string(o, "protocol", &path)
                .unwrap_or_else(|| defaults::PORT_PROTOCOL.to_string()),
            name: r.opt_string(o, "name", &path),
            labels: r.string_map(o, "labels", &path),
        });
    }
    Some(out)
}

fn read_network(r: &mut Reader, v: &Value, path: &str) -> Option<Network> {
    let o = r.object(v, path)?;
    let mode = read_enum(r, o, "mode", path).unwrap_or(NetworkMode::Container);
    Some(Network {
        mode,
        name: r.opt_string(o, "name", path),
        labels: r.string_map(o, "labels", path),
    })
}

fn read_constraints(r: &mut Reader, m: &Map<String, Value>) -> Vec<Vec<String>> {
    let Some(a) = r.opt_array(m, "constraints", "") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, c) in a.iter().enumerate() {
        let path = idx("/constraints", i);
        let Some(parts) = r.array(c, &path) else {
            continue;
        };
        let mut strings: Vec<String> = parts
            .iter()
            .enumerate()
            .filter_map(|(j, s)| r.string(s, &idx(&path, j)))
            .collect();
        if let Some(op) = strings.get_mut(1) {
            *op = op.to_uppercase();
        }
        out.push(strings);
    }
    out
}

fn read_unreachable(r: &mut Reader, m: &Map<String, Value>) -> Option<UnreachableStrategy> {
    let path = "/unreachableStrategy";
    match Reader::field(m, "unreachableStrategy")? {
        Value::String(s) if s == "disabled" => Some(UnreachableStrategy::Disabled),
        Value::String(_) => {
            r.invalid(path, "must be \"disabled\" or an object");
            None
        }
        other => {
            let o = r.object(other, path)?;
            let d = (0, 0);
            Some(UnreachableStrategy::Enabled {
                inactive_after_seconds: r.opt_int(o, "inactiveAfterSeconds", path).unwrap_or(d.0),
                expunge_after_seconds: r.opt_int(o, "expungeAfterSeconds", path).unwrap_or(d.1),
            })
        }
    }
}

/// Legacy `docker.network` literals (§2.2).
fn legacy_network(s: &str) -> Option<NetworkMode> {
    match s {
        "BRIDGE" => Some(NetworkMode::ContainerBridge),
        "USER" => Some(NetworkMode::Container),
        "HOST" | "NONE" => Some(NetworkMode::Host),
        _ => None,
    }
}

fn read_container(
    r: &mut Reader,
    c: &Map<String, Value>,
) -> (Option<Container>, Option<NetworkMode>) {
    let path = "/container";
    let kind = read_enum(r, c, "type", path).unwrap_or(ContainerType::Docker);
    let mut network = None;
    let mut legacy_mappings = None;
    let docker = r.opt_object(c, "docker", path).map(|d| {
        let dpath = "/container/docker";
        if let Some(n) = r.opt_string(d, "network", dpath) {
            network = legacy_network(&n);
            if network.is_none() {
                r.invalid(&at(dpath, "network"), "is not one of (BRIDGE,USER,HOST)");
            }
        }
        if let Some(a) = r.opt_array(d, "portMappings", dpath) {
            legacy_mappings = Some(read_port_mappings(r, a, &at(dpath, "portMappings")));
        }
        let mut parameters = Vec::new();
        if let Some(a) = r.opt_array(d, "parameters", dpath) {
            for (i, p) in a.iter().enumerate() {
                let ppath = idx(&at(dpath, "parameters"), i);
                let Some(o) = r.object(p, &ppath) else {
                    continue;
                };
                if let (Some(k), Some(v)) = (
                    r.req_string(o, "key", &ppath),
                    r.req_string(o, "value", &ppath),
                ) {
                    parameters.push((k, v));
                }
            }
        }
        Docker {
            image: r.req_string(d, "image", dpath).unwrap_or_default(),
            force_pull_image: r.opt_bool(d, "forcePullImage", dpath).unwrap_or(false),
            privileged: r.opt_bool(d, "privileged", dpath).unwrap_or(false),
            parameters,
        }
    });
    let port_mappings = match r.opt_array(c, "portMappings", path) {
        Some(a) => read_port_mappings(r, a, "/container/portMappings"),
        None => legacy_mappings.unwrap_or_default(),
    };
    let mut volumes = Vec::new();
    if let Some(a) = r.opt_array(c, "volumes", path) {
        for (i, v) in a.iter().enumerate() {
            let vpath = idx("/container/volumes", i);
            let Some(o) = r.object(v, &vpath) else {
                continue;
            };
            let container_path = r.req_string(o, "containerPath", &vpath).unwrap_or_default();
            volumes.push(Volume {
                container_path,
                host_path: r.opt_string(o, "hostPath", &vpath),
                mode: read_enum(r, o, "mode", &vpath).unwrap_or(VolumeMode::Rw),
                persistent: r
                    .opt_object(o, "persistent", &vpath)
                    .map(|p| Value::Object(p.clone())),
                external: r
                    .opt_object(o, "external", &vpath)
                    .map(|p| Value::Object(p.clone())),
            });
        }
    }
    (
        Some(Container {
            kind,
            docker,
            port_mappings,
            volumes,
        }),
        network,
    )
}

fn read_port_mappings(r: &mut Reader, a: &[Value], path: &str) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for (i, v) in a.iter().enumerate() {
        let ppath = idx(path, i);
        let Some(o) = r.object(v, &ppath) else {
            continue;
        };
        out.push(PortMapping {
            container_port: r.opt_int(o, "containerPort", &ppath).unwrap_or(0),
            host_port: r.opt_int(o, "hostPort", &ppath),
            service_port: r.opt_int(o, "servicePort", &ppath).unwrap_or(0),
            protocol: r
                .opt_string(o, "protocol", &ppath)
                .unwrap_or_else(|| defaults::PORT_PROTOCOL.to_string()),
            name: r.opt_string(o, "name", &ppath),
            labels: r.string_map(o, "labels", &ppath),
        });
    }
    out
}
