//! Views of Marathon's documents (marathon-api.md 3 and 5): apps, one app with its tasks,
//! deployments.

use super::table::Table;
use super::{items, megabytes, number, quantity, text};
use serde_json::Value;

/// Health of an app's instances: `healthy/running` when it has health checks, else `-`.
fn healthy(app: &Value) -> String {
    if items(app, "healthChecks").is_empty() {
        "-".to_string()
    } else {
        format!(
            "{}/{}",
            number(app, "tasksHealthy"),
            number(app, "tasksRunning")
        )
    }
}

fn deployment_ids(app: &Value) -> String {
    let ids: Vec<String> = items(app, "deployments")
        .iter()
        .map(|d| text(d, "id"))
        .collect();
    if ids.is_empty() {
        "-".to_string()
    } else {
        ids.join(",")
    }
}

/// `GET /v2/apps` (`{"apps":[...]}`) as a table.
pub fn apps_table(apps: &Value) -> Table {
    let mut table = Table::new(&["ID", "RUNNING", "HEALTHY", "CPUS", "MEM", "DEPLOYMENTS"]);
    for app in items(apps, "apps") {
        table.push(vec![
            text(app, "id"),
            format!(
                "{}/{}",
                number(app, "tasksRunning"),
                number(app, "instances")
            ),
            healthy(app),
            quantity(number(app, "cpus")),
            megabytes(number(app, "mem")),
            deployment_ids(app),
        ]);
    }
    table
}

/// The health column of a task: from its `healthCheckResults` (`-` without checks).
fn task_health(task: &Value) -> String {
    let results = items(task, "healthCheckResults");
    if results.is_empty() {
        return "-".to_string();
    }
    if results
        .iter()
        .all(|r| r.get("alive").and_then(Value::as_bool) == Some(true))
    {
        "healthy".to_string()
    } else {
        "unhealthy".to_string()
    }
}

fn ports(task: &Value) -> String {
    let ports: Vec<String> = items(task, "ports").iter().map(|p| p.to_string()).collect();
    if ports.is_empty() {
        "-".to_string()
    } else {
        ports.join(",")
    }
}

/// `GET /v2/apps/{id}` (`{"app":{...}}`): the app's fields, then its tasks.
pub fn app_details(doc: &Value) -> String {
    let app = doc.get("app").unwrap_or(doc);
    let command = match app.get("cmd").and_then(Value::as_str) {
        Some(cmd) => cmd.to_string(),
        None => {
            let args: Vec<String> = items(app, "args")
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| a.to_string())
                })
                .collect();
            if args.is_empty() {
                "-".to_string()
            } else {
                args.join(" ")
            }
        }
    };
    let mut fields = vec![
        ("ID", text(app, "id")),
        ("Command", command),
        (
            "Instances",
            format!(
                "{} running, {} staged, {} wanted",
                number(app, "tasksRunning"),
                number(app, "tasksStaged"),
                number(app, "instances")
            ),
        ),
        ("Healthy", healthy(app)),
        (
            "Resources",
            format!(
                "cpus {}, mem {}, disk {}",
                quantity(number(app, "cpus")),
                megabytes(number(app, "mem")),
                megabytes(number(app, "disk"))
            ),
        ),
        ("Version", text(app, "version")),
        ("Deployments", deployment_ids(app)),
    ];
    if let Some(failure) = app.get("lastTaskFailure").filter(|f| f.is_object()) {
        fields.push((
            "Last failure",
            format!(
                "{} {} at {}: {}",
                text(failure, "taskId"),
                text(failure, "state"),
                text(failure, "timestamp"),
                text(failure, "message")
            ),
        ));
    }
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out: String = fields
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect();
    let mut tasks = Table::new(&["TASK", "HOST", "PORTS", "STATE", "HEALTH", "STARTED"]);
    for task in items(app, "tasks") {
        tasks.push(vec![
            text(task, "id"),
            text(task, "host"),
            ports(task),
            text(task, "state"),
            task_health(task),
            text(task, "startedAt"),
        ]);
    }
    out.push('\n');
    if tasks.is_empty() {
        out.push_str("No tasks.\n");
    } else {
        out.push_str(&tasks.render());
    }
    out
}

