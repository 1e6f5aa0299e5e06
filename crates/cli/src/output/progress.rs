//! A deployment's progress (marathon-api.md 5 and 7) as lines and JSON objects, and the check
//! that an app reached what its deployment aimed at once the deployment is no longer listed.

use super::{items, number, text};
use serde_json::{json, Value};

/// Characters of a deployment id shown in progress lines.
const SHORT_ID_CHARS: usize = 8;

/// One affected app as seen at one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct AppProgress {
    pub id: String,
    /// `None`: the app does not exist (any more).
    pub running_wanted: Option<(u64, u64)>,
}

impl AppProgress {
    /// From `GET /v2/apps/{id}` (`None` when it answered 404).
    pub fn of(id: &str, doc: Option<&Value>) -> AppProgress {
        let running_wanted = doc.map(|d| {
            let app = d.get("app").unwrap_or(d);
            (
                number(app, "tasksRunning") as u64,
                number(app, "instances") as u64,
            )
        });
        AppProgress {
            id: id.to_string(),
            running_wanted,
        }
    }
}

/// What one poll of a deployment shows; a line is printed whenever it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub step: u64,
    pub total_steps: u64,
    /// `(action, app)` of the current step.
    pub actions: Vec<(String, String)>,
    pub apps: Vec<AppProgress>,
}

impl Progress {
    pub fn of(deployment: &Value, apps: Vec<AppProgress>) -> Progress {
        Progress {
            step: number(deployment, "currentStep") as u64,
            total_steps: number(deployment, "totalSteps") as u64,
            actions: items(deployment, "currentActions")
                .iter()
                .map(|a| (text(a, "action"), text(a, "app")))
                .collect(),
            apps,
        }
    }
}

/// The apps a deployment touches (`affectedApps`).
pub fn affected_apps(deployment: &Value) -> Vec<String> {
    items(deployment, "affectedApps")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

pub fn short_id(id: &str) -> String {
    match id.char_indices().nth(SHORT_ID_CHARS) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_string(),
    }
}

/// `deployment 5f2c0a1b…: step 1/1 ScaleApplication /hello — 2/3 running`.
pub fn progress_line(id: &str, progress: &Progress) -> String {
    let actions: Vec<String> = progress
        .actions
        .iter()
        .map(|(action, app)| format!("{action} {app}"))
        .collect();
    let apps: Vec<String> = progress
        .apps
        .iter()
        .map(|a| match a.running_wanted {
            Some((running, wanted)) if progress.apps.len() == 1 => {
                format!("{running}/{wanted} running")
            }
            Some((running, wanted)) => format!("{} {running}/{wanted} running", a.id),
            None => format!("{} gone", a.id),
        })
        .collect();
    let mut line = format!(
        "deployment {}: step {}/{}",
        short_id(id),
        progress.step,
        progress.total_steps
    );
    if !actions.is_empty() {
        line.push(' ');
        line.push_str(&actions.join(", "));
    }
    if !apps.is_empty() {
        line.push_str(" — ");
        line.push_str(&apps.join(", "));
    }
    line
}

/// `line` cut to `columns` characters, the last one an ellipsis when something was cut.
pub fn fit_to_width(line: &str, columns: usize) -> String {
    if line.chars().count() <= columns {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(columns.saturating_sub(1)).collect();
    if columns > 0 {
        cut.push('…');
    }
    cut
}

/// The same as one JSON object (`--json`).
pub fn progress_json(id: &str, progress: &Progress) -> Value {
    json!({
        "deployment": id,
        "status": "running",
        "currentStep": progress.step,
        "totalSteps": progress.total_steps,
        "currentActions": progress.actions.iter().map(|(action, app)| json!({"action": action, "app": app})).collect::<Vec<_>>(),
        "apps": progress.apps.iter().map(|a| match a.running_wanted {
            Some((running, wanted)) => json!({"id": a.id, "tasksRunning": running, "instances": wanted}),
            None => json!({"id": a.id, "exists": false}),
        }).collect::<Vec<_>>(),
    })
}

/// What a deployment should leave an app at.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// The app runs `instances` (when known; else as many as it wants).
    Running { app: String, instances: Option<u64> },
    /// The app is gone (removed).
    Gone { app: String },
}

impl Goal {
    pub fn app(&self) -> &str {
        match self {
            Goal::Running { app, .. } | Goal::Gone { app } => app,
        }
    }

    /// The goals a deployment implies for its apps: gone for a `StopApplication`, else running.
    pub fn of_deployment(deployment: &Value) -> Vec<Goal> {
        let stopped: Vec<String> = items(deployment, "steps")
            .iter()
            .flat_map(|s| items(s, "actions"))
            .filter(|a| a.get("action").and_then(Value::as_str) == Some("StopApplication"))
            .map(|a| text(a, "app"))
            .collect();
        affected_apps(deployment)
            .into_iter()
            .map(|app| {
                if stopped.contains(&app) {
                    Goal::Gone { app }
                } else {
                    Goal::Running {
                        app,
                        instances: None,
                    }
                }
            })
            .collect()
    }

    /// A running goal without a known target takes the instances its app wants in `apps`.
    pub fn with_target_of(self, apps: &[AppProgress]) -> Goal {
        match self {
            Goal::Running {
                app,
                instances: None,
            } => {
                let instances = apps
                    .iter()
                    .find(|a| a.id == app)
                    .and_then(|a| a.running_wanted)
                    .map(|(_, wanted)| wanted);
                Goal::Running { app, instances }
            }
            other => other,
        }
    }

