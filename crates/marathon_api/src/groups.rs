//! `/v2/groups[/{id}]` and the rules that need the whole tree (marathon-api.md §4, §2 "Id rules").
//!
//! What: groups are not stored; the tree is derived from app ids (`/prod/web` implies `/prod`),
//! and the root always exists. GET renders `{"id","apps","groups","pods":[],"dependencies":[],
//! "version"}` (**[compat]** no `enforceRole`). Changes become `AppChange`s: POST with `apps`
//! (and nested `groups`) creates them, PUT with `scaleBy` scales every app below, PUT with
//! `version` rolls each app back to its newest stored version not after it (apps that did not
//! exist then are deleted), PUT with `apps`/`groups` makes the group's apps exactly those, DELETE
//! deletes every app below.
//!
//! [`check_tree`] holds the cross-app rules the model cannot see: an app id may not equal a group
//! id nor sit under another app, and dependencies must name an existing app or group.

use crate::apps::deploy;
use crate::errors::ApiError;
use crate::routes::{deployment_response, json_body, ok_json, ApiState, Req};
use crate::service::{AppChange, AppEntry, ServiceView};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use marathon_model::{
    parse_and_validate, AppDefinition, IdSource, ParseContext, PathId, Timestamp, Violation,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Every app at or below `group`.
pub fn apps_under<'a>(
    view: &'a ServiceView,
    group: &'a PathId,
) -> impl Iterator<Item = &'a AppEntry> {
    view.apps
        .iter()
        .filter(move |(id, _)| id.starts_with(group) && *id != group)
        .map(|(_, e)| e)
}

/// Whether `id` is a group: the root, or a proper ancestor of some app.
pub fn group_exists(view: &ServiceView, id: &PathId) -> bool {
    id.is_root() || view.apps.keys().any(|a| a.starts_with(id) && a != id)
}