/// `step 2/2 ScaleApplication /hello` parts of a deployment.
pub fn current_actions(deployment: &Value) -> String {
    let actions: Vec<String> = items(deployment, "currentActions")
        .iter()
        .map(|a| format!("{} {}", text(a, "action"), text(a, "app")))
        .collect();
    if actions.is_empty() {
        "-".to_string()
    } else {
        actions.join(", ")
    }
}

/// `GET /v2/deployments` (an array) as a table.
pub fn deployments_table(deployments: &Value) -> Table {
    let mut table = Table::new(&["ID", "APPS", "STEP", "CURRENT ACTIONS", "VERSION"]);
    for deployment in deployments.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let apps: Vec<String> = items(deployment, "affectedApps")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        table.push(vec![
            text(deployment, "id"),
            if apps.is_empty() {
                "-".to_string()
            } else {
                apps.join(",")
            },
            format!(
                "{}/{}",
                number(deployment, "currentStep"),
                number(deployment, "totalSteps")
            ),
            current_actions(deployment),
            text(deployment, "version"),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> Value {
        json!({"id": "/hello", "cmd": "echo hello; sleep 600", "instances": 3, "cpus": 0.1, "mem": 16, "disk": 0,
               "tasksRunning": 2, "tasksStaged": 1, "tasksHealthy": 0, "version": "2026-01-01T00:00:00.000Z",
               "deployments": [{"id": "d1"}],
               "tasks": [{"id": "hello.instance-1._app.1", "host": "h1", "ports": [31000, 31001], "state": "TASK_RUNNING",
                          "healthCheckResults": [{"alive": true}], "startedAt": "2026-01-01T00:00:01.000Z"},
                         {"id": "hello.instance-2._app.1", "host": "h1", "ports": [], "state": "TASK_STAGING"}]})
    }

    #[test]
    fn apps_show_running_of_wanted() {
        let out = apps_table(&json!({"apps": [app(), {"id": "/idle", "instances": 0, "healthChecks": [{}], "deployments": []}]})).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID      RUNNING  HEALTHY  CPUS  MEM    DEPLOYMENTS"
        );
        assert_eq!(lines[1], "/hello  2/3      -        0.1   16 MB  d1");
        assert_eq!(lines[2], "/idle   0/0      0/0      0     0 MB   -");
        assert_eq!(apps_table(&json!({})).len(), 0);
    }

    #[test]
    fn an_app_shows_its_fields_and_tasks() {
        let out = app_details(&json!({"app": app()}));
        assert!(out.contains("ID:          /hello\n"), "{out}");
        assert!(
            out.contains("Instances:   2 running, 1 staged, 3 wanted\n"),
            "{out}"
        );
        assert!(out.contains("hello.instance-1._app.1  h1    31000,31001  TASK_RUNNING  healthy  2026-01-01T00:00:01.000Z"), "{out}");
        assert!(
            out.contains("hello.instance-2._app.1  h1    -            TASK_STAGING  -        -"),
            "{out}"
        );
        assert!(app_details(&json!({"app": {"id": "/x"}})).contains("No tasks."));
    }

    #[test]
    fn deployments_show_their_step() {
        let deployments = json!([{"id": "d1", "affectedApps": ["/hello"], "currentStep": 2, "totalSteps": 2,
            "currentActions": [{"action": "ScaleApplication", "app": "/hello"}], "version": "v"}]);
        let out = deployments_table(&deployments).render();
        assert_eq!(
            out.lines().nth(1).unwrap(),
            "d1  /hello  2/2   ScaleApplication /hello  v"
        );
        assert_eq!(deployments_table(&json!({"not": "an array"})).len(), 0);
    }
}
