//! JSON views of the master's books: the classic `/state` family (flattened resources, `slave_*`
//! names, mesos-http-api.md section 4) and the v1 operator objects (resource arrays, `agent_*`
//! names, section 10). Internal state converts to wire JSON only here.

use crate::core::{Agent, Core, Framework, OfferRecord, Task};
use crate::server::Master;
use proto::{flatten_attributes, ResourceBag, TaskState};
use serde_json::{json, Map, Value};

fn flat(bag: &ResourceBag) -> Value {
    Value::Object(bag.flatten())
}

fn labels(task: &Task) -> Value {
    task.info
        .labels
        .as_ref()
        .map(|l| serde_json::to_value(&l.labels).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!([]))
}

pub fn task(task: &Task) -> Value {
    let mut object = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": task.agent_id.value,
        "state": task.state.name(),
        "resources": flat(&task.resources),
        "role": task.role,
        "statuses": task.statuses.iter().map(|s| {
            let mut status = json!({"state": s.state.name(), "timestamp": s.timestamp});
            if let Some(healthy) = s.healthy { status["healthy"] = json!(healthy); }
            status
        }).collect::<Vec<_>>(),
        "labels": labels(task),
    });
    for (key, value) in [
        ("discovery", &task.info.discovery),
        ("container", &task.info.container),
        ("health_check", &task.info.health_check),
    ] {
        if let Some(value) = value {
            object[key] = value.clone();
        }
    }
    if let Some(user) = task.info.command.as_ref().and_then(|c| c.user.clone()) {
        object["user"] = json!(user);
    }
    object
}

fn offer(offer: &OfferRecord) -> Value {
    json!({
        "id": offer.id.value,
        "framework_id": offer.framework_id.value,
        "slave_id": offer.agent_id.value,
        "resources": flat(&offer.resources),
    })
}

fn offered(core: &Core, framework: &Framework) -> ResourceBag {
    let mut bag = ResourceBag::new();
    for id in &framework.offers {
        if let Some(o) = core.offers.get(id) {
            let _ = bag.add(&o.resources);
        }
    }
    bag
}

pub fn framework(core: &Core, framework: &Framework) -> Value {
    let used = framework.used();
    let offered = offered(core, framework);
    let mut total = used.clone();
    let _ = total.add(&offered);
    let info = &framework.info;
    json!({
        "id": framework.id.value,
        "name": info.name,
        "user": info.user,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "principal": info.principal,
        "role": framework.role(),
        "roles": info.effective_roles(),
        "capabilities": info.capabilities.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "failover_timeout": info.failover_timeout,
        "checkpoint": info.checkpoint,
        "registered_time": framework.registered_time,
        "reregistered_time": framework.reregistered_time.unwrap_or(framework.registered_time),
        "unregistered_time": framework.unregistered_time.unwrap_or(0.0),
        "resources": flat(&total),
        "used_resources": flat(&used),
        "offered_resources": flat(&offered),
        "tasks": framework.tasks.values().map(task).collect::<Vec<_>>(),
        "unreachable_tasks": framework.unreachable_tasks.values().map(task).collect::<Vec<_>>(),
        "completed_tasks": framework.completed_tasks.iter().rev().map(task).collect::<Vec<_>>(),
        "offers": framework.offers.iter().filter_map(|id| core.offers.get(id)).map(offer).collect::<Vec<_>>(),
        "executors": [],
        "labels": info.labels.as_ref().map(|l| serde_json::to_value(&l.labels).unwrap_or(Value::Null)).unwrap_or_else(|| json!([])),
    })
}

pub fn agent(agent: &Agent) -> Value {
    let port = agent.info.port;
    json!({
        "id": agent.id.value,
        "hostname": agent.info.hostname,
        "port": port,
        "attributes": Value::Object(flatten_attributes(&agent.info.attributes)),
        "pid": agent.pid(),
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "resources": flat(&agent.total),
        "used_resources": flat(&agent.used),
        "offered_resources": flat(&agent.offered),
        "reserved_resources": {},
        "unreserved_resources": flat(&agent.total),
        "active": agent.active,
        "deactivated": false,
        "connected": agent.connected,
        "version": agent.version,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT", "TASK_KILLING_STATE"],
    })
}

fn build_fields(master: &Master) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("version".into(), json!(proto::MESOS_VERSION));
    fields.insert("build_date".into(), json!("tepui"));
    fields.insert("build_time".into(), json!(0.0));
    fields.insert("build_user".into(), json!("tepui"));
    fields.insert(
        "git_sha".into(),
        json!(format!("tepui-{}", proto::TEPUI_VERSION)),
    );
    fields.insert("start_time".into(), json!(master.start_time));
    fields
}

