//! Views of the leading master's `/state` (mesos-http-api.md 4): agents, frameworks, tasks, and
//! the `status` summary.

use super::table::Table;
use super::{items, megabytes, number, quantity, text, yes_no};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Task states after which a task never runs again (mesos-http-api.md, task states).
pub const TERMINAL_STATES: [&str; 8] = [
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

pub fn is_terminal(state: &str) -> bool {
    TERMINAL_STATES.contains(&state)
}

fn resource(value: &Value, group: &str, name: &str) -> f64 {
    value.get(group).map(|r| number(r, name)).unwrap_or(0.0)
}

fn used_of_total(agent_or_sum: &Value, name: &str) -> String {
    let used = resource(agent_or_sum, "used_resources", name);
    let total = resource(agent_or_sum, "resources", name);
    if name == "cpus" {
        format!("{}/{}", quantity(used), quantity(total))
    } else {
        format!("{}/{}", megabytes(used), megabytes(total))
    }
}

pub fn agents_table(state: &Value) -> Table {
    let mut table = Table::new(&["ID", "ADDRESS", "ACTIVE", "CPUS", "MEM", "DISK"]);
    for agent in items(state, "slaves") {
        table.push(vec![
            text(agent, "id"),
            format!("{}:{}", text(agent, "hostname"), text(agent, "port")),
            yes_no(agent, "active"),
            used_of_total(agent, "cpus"),
            used_of_total(agent, "mem"),
            used_of_total(agent, "disk"),
        ]);
    }
    table
}

pub fn frameworks_table(state: &Value) -> Table {
    let mut table = Table::new(&["ID", "NAME", "ACTIVE", "TASKS", "CPUS", "MEM"]);
    for framework in items(state, "frameworks") {
        table.push(vec![
            text(framework, "id"),
            text(framework, "name"),
            yes_no(framework, "active"),
            items(framework, "tasks").len().to_string(),
            quantity(resource(framework, "used_resources", "cpus")),
            megabytes(resource(framework, "used_resources", "mem")),
        ]);
    }
    table
}

/// The tasks the master knows: live and unreachable ones, and with `completed` the completed
/// ones (also of completed frameworks). Each as `/state` writes it.
pub fn tasks(state: &Value, completed: bool) -> Vec<Value> {
    let mut frameworks: Vec<&Value> = items(state, "frameworks").iter().collect();
    if completed {
        frameworks.extend(items(state, "completed_frameworks"));
    }
    let mut lists = vec!["tasks", "unreachable_tasks"];
    if completed {
        lists.push("completed_tasks");
    }
    frameworks
        .iter()
        .flat_map(|f| {
            lists
                .iter()
                .flat_map(move |list| items(f, list).iter().cloned())
        })
        .collect()
}

pub fn tasks_table(state: &Value, tasks: &[Value]) -> Table {
    let frameworks: HashMap<String, String> = items(state, "frameworks")
        .iter()
        .chain(items(state, "completed_frameworks"))
        .map(|f| (text(f, "id"), text(f, "name")))
        .collect();
    let agents: HashMap<String, String> = items(state, "slaves")
        .iter()
        .map(|a| (text(a, "id"), text(a, "hostname")))
        .collect();
    let mut table = Table::new(&["ID", "NAME", "STATE", "FRAMEWORK", "AGENT", "CPUS", "MEM"]);
    for task in tasks {
        let framework_id = text(task, "framework_id");
        let agent_id = text(task, "slave_id");
        table.push(vec![
            text(task, "id"),
            text(task, "name"),
            text(task, "state"),
            frameworks
                .get(&framework_id)
                .cloned()
                .unwrap_or(framework_id),
            agents.get(&agent_id).cloned().unwrap_or(agent_id),
            quantity(resource(task, "resources", "cpus")),
            megabytes(resource(task, "resources", "mem")),
        ]);
    }
    table
}

/// What `status` gathers besides `/state`.
pub struct StatusInputs<'a> {
    /// The leader's `host:port`.
    pub leader_address: &'a str,
    /// The leader's `/flags` document (`None` when it did not answer).
    pub flags: Option<&'a Value>,
    /// Other masters in ZooKeeper as `{"id","address","version"}` (`None`: not known without zk://).
    pub standbys: Option<Vec<Value>>,
    /// Marathon's leader `host:port`, or why it is not known.
    pub marathon: Result<String, String>,
}

