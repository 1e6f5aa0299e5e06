//! AppInfo from the leader's view (marathon-api.md §3 "Status fields", §4 embed rules, §5 tasks).
//!
//! What: the status the model's `to_app_info` needs ([`AppStatus`]) computed from the tasks of
//! one app: counts (`tasksStaged` … `tasksUnhealthy`), `deployments`, `tasks`,
//! `lastTaskFailure`, `taskStats`; and tasks with `servicePorts` at least as long as `ports` (§9).
//!
//! Why here: the model crate knows no runtime state and the leader publishes raw tasks; how a
//! task's state and health results become counts is a presentation rule of the REST API.

use crate::params::AppEmbed;
use crate::service::{AppEntry, ServiceView};
use marathon_model::{
    AppDefinition, AppStatus, LifeTime, PathId, Stats, Task, TaskCounts, TaskStats, Timestamp,
};
use serde_json::Value;

/// Task states counted as staged (the launch is not running yet).
const STAGED_STATES: [&str; 2] = ["TASK_STAGING", "TASK_STARTING"];
const RUNNING_STATE: &str = "TASK_RUNNING";

/// Counts over `tasks`: healthy/unhealthy only count tasks that have health results (§3).
pub fn counts(tasks: &[Task]) -> TaskCounts {
    let mut c = TaskCounts::default();
    for t in tasks {
        if STAGED_STATES.contains(&t.state.as_str()) {
            c.staged += 1;
        }
        if t.state == RUNNING_STATE {
            c.running += 1;
        }
        if !t.health_check_results.is_empty() {
            if t.health_check_results.iter().all(|h| h.alive) {
                c.healthy += 1;
            } else {
                c.unhealthy += 1;
            }
        }
    }
    c
}

fn stats(tasks: &[&Task], now: Timestamp) -> Option<Stats> {
    if tasks.is_empty() {
        return None;
    }
    let owned: Vec<Task> = tasks.iter().map(|t| (*t).clone()).collect();
    let mut lives: Vec<f64> = tasks
        .iter()
        .filter_map(|t| t.started_at)
        .map(|s| (now.millis() - s.millis()).max(0) as f64 / 1000.0)
        .collect();
    lives.sort_by(f64::total_cmp);
    let life_time = if lives.is_empty() {
        None
    } else {
        let average_seconds = lives.iter().sum::<f64>() / lives.len() as f64;
        let mid = lives.len() / 2;
        let median_seconds = if lives.len().is_multiple_of(2) {
            (lives[mid - 1] + lives[mid]) / 2.0
        } else {
            lives[mid]
        };
        Some(LifeTime {
            average_seconds,
            median_seconds,
        })
    };
    Some(Stats {
        counts: counts(&owned),
        life_time,
    })
}

/// `taskStats` (**[compat]** spelling): buckets without tasks are omitted.
pub fn task_stats(entry: &AppEntry, tasks: &[Task], now: Timestamp) -> TaskStats {
    let version = entry.definition.version;
    let all: Vec<&Task> = tasks.iter().collect();
    let latest: Vec<&Task> = tasks
        .iter()
        .filter(|t| Some(t.version) == version)
        .collect();
    let outdated: Vec<&Task> = tasks
        .iter()
        .filter(|t| Some(t.version) != version)
        .collect();
    let scaled_at = entry.version_info.last_scaling_at;
    let after_scaling: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.staged_at.is_some_and(|s| s >= scaled_at))
        .collect();
    TaskStats {
        started_after_last_scaling: stats(&after_scaling, now),
        with_latest_config: stats(&latest, now),
        with_outdated_config: stats(&outdated, now),
        total_summary: stats(&all, now),
    }
}

/// The service ports of `app`, in port order.
pub fn service_ports(app: &AppDefinition) -> Vec<u32> {
    let ports: Vec<i64> = if app.is_host_networking() {
        app.port_definitions.iter().map(|p| p.port).collect()
    } else {
        app.container
            .as_ref()
            .map(|c| c.port_mappings.iter().map(|p| p.service_port).collect())
            .unwrap_or_default()
    };
    ports
        .into_iter()
        .map(|p| u32::try_from(p).unwrap_or(0))
        .collect()
}

