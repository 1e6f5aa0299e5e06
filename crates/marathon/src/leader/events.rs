//! `/v2/events` payloads (marathon-api.md §6): every payload carries `eventType` and `timestamp`
//! and is one line of JSON; deployment events carry the [compat] plan with `original`/`target`
//! groups (the Python client's event parser needs them).

use super::state::{format_ts, now_ms, State};
use marathon_api::service::MarathonEvent;
use marathon_planner::DeploymentPlan;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// An event of `event_type` with `fields` (an object) plus `eventType` and `timestamp`.
pub fn simple(event_type: &str, fields: Value) -> MarathonEvent {
    let mut m = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("eventType".into(), json!(event_type));
    m.insert("timestamp".into(), json!(format_ts(now_ms().max(0) as u64)));
    let payload: Arc<str> = Value::Object(m).to_string().into();
    MarathonEvent {
        event_type: event_type.to_string(),
        payload,
    }
}

pub fn scheduler_registered(name: &str, framework_id: &str, master: &str) -> MarathonEvent {
    if name == "scheduler_registered_event" {
        simple(name, json!({"frameworkId": framework_id, "master": master}))
    } else {
        simple(name, json!({"master": master}))
    }
}

/// The event `plan` [compat]: `{"id","version","steps","original","target"}`.
pub fn plan_with_groups(plan: &DeploymentPlan, original: Value, target: Value) -> Value {
    let mut v = marathon_planner::json::plan_json(plan, &format_ts);
    if let Value::Object(m) = &mut v {
        m.insert("original".into(), original);
        m.insert("target".into(), target);
    }
    v
}

/// `deployment_info` / `deployment_step_success` for 1-based `step`.
pub fn deployment_step(
    state: &State,
    event_type: &str,
    id: &str,
    step: usize,
) -> Option<MarathonEvent> {
    let plan = state.deployment_groups.get(id)?;
    let actions = plan
        .get("steps")
        .and_then(|s| s.get(step.checked_sub(1)?))
        .and_then(|s| s.get("actions"))
        .cloned();
    Some(simple(
        event_type,
        json!({"plan": plan, "currentStep": {"actions": actions.unwrap_or_else(|| json!([]))}}),
    ))
}

/// `deployment_success` / `deployment_failed`.
pub fn deployment_end(
    state: &State,
    event_type: &str,
    id: &str,
    reason: Option<String>,
) -> MarathonEvent {
    let plan = state
        .deployment_groups
        .get(id)
        .cloned()
        .unwrap_or_else(|| json!({"id": id, "steps": []}));
    let mut fields = json!({"id": id, "plan": plan});
    if let (Some(reason), Some(m)) = (reason, fields.as_object_mut()) {
        m.insert("reason".into(), json!(reason));
    }
    simple(event_type, fields)
}

/// Marathon's instance condition for a Mesos task state (`TASK_RUNNING` → `Running`).
pub fn condition(state: &str) -> String {
    state
        .trim_start_matches("TASK_")
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// `status_update_event` for a task (§6).
#[allow(clippy::too_many_arguments)]
pub fn status_update(
    agent_id: &str,
    task_id: &str,
    state: &str,
    message: &str,
    app_id: &str,
    host: &str,
    ips: &[String],
    ports: &[u32],
    version: Option<i64>,
) -> MarathonEvent {
    let ips: Vec<Value> = ips
        .iter()
        .map(|ip| json!(marathon_model::IpAddress::new(ip)))
        .collect();
    let mut fields = json!({"slaveId": agent_id, "taskId": task_id, "taskStatus": state, "message": message,
        "appId": app_id, "host": host, "ipAddresses": ips, "ports": ports});
    if let (Some(v), Some(m)) = (version, fields.as_object_mut()) {
        m.insert("version".into(), json!(format_ts(v.max(0) as u64)));
    }
    simple("status_update_event", fields)
}

/// `instance_changed_event` (§6).
pub fn instance_changed(
    instance_id: &str,
    state: &str,
    app_id: &str,
    agent_id: &str,
    host: &str,
    version: Option<i64>,
) -> MarathonEvent {
    let mut fields = json!({"instanceId": instance_id, "condition": condition(state), "runSpecId": app_id,
        "agentId": agent_id, "host": host});
    if let (Some(v), Some(m)) = (version, fields.as_object_mut()) {
        m.insert("runSpecVersion".into(), json!(format_ts(v.max(0) as u64)));
    }
    simple("instance_changed_event", fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_one_line_with_type_and_timestamp() {
        let e = simple("app_terminated_event", json!({"appId": "/x"}));
        assert!(!e.payload.contains('\n'));
        let v: Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["eventType"], "app_terminated_event");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(condition("TASK_RUNNING"), "Running");
        assert_eq!(condition("TASK_GONE_BY_OPERATOR"), "GoneByOperator");
    }
}