/// The `status` document (`--json`), built from the leader's `/state` and `inputs`.
pub fn status_document(state: &Value, inputs: StatusInputs<'_>) -> Value {
    let agents = items(state, "slaves");
    let mut resources = Map::new();
    for name in ["cpus", "mem", "disk"] {
        let used: f64 = agents
            .iter()
            .map(|a| resource(a, "used_resources", name))
            .sum();
        let total: f64 = agents.iter().map(|a| resource(a, "resources", name)).sum();
        resources.insert(name.to_string(), json!({"used": used, "total": total}));
    }
    let running = tasks(state, false)
        .iter()
        .filter(|t| t.get("state").and_then(Value::as_str) == Some("TASK_RUNNING"))
        .count();
    let quorum = inputs
        .flags
        .and_then(|f| f.get("flags").unwrap_or(f).get("quorum"))
        .cloned()
        .unwrap_or(Value::Null);
    let marathon = match inputs.marathon {
        Ok(leader) => json!({"leader": leader}),
        Err(error) => json!({"leader": null, "error": error}),
    };
    json!({
        "leader": {
            "id": state.get("id").cloned().unwrap_or(Value::Null),
            "address": inputs.leader_address,
            "version": state.get("version").cloned().unwrap_or(Value::Null),
        },
        "standbys": inputs.standbys,
        "quorum": quorum,
        "agents": {
            "active": agents.iter().filter(|a| a.get("active").and_then(Value::as_bool) == Some(true)).count(),
            "total": agents.len(),
        },
        "resources": resources,
        "frameworks": items(state, "frameworks").len(),
        "tasks_running": running,
        "marathon": marathon,
    })
}

