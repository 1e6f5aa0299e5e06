//! Tasks: `GET /v2/tasks`, `POST /v2/tasks/delete`, `GET|DELETE /v2/apps/{id}/tasks`,
//! `DELETE /v2/apps/{id}/tasks/{taskId}` (marathon-api.md §4, §5).
//!
//! What: listings come from the view with `servicePorts` at least as long as `ports` (§9); kills
//! go to the leader as one `Command::KillTasks`. `scale=false` answers with the killed tasks,
//! `scale=true` with the scale-down deploymentResult; `scale` with `wipe` is a 400.
//!
//! Why `POST /v2/tasks/delete` answers exactly 200 and a bad id is a 400: the Python client checks
//! both (§9).

use crate::app_info::{all_tasks, app_tasks};
use crate::errors::ApiError;
use crate::groups::{apps_under, group_exists};
use crate::params::{Params, Target};
use crate::routes::{deployment_response, json_body, ok_json, ApiState, Req};
use crate::service::{Command, KillResult};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use marathon_model::{PathId, Task, TaskId};
use serde_json::{json, Value};

/// `status` values of `GET /v2/tasks` and the task state each selects.
const STATUS_FILTERS: [(&str, &str); 2] =
    [("running", "TASK_RUNNING"), ("staging", "TASK_STAGING")];

/// `GET /v2/tasks`: `status`/`status[]` = running | staging (others ignored; none = all).
pub async fn list(State(api): State<ApiState>, req: Req) -> Result<Response, ApiError> {
    let wanted: Vec<&str> = req
        .params
        .all("status")
        .iter()
        .filter_map(|s| {
            STATUS_FILTERS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(s))
                .map(|(_, state)| *state)
        })
        .collect();
    let view = api.view();
    let tasks: Vec<Task> = all_tasks(&view)
        .into_iter()
        .filter(|t| wanted.is_empty() || wanted.contains(&t.state.as_str()))
        .collect();
    Ok(ok_json(&json!({ "tasks": tasks })))
}

/// `GET /v2/apps/{id}/tasks` (`g/*` = every app of the group).
pub fn list_app_tasks(api: &ApiState, target: &Target) -> Result<Response, ApiError> {
    let view = api.view();
    let tasks: Vec<Task> = match target {
        Target::App(id) => {
            if !view.apps.contains_key(id) {
                return Err(ApiError::app_not_found(id));
            }
            app_tasks(&view, id)
        }
        Target::GroupApps(g) => {
            if !group_exists(&view, g) {
                return Err(ApiError::group_not_found(g));
            }
            apps_under(&view, g)
                .flat_map(|e| app_tasks(&view, &e.definition.id))
                .collect()
        }
        Target::Invalid(raw) => return Err(ApiError::app_not_found_raw(raw)),
    };
    Ok(ok_json(&json!({ "tasks": tasks })))
}

/// `scale`, `wipe`, `force` of a kill call; `scale` with `wipe` is a 400 (§4).
struct KillFlags {
    scale: bool,
    wipe: bool,
    force: bool,
}

impl KillFlags {
    fn read(p: &Params) -> Result<KillFlags, ApiError> {
        let f = KillFlags {
            scale: p.flag("scale", false)?,
            wipe: p.flag("wipe", false)?,
            force: p.flag("force", false)?,
        };
        if f.scale && f.wipe {
            return Err(ApiError::bad_request(
                "You cannot use scale and wipe at the same time.",
            ));
        }
        Ok(f)
    }
}

async fn kill(api: &ApiState, ids: Vec<String>, f: &KillFlags) -> Result<KillResult, ApiError> {
    let (scale, wipe, force) = (f.scale, f.wipe, f.force);
    Ok(api
        .call(|reply| Command::KillTasks {
            task_ids: ids,
            scale,
            wipe,
            force,
            reply,
        })
        .await??)
}

/// The answer of a kill: deploymentResult when scaling, else `{"tasks":[…]}`.
fn kill_response(result: KillResult, scale: bool) -> Response {
    match result.deployment {
        Some(d) if scale => deployment_response(StatusCode::OK, &d),
        _ => ok_json(&json!({ "tasks": result.killed })),
    }
}

/// `DELETE /v2/apps/{id}/tasks?host=&scale=&wipe=&force=` (`host` absent or `*` = all).
pub async fn kill_app_tasks(api: &ApiState, req: &Req, id: &PathId) -> Result<Response, ApiError> {
    let flags = KillFlags::read(&req.params)?;
    let host = req
        .params
        .get("host")
        .filter(|h| !h.is_empty() && *h != "*");
    let ids: Vec<String> = {
        let view = api.view();
        if !view.apps.contains_key(id) {
            return Err(ApiError::app_not_found(id));
        }
        view.tasks
            .get(id)
            .map(|ts| {
                ts.iter()
                    .filter(|t| host.is_none_or(|h| h == t.host))
                    .map(|t| t.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let result = kill(api, ids, &flags).await?;
    Ok(kill_response(result, flags.scale))
}

/// `DELETE /v2/apps/{id}/tasks/{taskId}`: `{"task":Task}`, or a deploymentResult with `scale`.
pub async fn kill_one(
    api: &ApiState,
    req: &Req,
    id: &PathId,
    task_id: &str,
) -> Result<Response, ApiError> {
    let flags = KillFlags::read(&req.params)?;
    let known = {
        let view = api.view();
        if !view.apps.contains_key(id) {
            return Err(ApiError::app_not_found(id));
        }
        app_tasks(&view, id).into_iter().find(|t| t.id == task_id)
    };
    let not_found = || ApiError::not_found(format!("Task '{task_id}' does not exist"));
    let known = known.ok_or_else(not_found)?;
    let result = kill(api, vec![task_id.to_string()], &flags).await?;
    match result.deployment {
        Some(d) if flags.scale => Ok(deployment_response(StatusCode::OK, &d)),
        _ => {
            let task = result.killed.into_iter().next().unwrap_or(known);
            Ok(ok_json(&json!({ "task": task })))
        }
    }
}

/// `POST /v2/tasks/delete` with `{"ids":[…]}`: exactly 200; an unparsable id is a 400; unknown
/// ids are skipped (by the leader).
pub async fn delete_many(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    let flags = KillFlags::read(&req.params)?;
    let v = json_body(&body)?;
    let ids = v
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_json("/ids", "error.expected.jsarray"))?;
    let mut task_ids = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let s = id.as_str().ok_or_else(|| {
            ApiError::invalid_json(&format!("/ids({i})"), "error.expected.jsstring")
        })?;
        TaskId::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
        task_ids.push(s.to_string());
    }
    let result = kill(&api, task_ids, &flags).await?;
    Ok(kill_response(result, flags.scale))
}
