//! `/v2/apps` and `/v2/apps/{id}[/restart|/versions[/{ts}]]` (marathon-api.md §4, §2, §3).
//!
//! What: reads render AppInfo from the view (`app_info.rs`); writes parse and validate here
//! (`parse_and_validate`, `merge_patch`, `replace`, `classify_update`), check the rules that need
//! the whole tree against the view (`groups::check_tree`), then send one `Command::Deploy` and
//! answer with its deploymentResult. `/tasks` suffixes are served by `tasks.rs`.
//!
//! Why validate here: a 400/422 never reaches the leader, and the leader's command queue only sees
//! definitions that already passed every single-app rule.

use crate::app_info::{app_info, created_app_info, now};
use crate::errors::{json_response, ApiError};
use crate::events::publish_api_post;
use crate::groups::{apps_under, check_tree, group_exists};
use crate::params::{AppEmbed, AppPath, Suffix, Target};
use crate::routes::{deployment_response, json_body, ok_json, ApiState, Req};
use crate::service::{AppChange, Command, DeploymentResult, ServiceView};
use crate::tasks;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use marathon_model::{
    classify_update, merge_patch, parse_and_validate, replace, validate, AppDefinition,
    LabelSelector, ParseContext, PathId, Timestamp, UpdateKind, Violation,
};
use serde_json::{json, Value};

