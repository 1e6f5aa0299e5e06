//! Updates of an existing app (marathon-api.md §4 `PUT /v2/apps/{id}`, `PATCH`):
//!
//! - [`merge_patch`]: `partialUpdate=true` / PATCH — given top-level fields replace the
//!   stored ones, others are kept; a field given as `null` returns to its default.
//! - [`replace`]: `partialUpdate=false` — the body is the whole app, omitted → defaults.
//! - [`classify_update`]: `{"version": ts}` alone is a rollback, `{"instances": n}` alone
//!   a scale (an `id` key alongside is tolerated: clients echo it).
//!
//! Merging works on JSON: the stored app is written with [`AppDefinition::to_json`],
//! the patch keys are laid over it and the result is read back with the same rules
//! as a new body, so every normalization (legacy fields, defaults) applies. Where a
//! patch key has an exclusive partner in the stored app, the partner is dropped:
//! `ports`/`portDefinitions`, `uris`/`fetch`, `cmd`/`args`, and `networks` when the
//! patch brings a legacy network (`container.docker.network`, `ipAddress`).

use serde_json::{Map, Value};

use super::defaults::ParseContext;
use super::AppDefinition;
use crate::error::{keys, AppError, Violation};
use crate::id::PathId;
use crate::json::int_of;
use crate::time::Timestamp;

/// Play's key for a string that is not an ISO date.
pub const EXPECTED_DATE: &str = "error.expected.date.isoformat";

/// Keys a body may carry that are never read (read-only status fields).
const IGNORED_KEYS: [&str; 2] = ["id", "version"];

/// Exclusive partners: when the patch sets the first, the stored second is dropped.
const PARTNERS: [(&str, &str); 6] = [
    ("ports", "portDefinitions"),
    ("portDefinitions", "ports"),
    ("uris", "fetch"),
    ("fetch", "uris"),
    ("cmd", "args"),
    ("args", "cmd"),
];

/// What a PUT/PATCH body asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// `{"version": ts}`: roll back to that stored version.
    Rollback(Timestamp),
    /// `{"instances": n}`: scale only.
    Scale(i64),
    /// Anything else: a definition change.
    Update,
}

fn object(patch: &Value) -> Result<&Map<String, Value>, AppError> {
    patch
        .as_object()
        .ok_or_else(|| AppError::InvalidJson(vec![Violation::new("/", keys::EXPECTED_OBJECT)]))
}

/// Recognize rollback and scale requests.
pub fn classify_update(patch: &Value) -> Result<UpdateKind, AppError> {
    let m = object(patch)?;
    let mut keys_given = m
        .iter()
        .filter(|(k, v)| k.as_str() != "id" && !v.is_null())
        .map(|(k, _)| k.as_str());
    let (Some(only), None) = (keys_given.next(), keys_given.next()) else {
        return Ok(UpdateKind::Update);
    };
    match (only, &m[only]) {
        ("version", Value::String(s)) => Timestamp::parse(s)
            .map(UpdateKind::Rollback)
            .map_err(|_| AppError::InvalidJson(vec![Violation::new("/version", EXPECTED_DATE)])),
        ("version", _) => Err(AppError::InvalidJson(vec![Violation::new(
            "/version",
            keys::EXPECTED_STRING,
        )])),
        ("instances", Value::Number(n)) => int_of(n).map(UpdateKind::Scale).ok_or_else(|| {
            AppError::InvalidJson(vec![Violation::new("/instances", keys::EXPECTED_INT)])
        }),
        ("instances", _) => Err(AppError::InvalidJson(vec![Violation::new(
            "/instances",
            keys::EXPECTED_NUMBER,
        )])),
        _ => Ok(UpdateKind::Update),
    }
}

/// `Some(ts)` when the body is a rollback request.
pub fn rollback_version(patch: &Value) -> Option<Timestamp> {
    match classify_update(patch) {
        Ok(UpdateKind::Rollback(ts)) => Some(ts),
        _ => None,
    }
}

/// `Some(n)` when the body is a scale request.
pub fn scale_instances(patch: &Value) -> Option<i64> {
    match classify_update(patch) {
        Ok(UpdateKind::Scale(n)) => Some(n),
        _ => None,
    }
}

/// Merge `patch` into `existing` (partial update). The result has `version: None`;
/// run [`super::validate::validate`] on it before storing.
pub fn merge_patch(existing: &AppDefinition, patch: &Value) -> Result<AppDefinition, AppError> {
    let p = object(patch)?;
    let Value::Object(mut base) = existing.to_json() else {
        return Err(AppError::InvalidJson(vec![Violation::new(
            "/",
            keys::EXPECTED_OBJECT,
        )]));
    };
    base.remove("version");
    for (k, v) in p {
        if IGNORED_KEYS.contains(&k.as_str()) {
            continue;
        }
        if !v.is_null() {
            for (given, partner) in PARTNERS {
                if k == given {
                    base.remove(partner);
                }
            }
        }
        let legacy_network = (k == "container"
            && v.pointer("/docker/network").is_some_and(|n| !n.is_null()))
            || (k == "ipAddress" && !v.is_null());
        if legacy_network && !p.contains_key("networks") {
            base.remove("networks");
        }
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
    let ctx = ParseContext::put(existing.id.clone()).with_role(existing.role.clone());
    AppDefinition::from_json(&Value::Object(base), &ctx)
}

/// Replace the whole definition (`partialUpdate=false`): omitted fields take defaults.
pub fn replace(id: PathId, body: &Value, default_role: &str) -> Result<AppDefinition, AppError> {
    AppDefinition::from_json(body, &ParseContext::put(id).with_role(default_role))
}