/// `task` with `servicePorts` filled from the app when shorter than `ports` (§4 `/v2/tasks`, §9).
pub fn with_service_ports(task: &Task, app: Option<&AppDefinition>) -> Task {
    let mut t = task.clone();
    if t.service_ports.len() < t.ports.len() {
        let mut sp = app.map(service_ports).unwrap_or_default();
        sp.resize(t.ports.len().max(sp.len()), 0);
        t.service_ports = sp;
    }
    t
}

/// The tasks of `app_id` as the API shows them.
pub fn app_tasks(view: &ServiceView, app_id: &PathId) -> Vec<Task> {
    let app = view.apps.get(app_id).map(|e| &e.definition);
    view.tasks
        .get(app_id)
        .map(|ts| ts.iter().map(|t| with_service_ports(t, app)).collect())
        .unwrap_or_default()
}

/// Every task the view knows, with service ports filled.
pub fn all_tasks(view: &ServiceView) -> Vec<Task> {
    view.tasks
        .iter()
        .flat_map(|(id, ts)| {
            let app = view.apps.get(id).map(|e| &e.definition);
            ts.iter().map(move |t| with_service_ports(t, app))
        })
        .collect()
}

/// The AppInfo of one stored app with the status fields `embed` asks for; `versionInfo` always.
pub fn app_info(view: &ServiceView, entry: &AppEntry, embed: AppEmbed, now: Timestamp) -> Value {
    let id = &entry.definition.id;
    let tasks = app_tasks(view, id);
    let status = AppStatus {
        version_info: Some(entry.version_info),
        counts: embed.counts.then(|| counts(&tasks)),
        deployments: embed
            .deployments
            .then(|| view.deployments_by_app.get(id).cloned().unwrap_or_default()),
        last_task_failure: if embed.last_task_failure {
            view.last_failures.get(id).cloned()
        } else {
            None
        },
        task_stats: embed.task_stats.then(|| task_stats(entry, &tasks, now)),
        readiness_check_results: embed.readiness.then(Vec::new),
        tasks: embed.tasks.then_some(tasks),
    };
    entry.definition.to_app_info(&status)
}

/// The 201 body of `POST /v2/apps` (§4): the submitted app, counts 0, `deployments:[{"id"}]`, no
/// tasks, no versionInfo.
pub fn created_app_info(app: &AppDefinition, deployment_id: &str) -> Value {
    app.to_app_info(&AppStatus {
        counts: Some(TaskCounts::default()),
        deployments: Some(vec![deployment_id.to_string()]),
        ..AppStatus::default()
    })
}

/// Now, as a model timestamp (the model reads no clock).
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use marathon_model::HealthCheckResult;

    fn task(state: &str, alive: Option<bool>) -> Task {
        Task {
            id: "a.instance-5f0c2a1e-07b3-11ef-9a8e-0242ac110002._app.1".into(),
            app_id: PathId::parse("/a").unwrap(),
            host: "h".into(),
            state: state.into(),
            slave_id: "S0".into(),
            staged_at: Some(Timestamp(1000)),
            started_at: Some(Timestamp(2000)),
            version: Timestamp(1),
            ports: vec![31000, 31001],
            service_ports: vec![],
            ip_addresses: vec![],
            health_check_results: alive
                .map(|alive| {
                    vec![HealthCheckResult {
                        alive,
                        consecutive_failures: 0,
                        first_success: None,
                        last_success: None,
                        last_failure: None,
                        last_failure_cause: None,
                        instance_id: "i".into(),
                    }]
                })
                .unwrap_or_default(),
            local_volumes: vec![],
            role: "*".into(),
            region: None,
            zone: None,
        }
    }

    #[test]
    fn counts_follow_states_and_health() {
        let c = counts(&[
            task("TASK_STAGING", None),
            task("TASK_RUNNING", Some(true)),
            task("TASK_RUNNING", Some(false)),
            task("TASK_RUNNING", None),
        ]);
        assert_eq!((c.staged, c.running, c.healthy, c.unhealthy), (1, 3, 1, 1));
    }

    #[test]
    fn service_ports_are_padded() {
        let t = with_service_ports(&task("TASK_RUNNING", None), None);
        assert_eq!(t.service_ports, [0, 0]);
    }
}
