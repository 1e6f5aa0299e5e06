//! From an app definition and a placement to a Mesos `TaskInfo` (mesos-http-api.md §8.4;
//! marathon-api.md §7 "Task environment", §2 fields).
//!
//! What a task gets: the command (`cmd` through the shell, `args` as argv), the environment
//! Marathon defines (ports, host, ids, resources, labels) with the app's `env` on top, resources
//! tagged with the offer's role, labels, the kill grace period, fetch URIs, and for agent-run
//! health checks (`COMMAND`, `MESOS_HTTP`, `MESOS_TCP`) a Mesos `health_check`. Containers
//! (`container.docker`) are not translated yet: tasks run with the command executor.

use marathon_model::{AppDefinition, EnvValue, HealthProtocol};
use proto::{
    AgentId, CommandInfo, DurationInfo, Environment, KillPolicy, Label, Labels, Resource, TaskId,
    TaskInfo, Variable,
};
use proto::{AllocationInfo, Range, Ranges, Scalar, ValueType};
use serde_json::{json, Value};

/// Where and how one instance is placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub task_id: String,
    pub agent_id: String,
    pub hostname: String,
    pub host_ports: Vec<u64>,
    pub role: String,
}

/// `PORT_<NAME>` / `MARATHON_APP_LABEL_<NAME>`: upper case, anything but `[A-Z0-9_]` becomes `_`.
pub fn env_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Marathon's number formatting for resource variables (`0.1`, `16.0`).
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The task's environment (§7 "Task environment"), app `env` last so it wins on a clash.
pub fn task_env(def: &AppDefinition, p: &Placement) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let ports: Vec<String> = p.host_ports.iter().map(|x| x.to_string()).collect();
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.clone()));
        if let Some(pd) = def.port_definitions.get(i) {
            if pd.port != 0 {
                env.push((format!("PORT_{}", pd.port), port.clone()));
            }
            if let Some(name) = &pd.name {
                env.push((format!("PORT_{}", env_name(name)), port.clone()));
            }
        }
    }
    if let Some(first) = ports.first() {
        env.push(("PORT".into(), first.clone()));
    }
    if !ports.is_empty() {
        env.push(("PORTS".into(), ports.join(",")));
    }
    env.push(("HOST".into(), p.hostname.clone()));
    env.push(("MESOS_TASK_ID".into(), p.task_id.clone()));
    env.push(("MARATHON_APP_ID".into(), def.id.to_string()));
    if let Some(v) = def.version {
        env.push(("MARATHON_APP_VERSION".into(), v.to_string()));
    }
    env.push(("MARATHON_APP_RESOURCE_CPUS".into(), num(def.cpus)));
    env.push(("MARATHON_APP_RESOURCE_MEM".into(), num(def.mem)));
    env.push(("MARATHON_APP_RESOURCE_DISK".into(), num(def.disk)));
    env.push(("MARATHON_APP_RESOURCE_GPUS".into(), def.gpus.to_string()));
    let label_names: Vec<String> = def.labels.keys().map(|k| env_name(k)).collect();
    env.push(("MARATHON_APP_LABELS".into(), label_names.join(" ")));
    for (k, v) in &def.labels {
        env.push((format!("MARATHON_APP_LABEL_{}", env_name(k)), v.clone()));
    }
    for (k, v) in &def.env {
        if let EnvValue::Value(v) = v {
            env.retain(|(name, _)| name != k);
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

fn scalar(name: &str, value: f64, role: &str) -> Resource {
    Resource {
        name: name.into(),
        kind: ValueType::Scalar,
        scalar: Some(Scalar {
            value: (value * 1000.0).round() / 1000.0,
        }),
        ranges: None,
        set: None,
        role: None,
        allocation_info: Some(AllocationInfo {
            role: Some(role.to_string()),
        }),
        reservations: None,
    }
}

/// The resources a task of `def` takes, with the offer's role (§8.4: "Tasks must use resources
/// from the offer, with the offer's `allocation_info`").
pub fn task_resources(def: &AppDefinition, host_ports: &[u64], role: &str) -> Vec<Resource> {
    let mut out = vec![scalar("cpus", def.cpus, role), scalar("mem", def.mem, role)];
    if def.disk > 0.0 {
        out.push(scalar("disk", def.disk, role));
    }
    if def.gpus > 0 {
        out.push(scalar("gpus", def.gpus as f64, role));
    }
    if !host_ports.is_empty() {
        out.push(Resource {
            name: "ports".into(),
            kind: ValueType::Ranges,
            scalar: None,
            ranges: Some(Ranges {
                range: host_ports
                    .iter()
                    .map(|p| Range { begin: *p, end: *p })
                    .collect(),
            }),
            set: None,
            role: None,
            allocation_info: Some(AllocationInfo {
                role: Some(role.to_string()),
            }),
            reservations: None,
        });
    }
    out
}

/// The Mesos `health_check` for the first agent-run check of the app, if any (Mesos runs one).
pub fn mesos_health_check(def: &AppDefinition, host_ports: &[u64]) -> Option<Value> {
    let hc = def
        .health_checks
        .iter()
        .find(|h| !h.protocol.is_marathon_level())?;
    let port = hc.port.map(|p| p as u64).or_else(|| {
        hc.port_index
            .and_then(|i| host_ports.get(i.max(0) as usize).copied())
    });
    let mut v = json!({
        "delay_seconds": hc.delay_seconds as f64,
        "interval_seconds": hc.interval_seconds as f64,
        "timeout_seconds": hc.timeout_seconds as f64,
        "consecutive_failures": hc.max_consecutive_failures,
        "grace_period_seconds": hc.grace_period_seconds as f64,
    });
    let m = v.as_object_mut()?;
    match hc.protocol {
        HealthProtocol::Command => {
            m.insert("type".into(), json!("COMMAND"));
            m.insert(
                "command".into(),
                json!({"shell": true, "value": hc.command.clone().unwrap_or_default()}),
            );
        }
        HealthProtocol::MesosHttp | HealthProtocol::MesosHttps => {
            // Mesos has one HTTP type; HTTPS is its `scheme` (mesos-http-api.md 8.4).
            let scheme = if hc.protocol == HealthProtocol::MesosHttps {
                "https"
            } else {
                "http"
            };
            m.insert("type".into(), json!("HTTP"));
            m.insert(
                "http".into(),
                json!({"scheme": scheme, "port": port?, "path": hc.path.clone().unwrap_or_else(|| "/".into())}),
            );
        }
        HealthProtocol::MesosTcp => {
            m.insert("type".into(), json!("TCP"));
            m.insert("tcp".into(), json!({"port": port?}));
        }
        _ => return None,
    }
    Some(v)
}

/// The `TaskInfo` for one placed instance.
pub fn build_task(def: &AppDefinition, p: &Placement) -> TaskInfo {
    let variables = task_env(def, p)
        .into_iter()
        .map(|(name, value)| Variable {
            name,
            value: Some(value),
            kind: None,
        })
        .collect();
    let (shell, value, arguments) = match (&def.cmd, def.args.is_empty()) {
        (Some(cmd), _) => (true, Some(cmd.clone()), vec![]),
        (None, false) => (false, def.args.first().cloned(), def.args.clone()),
        (None, true) => (true, None, vec![]),
    };
    let uris = def
        .fetch
        .iter()
        .map(|f| {
            let mut u = json!({"value": f.uri, "extract": f.extract, "executable": f.executable, "cache": f.cache});
            if let (Some(dest), Some(m)) = (&f.dest_path, u.as_object_mut()) {
                m.insert("output_file".into(), json!(dest));
            }
            u
        })
        .collect();
    let command = CommandInfo {
        shell,
        value,
        arguments,
        uris,
        environment: Some(Environment { variables }),
        user: def.user.clone(),
    };
    let labels = (!def.labels.is_empty()).then(|| Labels {
        labels: def
            .labels
            .iter()
            .map(|(k, v)| Label {
                key: k.clone(),
                value: Some(v.clone()),
            })
            .collect(),
    });
    let kill_policy = def.task_kill_grace_period_seconds.map(|s| KillPolicy {
        grace_period: Some(DurationInfo::from_secs_f64(s.max(0) as f64)),
    });
    TaskInfo {
        name: def.id.safe_id(),
        task_id: TaskId::new(p.task_id.clone()),
        agent_id: AgentId::new(p.agent_id.clone()),
        resources: task_resources(def, &p.host_ports, &p.role),
        command: Some(command),
        executor: None,
        kill_policy,
        labels,
        data: None,
        container: None,
        health_check: mesos_health_check(def, &p.host_ports),
        check: None,
        discovery: None,
        max_completion_time: None,
        limits: None,
    }
}