/// The `status` document as aligned `key: value` lines.
pub fn status_text(doc: &Value) -> String {
    let leader = doc.get("leader").cloned().unwrap_or(Value::Null);
    let standbys = match doc.get("standbys").and_then(Value::as_array) {
        None => "unknown (only ZooKeeper lists them: --master zk://...)".to_string(),
        Some(list) if list.is_empty() => "none".to_string(),
        Some(list) => list
            .iter()
            .map(|s| format!("{} ({})", text(s, "address"), text(s, "id")))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let quorum = match doc.get("quorum") {
        Some(Value::String(q)) => q.clone(),
        Some(Value::Number(q)) => q.to_string(),
        _ => "- (no --quorum: a standalone master)".to_string(),
    };
    let agents = doc.get("agents").cloned().unwrap_or(Value::Null);
    let resources = doc.get("resources").cloned().unwrap_or(Value::Null);
    let used_total = |name: &str| {
        let r = resources.get(name).cloned().unwrap_or(Value::Null);
        if name == "cpus" {
            format!(
                "{}/{}",
                quantity(number(&r, "used")),
                quantity(number(&r, "total"))
            )
        } else {
            format!(
                "{}/{}",
                megabytes(number(&r, "used")),
                megabytes(number(&r, "total"))
            )
        }
    };
    let marathon = doc.get("marathon").cloned().unwrap_or(Value::Null);
    let marathon = match marathon.get("leader").and_then(Value::as_str) {
        Some(leader) => leader.to_string(),
        None => format!("unknown ({})", text(&marathon, "error")),
    };
    let lines = [
        (
            "Leader",
            format!(
                "{} at {} (version {})",
                text(&leader, "id"),
                text(&leader, "address"),
                text(&leader, "version")
            ),
        ),
        ("Standbys", standbys),
        ("Quorum", quorum),
        (
            "Agents",
            format!(
                "{} active / {} total",
                number(&agents, "active"),
                number(&agents, "total")
            ),
        ),
        (
            "Resources",
            format!(
                "cpus {}, mem {}, disk {} (used/total)",
                used_total("cpus"),
                used_total("mem"),
                used_total("disk")
            ),
        ),
        ("Frameworks", text(doc, "frameworks")),
        ("Tasks running", text(doc, "tasks_running")),
        ("Marathon leader", marathon),
    ];
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Value {
        json!({
            "id": "M1", "version": "1.11.0",
            "slaves": [
                {"id": "S0", "hostname": "h1", "port": 5051, "active": true,
                 "resources": {"cpus": 2.0, "mem": 2048.0, "disk": 100.0},
                 "used_resources": {"cpus": 0.2, "mem": 32.0, "disk": 0.0}},
                {"id": "S1", "hostname": "h2", "port": 5051, "active": false, "resources": {"cpus": 1.0, "mem": 1024.0, "disk": 0.0}}
            ],
            "frameworks": [{
                "id": "F1", "name": "marathon", "active": true,
                "used_resources": {"cpus": 0.2, "mem": 32.0},
                "tasks": [
                    {"id": "t1", "name": "hello", "state": "TASK_RUNNING", "framework_id": "F1", "slave_id": "S0", "resources": {"cpus": 0.1, "mem": 16.0}},
                    {"id": "t2", "name": "hello", "state": "TASK_STAGING", "framework_id": "F1", "slave_id": "S0", "resources": {"cpus": 0.1, "mem": 16.0}}
                ],
                "completed_tasks": [{"id": "t0", "name": "hello", "state": "TASK_KILLED", "framework_id": "F1", "slave_id": "S9"}]
            }],
            "completed_frameworks": []
        })
    }

    #[test]
    fn agents_show_used_of_total() {
        let out = agents_table(&state()).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID  ADDRESS  ACTIVE  CPUS   MEM         DISK");
        assert_eq!(
            lines[1],
            "S0  h1:5051  yes     0.2/2  32 MB/2 GB  0 MB/100 MB"
        );
        assert_eq!(
            lines[2],
            "S1  h2:5051  no      0/1    0 MB/1 GB   0 MB/0 MB"
        );
    }

    #[test]
    fn frameworks_count_their_tasks() {
        let out = frameworks_table(&state()).render();
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with("F1  marathon  yes     2      0.2   32 MB"),
            "{out}"
        );
    }

    #[test]
    fn tasks_name_framework_and_agent_and_completed_ones_on_request() {
        let state = state();
        let live = tasks(&state, false);
        assert_eq!(live.len(), 2);
        let all = tasks(&state, true);
        assert_eq!(all.len(), 3);
        let out = tasks_table(&state, &all).render();
        assert!(
            out.contains("t1  hello  TASK_RUNNING  marathon   h1     0.1   16 MB"),
            "{out}"
        );
        // An agent the master no longer lists shows by id.
        assert!(
            out.contains("t0  hello  TASK_KILLED   marathon   S9     0     0 MB"),
            "{out}"
        );
    }

    #[test]
    fn status_sums_the_cluster() {
        let flags = json!({"flags": {"quorum": "2"}});
        let standbys = vec![json!({"id": "M2", "address": "m2:5050", "version": "1.11.0"})];
        let doc = status_document(
            &state(),
            StatusInputs {
                leader_address: "m1:5050",
                flags: Some(&flags),
                standbys: Some(standbys),
                marathon: Ok("m1:8080".into()),
            },
        );
        assert_eq!(doc["agents"], json!({"active": 1, "total": 2}));
        assert_eq!(doc["resources"]["cpus"]["total"], json!(3.0));
        assert_eq!(doc["tasks_running"], json!(1));
        assert_eq!(doc["quorum"], json!("2"));
        let out = status_text(&doc);
        assert!(
            out.contains("Leader:          M1 at m1:5050 (version 1.11.0)"),
            "{out}"
        );
        assert!(out.contains("Standbys:        m2:5050 (M2)"), "{out}");
        assert!(out.contains("Agents:          1 active / 2 total"), "{out}");
        assert!(out.contains("Marathon leader: m1:8080"), "{out}");
    }

    #[test]
    fn status_survives_missing_pieces() {
        let doc = status_document(
            &json!({}),
            StatusInputs {
                leader_address: "m:5050",
                flags: None,
                standbys: None,
                marathon: Err("refused".into()),
            },
        );
        let out = status_text(&doc);
        assert!(out.contains("Standbys:        unknown"), "{out}");
        assert!(out.contains("Marathon leader: unknown (refused)"), "{out}");
        assert!(status_text(&json!(null)).contains("Leader:"));
    }
}