pub fn state(master: &Master, core: &Core) -> Value {
    let mut state = build_fields(master);
    let elected = *master
        .elected_time
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(elected) = elected {
        state.insert("elected_time".into(), json!(elected));
    }
    let leader_info = match master.leadership() {
        crate::server::Leadership::Leading | crate::server::Leadership::Recovering => {
            Some(master.info.clone())
        }
        crate::server::Leadership::Following(leader) => leader.and_then(|l| l.info),
    };
    let active = core.agents.values().filter(|a| a.active).count();
    let extra = json!({
        "id": master.info.id,
        "pid": master.info.pid,
        "hostname": master.info.hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": active,
        "deactivated_slaves": core.agents.len() - active,
        "unreachable_slaves": core.unreachable_agents.len(),
        "leader": leader_info.as_ref().map(|l| l.pid.clone()),
        "leader_info": leader_info,
        "cluster": master.config.cluster,
        "log_dir": Value::Null,
        "flags": master.config.flags,
        "slaves": core.agents.values().map(agent).collect::<Vec<_>>(),
        "recovered_slaves": core.recovered_agents.values().map(|(info, _)| json!({
            "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
            "hostname": info.hostname, "port": info.port,
            "attributes": Value::Object(flatten_attributes(&info.attributes)),
        })).collect::<Vec<_>>(),
        "frameworks": core.frameworks.values().map(|f| framework(core, f)).collect::<Vec<_>>(),
        "completed_frameworks": core.completed_frameworks.iter().map(|f| framework(core, f)).collect::<Vec<_>>(),
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    if let Value::Object(extra) = extra {
        state.extend(extra);
    }
    if master.config.cluster.is_none() {
        state.remove("cluster");
    }
    Value::Object(state)
}

/// Counts of a framework's tasks per state, for `/state-summary`.
pub fn task_counts<'a>(tasks: impl Iterator<Item = &'a Task>) -> Value {
    let mut counts: Map<String, Value> = Map::new();
    for state in TaskState::ALL {
        counts.insert(state.name().to_string(), json!(0));
    }
    for task in tasks {
        let entry = counts
            .entry(task.state.name().to_string())
            .or_insert(json!(0));
        *entry = json!(entry.as_u64().unwrap_or(0) + 1);
    }
    Value::Object(counts)
}

pub fn version_json() -> Value {
    json!({
        "version": proto::MESOS_VERSION,
        "build_date": "tepui",
        "build_time": 0.0,
        "build_user": "tepui",
        "git_sha": format!("tepui-{}", proto::TEPUI_VERSION),
        "tepui_version": proto::TEPUI_VERSION,
    })
}

// ---- v1 operator objects -------------------------------------------------------------------

fn nanos(secs: f64) -> Value {
    json!({"nanoseconds": (secs * 1e9) as i64})
}

pub fn v1_task(task: &Task) -> Value {
    let mut object = json!({
        "name": task.info.name,
        "task_id": {"value": task.info.task_id.value},
        "framework_id": {"value": task.framework_id.value},
        "agent_id": {"value": task.agent_id.value},
        "state": task.state.name(),
        "resources": task.resources.to_resources(Some(&task.role)),
        "statuses": task.latest_status.iter().collect::<Vec<_>>(),
    });
    if let Some(executor) = &task.executor_id {
        object["executor_id"] = json!({"value": executor.value});
    }
    if let Some(labels) = &task.info.labels {
        object["labels"] = json!(labels);
    }
    object
}

pub fn v1_agent(agent: &Agent) -> Value {
    json!({
        "agent_info": {
            "id": {"value": agent.id.value},
            "hostname": agent.info.hostname,
            "port": agent.info.port,
            "resources": agent.total.to_resources(None),
            "attributes": agent.info.attributes,
        },
        "active": agent.active,
        "deactivated": false,
        "version": agent.version,
        "pid": agent.pid(),
        "registered_time": nanos(agent.registered_time),
        "total_resources": agent.total.to_resources(None),
        "allocated_resources": agent.used.to_resources(None),
        "offered_resources": agent.offered.to_resources(None),
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "HIERARCHICAL_ROLE"}, {"type": "RESERVATION_REFINEMENT"}],
    })
}

pub fn v1_framework(core: &Core, framework: &Framework) -> Value {
    let mut object = json!({
        "framework_info": framework.info,
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": nanos(framework.registered_time),
        "allocated_resources": framework.used().to_resources(Some(&framework.role())),
        "offered_resources": offered(core, framework).to_resources(Some(&framework.role())),
    });
    if let Some(t) = framework.reregistered_time {
        object["reregistered_time"] = nanos(t);
    }
    object
}