/// The cross-app rules (§2): checked on the tree after `changed` are put and `deleted` removed.
pub fn check_tree(
    view: &ServiceView,
    changed: &[AppDefinition],
    deleted: &[PathId],
) -> Result<(), ApiError> {
    let mut ids: BTreeSet<PathId> = view
        .apps
        .keys()
        .filter(|id| !deleted.contains(id))
        .cloned()
        .collect();
    ids.extend(changed.iter().map(|a| a.id.clone()));
    let groups: BTreeSet<PathId> = ids.iter().flat_map(PathId::ancestors).collect();
    let mut violations = Vec::new();
    for app in changed {
        if groups.contains(&app.id) {
            violations.push(Violation::new(
                "/id",
                format!(
                    "{} is a group: an app may not have the id of a group",
                    app.id
                ),
            ));
        }
        if let Some(parent) = app.id.ancestors().into_iter().find(|a| ids.contains(a)) {
            violations.push(Violation::new(
                "/id",
                format!("{} may not be placed under the app {parent}", app.id),
            ));
        }
        for (i, dep) in app.dependencies.iter().enumerate() {
            if !ids.contains(dep) && !groups.contains(dep) {
                violations.push(Violation::new(
                    format!("/dependencies({i})"),
                    format!("dependency {dep} does not exist"),
                ));
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(violations))
    }
}

/// `embed` of a group GET: `group.groups`, `group.apps`, `group.pods`; none given = all.
#[derive(Clone, Copy)]
struct GroupEmbed {
    groups: bool,
    apps: bool,
    pods: bool,
}

impl GroupEmbed {
    fn parse(req: &Req) -> GroupEmbed {
        let given = req.params.all("embed");
        if given.is_empty() {
            return GroupEmbed {
                groups: true,
                apps: true,
                pods: true,
            };
        }
        let has = |n: &str| given.iter().any(|g| g == n);
        GroupEmbed {
            groups: has("group.groups"),
            apps: has("group.apps"),
            pods: has("group.pods"),
        }
    }
}

/// Group JSON for `id` (assumed to exist).
fn group_json(view: &ServiceView, id: &PathId, embed: GroupEmbed) -> Value {
    let depth = id.segments().len();
    let mut child_groups: BTreeSet<PathId> = BTreeSet::new();
    let mut apps = Vec::new();
    let mut version: Option<Timestamp> = None;
    for e in apps_under(view, id) {
        let app_id = &e.definition.id;
        if app_id.segments().len() == depth + 1 {
            apps.push(e.definition.to_app_info(&marathon_model::AppStatus {
                version_info: Some(e.version_info),
                ..Default::default()
            }));
        } else if let Some(child) = app_id.ancestors().get(depth + 1) {
            child_groups.insert(child.clone());
        }
        version = version.max(e.definition.version);
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(id.to_string()));
    if embed.apps {
        m.insert("apps".into(), Value::Array(apps));
    }
    if embed.groups {
        let gs = child_groups.iter().map(|g| group_json(view, g, embed));
        m.insert("groups".into(), Value::Array(gs.collect()));
    }
    if embed.pods {
        m.insert("pods".into(), json!([]));
    }
    m.insert("dependencies".into(), json!([]));
    m.insert("version".into(), json!(version.unwrap_or(Timestamp(0))));
    Value::Object(m)
}

/// `/v2/groups[/{*rest}]`: split off `/versions[/{v}]` and dispatch on the method.
pub async fn dispatch(
    State(api): State<ApiState>,
    req: Req,
    body: Bytes,
) -> Result<Response, ApiError> {
    let rest = req.uri.path().strip_prefix("/v2/groups").unwrap_or("");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let n = segs.len();
    let (id_segs, versions, version) = match segs.as_slice() {
        [.., "versions"] => (&segs[..n - 1], true, None),
        [.., "versions", v] => (&segs[..n - 2], true, Some(v.to_string())),
        _ => (&segs[..], false, None),
    };
    let raw = format!("/{}", id_segs.join("/"));
    let id = PathId::parse(&raw)
        .map_err(|_| ApiError::not_found(format!("Group '{raw}' does not exist")))?;
    let view = api.view();
    match (&req.method, versions, version) {
        (&Method::GET, true, None) => {
            if !group_exists(&view, &id) {
                return Err(ApiError::group_not_found(&id));
            }
            let mut vs: Vec<Timestamp> = apps_under(&view, &id)
                .flat_map(|e| e.versions.iter().copied().chain(e.definition.version))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            vs.reverse();
            Ok(ok_json(&json!(vs)))
        }
        (&Method::PUT, true, Some(v)) => {
            // The Python client's group rollback (`PUT /v2/groups/{id}/versions/{v}`, §9).
            let force = req.params.flag("force", false)?;
            let ts = Timestamp::parse(&v)
                .map_err(|_| ApiError::not_found(format!("Group '{id}' has no version {v}")))?;
            rollback(&api, &view, &id, ts, force).await
        }
        (&Method::GET, false, _) => {
            if !group_exists(&view, &id) {
                return Err(ApiError::group_not_found(&id));
            }
            Ok(ok_json(&group_json(&view, &id, GroupEmbed::parse(&req))))
        }
        (&Method::POST, false, _) => create(&api, &req, &view, &id, &body).await,
        (&Method::PUT, false, _) => update(&api, &req, &view, &id, &body).await,
        (&Method::DELETE, false, _) => {
            let force = req.params.flag("force", false)?;
            if !group_exists(&view, &id) {
                return Err(ApiError::group_not_found(&id));
            }
            let changes = apps_under(&view, &id)
                .map(|e| AppChange::Delete(e.definition.id.clone()))
                .collect();
            let result = deploy(&api, changes, force, false).await?;
            Ok(deployment_response(StatusCode::OK, &result))
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {} is not allowed here", req.method),
        )),
    }
}

