//! `/monitor/statistics` (and its pre-1.7 alias `/monitor/statistics.json`): per-executor resource
//! usage as the isolator measures it, in Mesos' shape:
//! `[{"executor_id","executor_name","framework_id","source","statistics":{ResourceStatistics}}]`.

use super::Isolator;
use crate::core::Process;
use crate::shared::Shared;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

type MonitorState = (Arc<Shared>, Arc<dyn Isolator>);

/// Routes for the `monitor` process; merge into the agent's router.
pub fn router(shared: Arc<Shared>, isolator: Arc<dyn Isolator>) -> Router {
    Router::new()
        .route("/monitor/statistics", get(statistics))
        .route("/monitor/statistics.json", get(statistics))
        .with_state((shared, isolator))
}

async fn statistics(State((shared, isolator)): State<MonitorState>) -> Json<serde_json::Value> {
    // Under the core lock only the list is copied; the isolator reads files on the blocking pool.
    let running: Vec<(String, String, String, String)> = shared
        .core()
        .live_tasks()
        .filter(|t| matches!(t.process, Process::Running { .. }))
        .map(|t| {
            let command = t
                .info
                .command
                .as_ref()
                .and_then(|c| c.value.clone())
                .unwrap_or_default();
            (
                t.framework_id.value.clone(),
                t.info.task_id.value.clone(),
                t.container_id.value.clone(),
                command,
            )
        })
        .collect();
    let entries = tokio::task::spawn_blocking(move || {
        let ids: Vec<String> = running
            .iter()
            .map(|(_, _, container_id, _)| container_id.clone())
            .collect();
        let mut usages: std::collections::HashMap<String, super::Usage> = isolator.usages(&ids).into_iter().collect();
        running
            .into_iter()
            .filter_map(|(framework_id, task_id, container_id, command)| {
                let usage = usages.remove(&container_id)?;
                Some(serde_json::json!({
                    "executor_id": task_id,
                    "executor_name": format!("Command Executor (Task: {task_id}) (Command: sh -c '{command}')"),
                    "framework_id": framework_id,
                    "source": task_id,
                    "statistics": usage,
                }))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(serde_json::Value::Array(entries))
}
