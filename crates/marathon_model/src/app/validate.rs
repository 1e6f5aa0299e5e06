//! The 422 rules for an app definition (marathon-api.md §2 tables, §2.1, §2.2).
//!
//! Messages follow Marathon's style (`got 0.0, expected 0.001 or more`, `is greater
//! than 1`); paths are Play-style (`/healthChecks(0)/portIndex`), whole-object rules use
//! `/`. Rules that need the whole group tree (an app id equal to an existing group, an
//! app under another app) are the caller's: this crate sees one app.

use std::collections::BTreeSet;

use super::{AppDefinition, ContainerType, EnvValue, NetworkMode, UnreachableStrategy};
use crate::constraints::Constraint;
use crate::error::{push_violation, AppError, Violation};
use crate::health::HealthProtocol;
use crate::json::idx;

use super::defaults::ParseContext;

/// Protocols allowed for port definitions and port mappings.
pub const PORT_PROTOCOLS: [&str; 3] = ["tcp", "udp", "udp,tcp"];
pub const CPUS_MIN: f64 = 0.001;
pub const PORT_MAX: i64 = 65535;

const CMD_ARGS_CONTAINER: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
const PORT_INDEX: &str =
    "Health check port indices must address an element of the ports array or container port mappings.";

/// Parse and validate in one go: 400 for shape errors, then 422 for rule violations.
pub fn parse_and_validate(
    v: &serde_json::Value,
    ctx: &ParseContext,
) -> Result<AppDefinition, AppError> {
    let app = AppDefinition::from_json(v, ctx)?;
    validate(&app).map_err(AppError::Invalid)?;
    Ok(app)
}