/// Parse the apps of a group body (and of its nested `groups`), ids relative to `group`.
fn collect_apps(
    v: &Value,
    group: &PathId,
    role: &str,
    path: &str,
    out: &mut Vec<AppDefinition>,
) -> Result<(), ApiError> {
    if !v.is_object() {
        return Err(ApiError::invalid_json(
            if path.is_empty() { "/" } else { path },
            "error.expected.jsobject",
        ));
    }
    if let Some(apps) = v.get("apps").filter(|a| !a.is_null()) {
        let apps = apps.as_array().ok_or_else(|| {
            ApiError::invalid_json(&format!("{path}/apps"), "error.expected.jsarray")
        })?;
        for (i, app) in apps.iter().enumerate() {
            let ctx = ParseContext {
                id: IdSource::Body {
                    base: group.clone(),
                },
                default_role: role.to_string(),
            };
            let def = parse_and_validate(app, &ctx)
                .map_err(|e| ApiError::from(e).under_path(&format!("{path}/apps({i})")))?;
            out.push(def);
        }
    }
    if let Some(groups) = v.get("groups").filter(|g| !g.is_null()) {
        let groups = groups.as_array().ok_or_else(|| {
            ApiError::invalid_json(&format!("{path}/groups"), "error.expected.jsarray")
        })?;
        for (i, g) in groups.iter().enumerate() {
            let gpath = format!("{path}/groups({i})");
            let raw = g.get("id").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid_json(&format!("{gpath}/id"), "error.path.missing")
            })?;
            let gid = PathId::parse_relative_to(raw, group).map_err(|e| {
                ApiError::invalid(vec![Violation::new(format!("{gpath}/id"), e.to_string())])
            })?;
            collect_apps(g, &gid, role, &gpath, out)?;
        }
    }
    Ok(())
}

/// Reject two apps with one id in one body.
fn no_duplicates(apps: &[AppDefinition]) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    for a in apps {
        if !seen.insert(&a.id) {
            return Err(ApiError::invalid(vec![Violation::new(
                "/apps",
                format!("app {} is given more than once", a.id),
            )]));
        }
    }
    Ok(())
}

/// `POST /v2/groups[/{id}]`: the body's `id` (relative to the URL group) names the new group.
async fn create(
    api: &ApiState,
    req: &Req,
    view: &ServiceView,
    base: &PathId,
    body: &[u8],
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let v = json_body(body)?;
    let gid = match v.get("id").and_then(Value::as_str) {
        Some(raw) => PathId::parse_relative_to(raw, base)
            .map_err(|e| ApiError::invalid(vec![Violation::new("/id", e.to_string())]))?,
        None => base.clone(),
    };
    if group_exists(view, &gid) && !(gid.is_root() && view.apps.is_empty()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Group {gid} is already created. Use PUT to change this group."),
        ));
    }
    let mut apps = Vec::new();
    collect_apps(&v, &gid, &api.default_role(), "", &mut apps)?;
    no_duplicates(&apps)?;
    check_tree(view, &apps, &[])?;
    let changes = apps.into_iter().map(AppChange::Put).collect();
    let result = deploy(api, changes, force, true).await?;
    let mut r = deployment_response(StatusCode::CREATED, &result);
    if let Ok(l) = HeaderValue::from_str(&req.absolute(&format!("/v2/groups{gid}"))) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