/// `GET /v2/apps`: filters `cmd`, `id` (case-insensitive), `label`; counts and deployments always.
pub async fn list(State(api): State<ApiState>, req: Req) -> Result<Response, ApiError> {
    let p = &req.params;
    let selector = match p.get("label") {
        Some(l) if !l.is_empty() => {
            Some(LabelSelector::parse(l).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        _ => None,
    };
    let cmd = p.get("cmd").filter(|c| !c.is_empty());
    let id = p.get("id").map(str::to_lowercase).filter(|c| !c.is_empty());
    let embed = AppEmbed::parse(p).for_list();
    let view = api.view();
    let now = now();
    let apps: Vec<Value> = view
        .apps
        .values()
        .filter(|e| cmd.is_none_or(|c| e.definition.cmd.as_deref().is_some_and(|x| x.contains(c))))
        .filter(|e| {
            id.as_deref()
                .is_none_or(|i| e.definition.id.to_string().to_lowercase().contains(i))
        })
        .filter(|e| {
            selector
                .as_ref()
                .is_none_or(|s| s.matches(&e.definition.labels))
        })
        .map(|e| app_info(&view, e, embed, now))
        .collect();
    Ok(ok_json(&json!({ "apps": apps })))
}

/// Send a deployment and wait for its result.
pub async fn deploy(
    api: &ApiState,
    changes: Vec<AppChange>,
    force: bool,
    create_only: bool,
) -> Result<DeploymentResult, ApiError> {
    let result = api
        .call(|reply| Command::Deploy {
            changes,
            force,
            create_only,
            reply,
        })
        .await?;
    Ok(result?)
}

/// `POST /v2/apps` → 201 with `Location`, `Marathon-Deployment-Id` and the normalized app.
pub async fn create(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let v = json_body(&body)?;
    let mut app = parse_and_validate(&v, &ParseContext::post().with_role(api.default_role()))?;
    let view = api.view();
    if view.apps.contains_key(&app.id) {
        return Err(crate::service::CommandError::AlreadyExists(app.id.clone()).into());
    }
    check_tree(&view, std::slice::from_ref(&app), &[])?;
    let result = deploy(&api, vec![AppChange::Put(app.clone())], force, true).await?;
    app.version = Some(result.version);
    publish_api_post(&api, &req, &app);
    let mut r = deployment_response(StatusCode::CREATED, &result);
    *r.body_mut() = axum::body::Body::from(
        serde_json::to_vec(&created_app_info(&app, &result.deployment_id)).unwrap_or_default(),
    );
    set_location(&mut r, &req, &format!("/v2/apps{}", app.id));
    Ok(r)
}

fn set_location(r: &mut Response, req: &Req, path: &str) {
    if let Ok(v) = HeaderValue::from_str(&req.absolute(path)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
}

/// `/v2/apps/{*rest}`: split the id from its suffix and dispatch on method and suffix.
pub async fn dispatch(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    let rest = req.uri.path().strip_prefix("/v2/apps").unwrap_or("");
    let path = AppPath::parse(rest);
    let m = &req.method;
    match (&path.suffix, &path.target) {
        (_, Target::Invalid(raw)) if *m == Method::PUT && path.suffix == Suffix::None => {
            let err = PathId::parse(raw)
                .map(|_| "the root group '/' is not a valid app id".to_string())
                .unwrap_or_else(|e| e.to_string());
            Err(ApiError::invalid(vec![Violation::new("/id", err)]))
        }
        (_, Target::Invalid(raw)) => Err(ApiError::app_not_found_raw(raw)),
        (Suffix::None, Target::GroupApps(g)) if *m == Method::GET => show_group_apps(&api, &req, g),
        (Suffix::None, Target::App(id)) => match *m {
            Method::GET => show(&api, &req, id),
            Method::PUT => put_one(&api, &req, id, &body, true).await,
            Method::PATCH => put_one(&api, &req, id, &body, false).await,
            Method::DELETE => delete_app(&api, &req, id).await,
            _ => Err(not_allowed(m)),
        },
        (Suffix::Restart, Target::App(id)) if *m == Method::POST => restart(&api, &req, id).await,
        (Suffix::Tasks, target) if *m == Method::GET => tasks::list_app_tasks(&api, target),
        (Suffix::Tasks, Target::App(id)) if *m == Method::DELETE => {
            tasks::kill_app_tasks(&api, &req, id).await
        }
        (Suffix::Task(task_id), Target::App(id)) if *m == Method::DELETE => {
            tasks::kill_one(&api, &req, id, task_id).await
        }
        (Suffix::Versions, Target::App(id)) if *m == Method::GET => versions(&api, id),
        (Suffix::Version(ts), Target::App(id)) if *m == Method::GET => version(&api, id, ts).await,
        _ => Err(not_allowed(m)),
    }
}

fn not_allowed(m: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {m} is not allowed here"),
    )
}

/// `GET /v2/apps/{id}`: tasks, counts, deployments, lastTaskFailure always embedded.
fn show(api: &ApiState, req: &Req, id: &PathId) -> Result<Response, ApiError> {
    let view = api.view();
    let entry = view
        .apps
        .get(id)
        .ok_or_else(|| ApiError::app_not_found(id))?;
    let embed = AppEmbed::parse(&req.params).for_single();
    Ok(ok_json(
        &json!({ "app": app_info(&view, entry, embed, now()) }),
    ))
}

/// `GET /v2/apps/g/*` → `{"*":[AppInfo…]}`.
fn show_group_apps(api: &ApiState, req: &Req, group: &PathId) -> Result<Response, ApiError> {
    let view = api.view();
    if !group_exists(&view, group) {
        return Err(ApiError::group_not_found(group));
    }
    let embed = AppEmbed::parse(&req.params).for_single();
    let now = now();
    let apps: Vec<Value> = apps_under(&view, group)
        .map(|e| app_info(&view, e, embed, now))
        .collect();
    Ok(ok_json(&json!({ "*": apps })))
}

/// What one PUT/PATCH element turns into.
struct Planned {
    change: AppChange,
    /// The new definition (for tree checks and `api_post_event`), when there is one.
    definition: Option<AppDefinition>,
    created: bool,
}

/// Turn a PUT (`partial` per `partialUpdate`) or PATCH (`allow_create == false`) body for `id`
/// into a change (§4): rollback, scale, merge, replace or create.
fn plan_update(
    view: &ServiceView,
    role: &str,
    id: &PathId,
    body: &Value,
    partial: bool,
    allow_create: bool,
) -> Result<Planned, ApiError> {
    let existing = view.apps.get(id);
    if existing.is_none() && !allow_create {
        return Err(ApiError::app_not_found(id));
    }
    match (classify_update(body)?, existing) {
        (UpdateKind::Rollback(version), Some(e)) => {
            if !e.versions.contains(&version) && e.definition.version != Some(version) {
                return Err(ApiError::not_found(format!(
                    "App '{id}' does not exist in version {version}"
                )));
            }
            Ok(Planned {
                change: AppChange::Rollback {
                    app_id: id.clone(),
                    version,
                },
                definition: None,
                created: false,
            })
        }
        (UpdateKind::Rollback(_), None) => Err(ApiError::app_not_found(id)),
        (UpdateKind::Scale(n), Some(_)) => {
            let instances = u32::try_from(n).map_err(|_| {
                ApiError::invalid(vec![Violation::new(
                    "/instances",
                    format!("got {n}, expected 0 or more"),
                )])
            })?;
            Ok(Planned {
                change: AppChange::Scale {
                    app_id: id.clone(),
                    instances,
                },
                definition: None,
                created: false,
            })
        }
        (_, Some(e)) => {
            let app = if partial {
                merge_patch(&e.definition, body)?
            } else {
                replace(id.clone(), body, role)?
            };
            validate(&app).map_err(ApiError::invalid)?;
            Ok(Planned {
                change: AppChange::Put(app.clone()),
                definition: Some(app),
                created: false,
            })
        }
        (_, None) => {
            let app = parse_and_validate(body, &ParseContext::put(id.clone()).with_role(role))?;
            Ok(Planned {
                change: AppChange::Put(app.clone()),
                definition: Some(app),
                created: true,
            })
        }
    }
}

/// `PUT` (`is_put`) or `PATCH /v2/apps/{id}`.
async fn put_one(
    api: &ApiState,
    req: &Req,
    id: &PathId,
    body: &[u8],
    is_put: bool,
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let partial = !is_put || req.params.flag("partialUpdate", true)?;
    let v = json_body(body)?;
    let view = api.view();
    let planned = plan_update(&view, &api.default_role(), id, &v, partial, is_put)?;
    let defs: Vec<AppDefinition> = planned.definition.iter().cloned().collect();
    check_tree(&view, &defs, &[])?;
    let result = deploy(api, vec![planned.change], force, false).await?;
    for d in &defs {
        publish_api_post(api, req, d);
    }
    if planned.created {
        let mut r = deployment_response(StatusCode::CREATED, &result);
        set_location(&mut r, req, &format!("/v2/apps{id}"));
        Ok(r)
    } else {
        Ok(deployment_response(StatusCode::OK, &result))
    }
}

/// The elements of an array body, with 400 for anything but an array of objects.
fn array_items(v: &Value) -> Result<&Vec<Value>, ApiError> {
    v.as_array()
        .ok_or_else(|| ApiError::invalid_json("/", "error.expected.jsarray"))
}

/// The absolute id of one array element (ids are required there).
fn element_id(item: &Value, i: usize) -> Result<PathId, ApiError> {
    let raw = item
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_json(&format!("({i})/id"), "error.path.missing"))?;
    PathId::parse_app_id(raw, &PathId::root())
        .map_err(|e| ApiError::invalid(vec![Violation::new(format!("({i})/id"), e.to_string())]))
}

/// `PUT /v2/apps` (create or update, `partialUpdate` default true) and `PATCH /v2/apps`.
async fn update_many(
    api: &ApiState,
    req: &Req,
    body: &[u8],
    is_put: bool,
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let partial = !is_put || req.params.flag("partialUpdate", true)?;
    let v = json_body(body)?;
    let view = api.view();
    let role = api.default_role();
    let mut changes = Vec::new();
    let mut defs = Vec::new();
    for (i, item) in array_items(&v)?.iter().enumerate() {
        let prefix = format!("({i})");
        let id = element_id(item, i)?;
        let planned = plan_update(&view, &role, &id, item, partial, is_put)
            .map_err(|e| e.under_path(&prefix))?;
        changes.push(planned.change);
        defs.extend(planned.definition);
    }
    check_tree(&view, &defs, &[])?;
    let result = deploy(api, changes, force, false).await?;
    for d in &defs {
        publish_api_post(api, req, d);
    }
    Ok(deployment_response(StatusCode::OK, &result))
}

pub async fn put_many(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    update_many(&api, &req, &body, true).await
}

pub async fn patch_many(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    update_many(&api, &req, &body, false).await
}

/// `DELETE /v2/apps/{id}` (`force` default **true**).
async fn delete_app(api: &ApiState, req: &Req, id: &PathId) -> Result<Response, ApiError> {
    let force = req.params.flag("force", true)?;
    if !api.view().apps.contains_key(id) {
        return Err(ApiError::app_not_found(id));
    }
    let result = deploy(api, vec![AppChange::Delete(id.clone())], force, false).await?;
    Ok(deployment_response(StatusCode::OK, &result))
}

/// `POST /v2/apps/{id}/restart`.
async fn restart(api: &ApiState, req: &Req, id: &PathId) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    if !api.view().apps.contains_key(id) {
        return Err(ApiError::app_not_found(id));
    }
    let result = deploy(api, vec![AppChange::Restart(id.clone())], force, false).await?;
    Ok(deployment_response(StatusCode::OK, &result))
}