/// Check every single-app rule; all violations are returned, grouped per path.
pub fn validate(app: &AppDefinition) -> Result<(), Vec<Violation>> {
    let mut v = Vec::new();
    let mut bad = |path: &str, msg: String| push_violation(&mut v, path, msg);

    if let Err(e) = app.id.check_app_id() {
        bad("/id", e.to_string());
    }

    // cmd / args / container (§2 `cmd`).
    let has_cmd = app.cmd.is_some();
    let has_args = !app.args.is_empty();
    if (has_cmd && has_args) || (!has_cmd && !has_args && app.container.is_none()) {
        bad("/", CMD_ARGS_CONTAINER.to_string());
    }
    if app.cmd.as_deref() == Some("") {
        bad("/cmd", "must not be empty".to_string());
    }

    // Resources and counts.
    if app.cpus < CPUS_MIN {
        bad(
            "/cpus",
            format!("got {:?}, expected {CPUS_MIN} or more", app.cpus),
        );
    }
    for (path, x) in [("/mem", app.mem), ("/disk", app.disk)] {
        if x < 0.0 {
            bad(path, format!("got {x:?}, expected 0.0 or more"));
        }
    }
    let ints = [
        ("/gpus", Some(app.gpus)),
        ("/instances", Some(app.instances)),
        ("/backoffSeconds", Some(app.backoff_seconds)),
        ("/maxLaunchDelaySeconds", Some(app.max_launch_delay_seconds)),
        (
            "/taskKillGracePeriodSeconds",
            app.task_kill_grace_period_seconds,
        ),
    ];
    for (path, x) in ints {
        if let Some(x) = x.filter(|x| *x < 0) {
            bad(path, format!("got {x}, expected 0 or more"));
        }
    }
    if app.backoff_factor < 1.0 {
        bad(
            "/backoffFactor",
            format!("got {:?}, expected 1.0 or more", app.backoff_factor),
        );
    }

    // Ports.
    port_rules(
        &mut bad,
        "/portDefinitions",
        app.port_definitions
            .iter()
            .map(|p| (p.port, p.protocol.as_str(), p.name.as_deref())),
    );
    if let Some(c) = &app.container {
        port_rules(
            &mut bad,
            "/container/portMappings",
            c.port_mappings
                .iter()
                .map(|p| (p.container_port, p.protocol.as_str(), p.name.as_deref())),
        );
        for (i, pm) in c.port_mappings.iter().enumerate() {
            for (key, port) in [
                ("hostPort", pm.host_port.unwrap_or(0)),
                ("servicePort", pm.service_port),
            ] {
                if !(0..=PORT_MAX).contains(&port) {
                    bad(
                        &format!("/container/portMappings({i})/{key}"),
                        range_msg(port),
                    );
                }
            }
        }
    }

    // Strategies (§2 `upgradeStrategy`, `unreachableStrategy`).
    let us = app.upgrade_strategy;
    for (key, x) in [
        ("minimumHealthCapacity", us.minimum_health_capacity),
        ("maximumOverCapacity", us.maximum_over_capacity),
    ] {
        let path = format!("/upgradeStrategy/{key}");
        if x < 0.0 {
            bad(&path, "is less than 0".to_string());
        } else if x > 1.0 {
            bad(&path, "is greater than 1".to_string());
        }
    }
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds: ia,
        expunge_after_seconds: ea,
    } = app.unreachable_strategy
    {
        for (key, x) in [("inactiveAfterSeconds", ia), ("expungeAfterSeconds", ea)] {
            if x < 0 {
                bad(
                    &format!("/unreachableStrategy/{key}"),
                    format!("got {x}, expected 0 or more"),
                );
            }
        }
        if ia > ea {
            bad(
                "/unreachableStrategy",
                "inactiveAfterSeconds must be less or equal to expungeAfterSeconds".into(),
            );
        }
    }

    // Constraints (§2 `constraints`).
    for (i, c) in app.constraints.iter().enumerate() {
        if let Err(e) = Constraint::from_parts(c) {
            bad(&idx("/constraints", i), e.to_string());
        }
    }

    // Health checks (§2.1).
    let port_count = app.port_count() as i64;
    for (i, hc) in app.health_checks.iter().enumerate() {
        let path = idx("/healthChecks", i);
        if hc.protocol == HealthProtocol::Command {
            if !matches!(hc.command.as_deref(), Some(c) if !c.is_empty()) {
                bad(
                    &format!("{path}/command"),
                    "is required for COMMAND health checks".into(),
                );
            }
        } else {
            match (hc.port, hc.port_index) {
                (Some(_), Some(_)) => bad(
                    &path,
                    "Health checks may define either port or portIndex, not both".into(),
                ),
                (Some(p), None) if !(0..=PORT_MAX).contains(&p) => {
                    bad(&format!("{path}/port"), range_msg(p))
                }
                (None, Some(ix)) if ix < 0 || ix >= port_count => {
                    bad(&format!("{path}/portIndex"), PORT_INDEX.into())
                }
                (None, None) => bad(&path, PORT_INDEX.into()),
                _ => {}
            }
        }
        let nonneg = [
            ("gracePeriodSeconds", hc.grace_period_seconds),
            ("intervalSeconds", hc.interval_seconds),
            ("timeoutSeconds", hc.timeout_seconds),
            ("maxConsecutiveFailures", hc.max_consecutive_failures),
            ("delaySeconds", hc.delay_seconds),
        ];
        for (key, x) in nonneg {
            if x < 0 {
                bad(
                    &format!("{path}/{key}"),
                    format!("got {x}, expected 0 or more"),
                );
            }
        }
        if hc.timeout_seconds >= hc.interval_seconds && hc.interval_seconds > 0 {
            bad(
                &path,
                "timeoutSeconds must be smaller than intervalSeconds".into(),
            );
        }
    }

    // Container (§2.2).
    if let Some(c) = &app.container {
        match (&c.kind, &c.docker) {
            (ContainerType::Docker, None) => bad(
                "/container/docker",
                "must be defined for DOCKER containers".into(),
            ),
            (_, Some(d)) if d.image.is_empty() => {
                bad("/container/docker/image", "must not be empty".into())
            }
            _ => {}
        }
        for (i, vol) in c.volumes.iter().enumerate() {
            if vol.container_path.is_empty() {
                bad(
                    &format!("/container/volumes({i})/containerPath"),
                    "must not be empty".into(),
                );
            }
        }
    }

    // Networks (§2 `networks`).
    let host = app
        .networks
        .iter()
        .filter(|n| n.mode == NetworkMode::Host)
        .count();
    let bridge = app
        .networks
        .iter()
        .filter(|n| n.mode == NetworkMode::ContainerBridge)
        .count();
    if (host > 0 && app.networks.len() > 1) || (bridge > 0 && app.networks.len() > 1) {
        bad(
            "/networks",
            "host and bridge networking may not be combined with other networks".into(),
        );
    }
    if app.networks.is_empty() {
        bad("/networks", "must not be empty".into());
    }

    // Misc.
    for (i, f) in app.fetch.iter().enumerate() {
        if f.uri.is_empty() {
            bad(&format!("/fetch({i})/uri"), "must not be empty".into());
        }
    }
    for (k, e) in &app.env {
        if let EnvValue::Secret(name) = e {
            if !app.secrets.contains_key(name) {
                bad(
                    &format!("/env/{k}"),
                    format!("references an undefined secret named '{name}'"),
                );
            }
        }
    }
    if app.dependencies.contains(&app.id) {
        bad("/dependencies", "an app may not depend on itself".into());
    }
    if app.role.is_empty() {
        bad("/role", "must not be empty".into());
    }

    if v.is_empty() {
        Ok(())
    } else {
        Err(v)
    }
}

fn range_msg(port: i64) -> String {
    format!("got {port}, expected between 0 and {PORT_MAX}")
}

/// Range, protocol and uniqueness rules shared by port definitions and mappings.
fn port_rules<'a>(
    bad: &mut impl FnMut(&str, String),
    path: &str,
    ports: impl Iterator<Item = (i64, &'a str, Option<&'a str>)>,
) {
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let (mut dup_names, mut dup_ports) = (false, false);
    for (i, (port, protocol, name)) in ports.enumerate() {
        if !(0..=PORT_MAX).contains(&port) {
            bad(&format!("{path}({i})/port"), range_msg(port));
        }
        if !PORT_PROTOCOLS.contains(&protocol) {
            bad(
                &format!("{path}({i})/protocol"),
                "Invalid protocol. Only 'udp', 'tcp' and 'udp,tcp' are allowed.".into(),
            );
        }
        if let Some(n) = name {
            dup_names |= !names.insert(n);
        }
        if path == "/portDefinitions" && port != 0 {
            dup_ports |= !numbers.insert(port);
        }
    }
    if dup_names {
        bad(path, "Port names must be unique.".into());
    }
    if dup_ports {
        bad(path, "Ports must be unique.".into());
    }
}