/// `PUT /v2/groups/{id}`: `scaleBy`, `version` rollback, or a new content (`apps`/`groups`).
async fn update(
    api: &ApiState,
    req: &Req,
    view: &ServiceView,
    id: &PathId,
    body: &[u8],
) -> Result<Response, ApiError> {
    let force = req.params.flag("force", false)?;
    let dry_run = req.params.flag("dryRun", false)?;
    let v = json_body(body)?;
    if !v.is_object() {
        return Err(ApiError::invalid_json("/", "error.expected.jsobject"));
    }
    if let Some(by) = v.get("scaleBy").filter(|s| !s.is_null()) {
        let by = by
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| ApiError::invalid_json("/scaleBy", "error.expected.jsnumber"))?;
        if !group_exists(view, id) {
            return Err(ApiError::group_not_found(id));
        }
        let changes = apps_under(view, id)
            .map(|e| AppChange::Scale {
                app_id: e.definition.id.clone(),
                instances: (e.definition.instances as f64 * by)
                    .ceil()
                    .min(u32::MAX as f64) as u32,
            })
            .collect();
        return finish(api, changes, force, dry_run).await;
    }
    if let Some(ver) = v.get("version").and_then(Value::as_str) {
        let ts = Timestamp::parse(ver)
            .map_err(|_| ApiError::invalid_json("/version", "error.expected.date.isoformat"))?;
        return rollback(api, view, id, ts, force).await;
    }
    let mut apps = Vec::new();
    collect_apps(&v, id, &api.default_role(), "", &mut apps)?;
    no_duplicates(&apps)?;
    let given = v.get("apps").is_some_and(|a| !a.is_null())
        || v.get("groups").is_some_and(|g| !g.is_null());
    let wanted: BTreeSet<&PathId> = apps.iter().map(|a| &a.id).collect();
    let deleted: Vec<PathId> = if given {
        apps_under(view, id)
            .map(|e| e.definition.id.clone())
            .filter(|a| !wanted.contains(a))
            .collect()
    } else {
        Vec::new()
    };
    check_tree(view, &apps, &deleted)?;
    let changes = deleted
        .into_iter()
        .map(AppChange::Delete)
        .chain(apps.into_iter().map(AppChange::Put))
        .collect();
    finish(api, changes, force, dry_run).await
}

/// Deploy `changes`, or with `dryRun` describe them as `{"steps":[…]}` without deploying.
async fn finish(
    api: &ApiState,
    changes: Vec<AppChange>,
    force: bool,
    dry_run: bool,
) -> Result<Response, ApiError> {
    if dry_run {
        let actions: Vec<Value> = changes
            .iter()
            .map(|c| {
                let (action, app) = match c {
                    AppChange::Put(a) => ("RestartApplication", a.id.clone()),
                    AppChange::Scale { app_id, .. } => ("ScaleApplication", app_id.clone()),
                    AppChange::Delete(a) => ("StopApplication", a.clone()),
                    AppChange::Restart(a) => ("RestartApplication", a.clone()),
                    AppChange::Rollback { app_id, .. } => ("RestartApplication", app_id.clone()),
                };
                json!({"action": action, "app": app})
            })
            .collect();
        let steps = if actions.is_empty() {
            vec![]
        } else {
            vec![json!({"actions": actions})]
        };
        return Ok(ok_json(&json!({ "steps": steps })));
    }
    let result = deploy(api, changes, force, false).await?;
    Ok(deployment_response(StatusCode::OK, &result))
}

/// Roll every app of `id` back to its newest stored version not after `ts`; apps with none are
/// deleted (they did not exist then). Apps deleted since `ts` cannot come back: the versions of a
/// deleted app are forgotten (§7 "Stop").
async fn rollback(
    api: &ApiState,
    view: &ServiceView,
    id: &PathId,
    ts: Timestamp,
    force: bool,
) -> Result<Response, ApiError> {
    if !group_exists(view, id) {
        return Err(ApiError::group_not_found(id));
    }
    let mut changes = Vec::new();
    let targets: BTreeMap<PathId, Option<Timestamp>> = apps_under(view, id)
        .map(|e| {
            let best = e
                .versions
                .iter()
                .copied()
                .chain(e.definition.version)
                .filter(|v| *v <= ts)
                .max();
            (e.definition.id.clone(), best)
        })
        .collect();
    for (app_id, best) in targets {
        let current = view.apps.get(&app_id).and_then(|e| e.definition.version);
        match best {
            None => changes.push(AppChange::Delete(app_id)),
            Some(v) if Some(v) != current => {
                changes.push(AppChange::Rollback { app_id, version: v })
            }
            Some(_) => {}
        }
    }
    let result = deploy(api, changes, force, false).await?;
    Ok(deployment_response(StatusCode::OK, &result))
}