/// `GET /v2/apps/{id}/versions`: newest first.
fn versions(api: &ApiState, id: &PathId) -> Result<Response, ApiError> {
    let view = api.view();
    let e = view
        .apps
        .get(id)
        .ok_or_else(|| ApiError::app_not_found(id))?;
    let mut vs: Vec<Timestamp> = e.versions.clone();
    if let Some(current) = e.definition.version {
        if !vs.contains(&current) {
            vs.push(current);
        }
    }
    vs.sort();
    vs.dedup();
    vs.reverse();
    Ok(ok_json(&json!({ "versions": vs })))
}

/// `GET /v2/apps/{id}/versions/{ts}`: the bare definition (§9); older versions come from the
/// leader's store.
async fn version(api: &ApiState, id: &PathId, ts: &str) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("App '{id}' does not exist in version {ts}"));
    let version = Timestamp::parse(ts).map_err(|_| not_found())?;
    let current = {
        let view = api.view();
        let e = view
            .apps
            .get(id)
            .ok_or_else(|| ApiError::app_not_found(id))?;
        if e.definition.version == Some(version) {
            Some(e.definition.clone())
        } else if e.versions.contains(&version) {
            None
        } else {
            return Err(not_found());
        }
    };
    let def = match current {
        Some(d) => d,
        None => {
            api.call(|reply| Command::GetAppVersion {
                app_id: id.clone(),
                version,
                reply,
            })
            .await??
        }
    };
    Ok(json_response(StatusCode::OK, &def.to_json()))
}
