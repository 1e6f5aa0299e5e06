//! Query parameters and URL ids (marathon-api.md §1 "Query booleans", "Repeated params",
//! "Ids in URLs"; §4 `embed`).
//!
//! What: [`Params`] keeps every `key=value` pair in order so repeated keys (`embed`,
//! `event_type`, `status[]`) survive; booleans are read case-insensitively (the Python client
//! sends `True`). [`AppPath`] splits what follows `/v2/apps/` into the app id and a reserved
//! suffix (`/tasks`, `/tasks/{taskId}`, `/versions`, `/versions/{ts}`, `/restart`), collapsing
//! `//` and accepting the `g/*` group form.
//!
//! Why here: axum's path matching cannot express "an id with slashes up to a reserved word", and
//! its `Query` extractor rejects with a non-JSON body; parsing by hand keeps every error a §1 body.

use crate::errors::ApiError;
use axum::extract::Query;
use axum::http::Uri;
use marathon_model::PathId;

/// The query string as ordered pairs.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Decode the query of `uri`; an undecodable query is a 400.
    pub fn from_uri(uri: &Uri) -> Result<Params, ApiError> {
        match uri.query() {
            None | Some("") => Ok(Params::default()),
            Some(_) => Query::<Vec<(String, String)>>::try_from_uri(uri)
                .map(|Query(v)| Params(v))
                .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}"))),
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (and of `key[]`); values are also split on `,`.
    pub fn all(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == key || *k == bracketed)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A boolean flag: absent → `default`; `true`/`false` in any case; an empty value (`?force`)
    /// counts as true; anything else is a 400.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid value for query parameter '{key}': '{v}' (expected true or false)"
                ))
            }),
        }
    }
}

/// `true`/`false` case-insensitively; empty = true.
pub fn parse_bool(v: &str) -> Option<bool> {
    if v.is_empty() || v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// What `embed` asks of an app (§4 GET /v2/apps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppEmbed {
    pub tasks: bool,
    pub counts: bool,
    pub deployments: bool,
    pub readiness: bool,
    pub last_task_failure: bool,
    pub task_stats: bool,
}

impl AppEmbed {
    /// Read every `embed` value; `apps.`, `app.` and bare names are all accepted.
    pub fn parse(params: &Params) -> AppEmbed {
        let mut e = AppEmbed::default();
        for raw in params.all("embed") {
            let name = raw
                .strip_prefix("apps.")
                .or_else(|| raw.strip_prefix("app."))
                .unwrap_or(&raw);
            match name {
                "tasks" => {
                    e.tasks = true;
                    e.deployments = true;
                }
                "counts" => e.counts = true,
                "deployments" => e.deployments = true,
                "readiness" => e.readiness = true,
                "lastTaskFailure" => e.last_task_failure = true,
                "failures" => {
                    e.tasks = true;
                    e.last_task_failure = true;
                    e.deployments = true;
                }
                "taskStats" => e.task_stats = true,
                _ => {}
            }
        }
        e
    }

    /// The list call: counts and deployments always (§4).
    pub fn for_list(mut self) -> AppEmbed {
        self.counts = true;
        self.deployments = true;
        self
    }

    /// GET one app: tasks, counts, deployments and lastTaskFailure always (§4).
    pub fn for_single(mut self) -> AppEmbed {
        self.tasks = true;
        self.counts = true;
        self.deployments = true;
        self.last_task_failure = true;
        self
    }
}

/// Which apps a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    App(PathId),
    /// `g/*`: every app of group `g` (recursively).
    GroupApps(PathId),
    /// The id part does not parse; the raw text for messages.
    Invalid(String),
}

/// What follows the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suffix {
    None,
    Tasks,
    Task(String),
    Versions,
    Version(String),
    Restart,
}

/// `/v2/apps/<rest>` split into a target and a suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPath {
    pub target: Target,
    pub suffix: Suffix,
    /// The id text as given (segments joined by `/`), for messages.
    pub raw_id: String,
}