    /// Whether `now` (the app once the deployment ended) meets the goal; else why not.
    pub fn check(&self, now: &AppProgress) -> Result<(), String> {
        match (self, now.running_wanted) {
            (Goal::Gone { .. }, None) => Ok(()),
            (Goal::Gone { app }, Some((running, _))) => {
                Err(format!("{app} still exists ({running} running)"))
            }
            (Goal::Running { app, .. }, None) => Err(format!("{app} no longer exists")),
            (Goal::Running { app, instances }, Some((running, wanted))) => {
                let target = instances.unwrap_or(wanted);
                if wanted != target {
                    Err(format!("{app} wants {wanted} instances, not {target}"))
                } else if running != target {
                    Err(format!("{app} has {running}/{target} running"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// `deployment <id> finished in 3.2 s`.
pub fn finished_line(id: &str, seconds: f64) -> String {
    format!("deployment {id} finished in {seconds:.1} s")
}

pub fn finished_json(id: &str, seconds: f64) -> Value {
    json!({"deployment": id, "status": "finished", "seconds": (seconds * 10.0).round() / 10.0})
}

pub fn failed_json(id: &str, reason: &str) -> Value {
    json!({"deployment": id, "status": "failed", "message": reason})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"id": "5f2c0a1b-0000-4000-8000-000000000000", "affectedApps": ["/hello"], "currentStep": 1, "totalSteps": 1,
               "steps": [{"actions": [{"action": "ScaleApplication", "app": "/hello"}]}],
               "currentActions": [{"action": "ScaleApplication", "app": "/hello", "readinessCheckResults": []}]})
    }

    #[test]
    fn a_line_names_step_actions_and_counts() {
        let app = json!({"app": {"id": "/hello", "tasksRunning": 2, "instances": 3}});
        let progress = Progress::of(&deployment(), vec![AppProgress::of("/hello", Some(&app))]);
        let id = "5f2c0a1b-0000-4000-8000-000000000000";
        assert_eq!(
            progress_line(id, &progress),
            "deployment 5f2c0a1b…: step 1/1 ScaleApplication /hello — 2/3 running"
        );
        let doc = progress_json(id, &progress);
        assert_eq!(doc["apps"][0]["tasksRunning"], json!(2));
        assert_eq!(
            doc["currentActions"][0]["action"],
            json!("ScaleApplication")
        );
        let two = Progress {
            apps: vec![
                AppProgress::of("/a", None),
                AppProgress::of("/b", Some(&json!({"tasksRunning": 1, "instances": 1}))),
            ],
            ..progress
        };
        assert!(
            progress_line(id, &two).ends_with("— /a gone, /b 1/1 running"),
            "{}",
            progress_line(id, &two)
        );
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn goals_come_from_the_steps() {
        let stop = json!({"affectedApps": ["/x", "/y"], "steps": [{"actions": [{"action": "StopApplication", "app": "/x"}]},
                                                                {"actions": [{"action": "ScaleApplication", "app": "/y"}]}]});
        assert_eq!(
            Goal::of_deployment(&stop),
            vec![
                Goal::Gone { app: "/x".into() },
                Goal::Running {
                    app: "/y".into(),
                    instances: None
                }
            ]
        );
        assert!(Goal::of_deployment(&json!(null)).is_empty());
        let apps = [AppProgress {
            id: "/y".into(),
            running_wanted: Some((0, 5)),
        }];
        assert_eq!(
            Goal::Running {
                app: "/y".into(),
                instances: None
            }
            .with_target_of(&apps),
            Goal::Running {
                app: "/y".into(),
                instances: Some(5)
            }
        );
        assert_eq!(
            Goal::Running {
                app: "/y".into(),
                instances: Some(2)
            }
            .with_target_of(&apps),
            Goal::Running {
                app: "/y".into(),
                instances: Some(2)
            }
        );
        assert_eq!(
            Goal::Running {
                app: "/z".into(),
                instances: None
            }
            .with_target_of(&apps),
            Goal::Running {
                app: "/z".into(),
                instances: None
            }
        );
    }

    #[test]
    fn a_goal_is_met_only_at_its_target() {
        let at = |running, wanted| AppProgress {
            id: "/a".into(),
            running_wanted: Some((running, wanted)),
        };
        let three = Goal::Running {
            app: "/a".into(),
            instances: Some(3),
        };
        assert!(three.check(&at(3, 3)).is_ok());
        assert_eq!(three.check(&at(2, 3)), Err("/a has 2/3 running".into()));
        // Rolled back to 2 instances: the app is settled, but not where the command wanted it.
        assert_eq!(
            three.check(&at(2, 2)),
            Err("/a wants 2 instances, not 3".into())
        );
        assert!(three.check(&AppProgress::of("/a", None)).is_err());
        assert!(Goal::Running {
            app: "/a".into(),
            instances: None
        }
        .check(&at(1, 1))
        .is_ok());
        let gone = Goal::Gone { app: "/a".into() };
        assert!(gone.check(&AppProgress::of("/a", None)).is_ok());
        assert!(gone.check(&at(1, 1)).is_err());
        assert_eq!(finished_line("d", 3.24), "deployment d finished in 3.2 s");
    }

    #[test]
    fn a_line_wider_than_the_terminal_is_cut_with_an_ellipsis() {
        assert_eq!(fit_to_width("step 1/2 — /a 1/3", 40), "step 1/2 — /a 1/3");
        assert_eq!(fit_to_width("step 1/2 — /a 1/3", 8), "step 1/…");
        assert_eq!(fit_to_width("abc", 0), "");
    }
}