impl AppPath {
    /// Split `rest` (the path after `/v2/apps/`). A suffix needs a non-empty id before it, so
    /// `/v2/apps/tasks` names the (invalid) app `/tasks`, while `/v2/apps/x/tasks` lists the tasks
    /// of `/x`. The more literal template wins, as in Marathon's routing: `.../tasks/{taskId}` over
    /// an app whose id has `tasks` as its second-to-last segment.
    pub fn parse(rest: &str) -> AppPath {
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let n = segs.len();
        let (id_segs, suffix) = match segs.as_slice() {
            [.., "restart"] if n >= 2 => (&segs[..n - 1], Suffix::Restart),
            [.., "tasks"] if n >= 2 => (&segs[..n - 1], Suffix::Tasks),
            [.., "versions"] if n >= 2 => (&segs[..n - 1], Suffix::Versions),
            [.., "tasks", t] if n >= 3 => (&segs[..n - 2], Suffix::Task(t.to_string())),
            [.., "versions", v] if n >= 3 => (&segs[..n - 2], Suffix::Version(v.to_string())),
            _ => (&segs[..], Suffix::None),
        };
        let raw_id = format!("/{}", id_segs.join("/"));
        let target = match id_segs {
            [group @ .., "*"] => match PathId::parse(&group.join("/")) {
                Ok(g) => Target::GroupApps(g),
                Err(_) => Target::Invalid(raw_id.clone()),
            },
            _ => match PathId::parse(&id_segs.join("/")) {
                Ok(id) if !id.is_root() => Target::App(id),
                _ => Target::Invalid(raw_id.clone()),
            },
        };
        AppPath {
            target,
            suffix,
            raw_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PathId {
        PathId::parse(s).unwrap()
    }

    fn params(q: &str) -> Params {
        Params::from_uri(&format!("/x?{q}").parse().unwrap()).unwrap()
    }

    #[test]
    fn booleans_are_case_insensitive() {
        let p = params("force=True&scale=FALSE&wipe=maybe");
        assert_eq!(p.flag("force", false), Ok(true));
        assert_eq!(p.flag("scale", true), Ok(false));
        assert_eq!(p.flag("absent", true), Ok(true));
        assert_eq!(p.flag("wipe", false).unwrap_err().status, 400);
    }

    #[test]
    fn repeated_and_bracketed_params() {
        let p = params("status[]=running&status=staging&embed=apps.tasks,app.counts");
        assert_eq!(p.all("status"), ["running", "staging"]);
        let e = AppEmbed::parse(&p);
        assert!(e.tasks && e.counts && e.deployments && !e.task_stats);
        let e = AppEmbed::parse(&params("embed=taskStats&embed=failures"));
        assert!(e.task_stats && e.tasks && e.last_task_failure);
    }

    #[test]
    fn app_paths() {
        let p = AppPath::parse("/prod/web");
        assert_eq!(p.target, Target::App(id("/prod/web")));
        assert_eq!(p.suffix, Suffix::None);
        assert_eq!(AppPath::parse("x/tasks").suffix, Suffix::Tasks);
        assert_eq!(AppPath::parse("x/tasks").target, Target::App(id("/x")));
        assert_eq!(
            AppPath::parse("tasks").target,
            Target::App(id("/tasks")),
            "a lone reserved word is an id (rejected later)"
        );
        assert_eq!(
            AppPath::parse("tasks/web").target,
            Target::App(id("/tasks/web"))
        );
        let p = AppPath::parse("a/b/tasks/a_b.instance-1._app.1");
        assert_eq!(p.target, Target::App(id("/a/b")));
        assert_eq!(p.suffix, Suffix::Task("a_b.instance-1._app.1".into()));
        let p = AppPath::parse("g/*/tasks");
        assert_eq!(p.target, Target::GroupApps(id("/g")));
        assert_eq!(p.suffix, Suffix::Tasks);
        assert_eq!(
            AppPath::parse("*").target,
            Target::GroupApps(PathId::root())
        );
        assert_eq!(
            AppPath::parse("x/versions/2024-05-01T12:00:00.123Z").suffix,
            Suffix::Version("2024-05-01T12:00:00.123Z".into())
        );
        assert_eq!(AppPath::parse("x/restart").suffix, Suffix::Restart);
        assert!(matches!(
            AppPath::parse("Bad_Id").target,
            Target::Invalid(_)
        ));
        assert!(matches!(AppPath::parse("").target, Target::Invalid(_)));
    }
}
