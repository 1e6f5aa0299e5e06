//! Error types shared by parsing (400 class) and validation (422 class), shaped like
//! Marathon's error bodies (marathon-api.md §1 "Error model"): a list of
//! `{"path": "/cpus", "errors": ["…"]}` entries, one per JSON path.
//!
//! Paths follow Play JSON: `/field/sub`, array elements as `(i)` (`/healthChecks(0)/portIndex`);
//! whole-object rules use `/`.

use serde::Serialize;
use serde_json::{json, Value};

/// One error entry: a JSON path and the messages for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub path: String,
    pub errors: Vec<String>,
}

impl Violation {
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            errors: vec![error.into()],
        }
    }
}

/// Push `error` at `path`, merging into an existing entry for the same path.
pub(crate) fn push_violation(list: &mut Vec<Violation>, path: &str, error: impl Into<String>) {
    let error = error.into();
    match list.iter_mut().find(|v| v.path == path) {
        Some(v) => {
            if !v.errors.contains(&error) {
                v.errors.push(error)
            }
        }
        None => list.push(Violation::new(path, error)),
    }
}

/// Play-JSON error keys used for wrong types and missing fields.
pub mod keys {
    pub const EXPECTED_NUMBER: &str = "error.expected.jsnumber";
    pub const EXPECTED_INT: &str = "error.expected.int";
    pub const EXPECTED_STRING: &str = "error.expected.jsstring";
    pub const EXPECTED_ARRAY: &str = "error.expected.jsarray";
    pub const EXPECTED_OBJECT: &str = "error.expected.jsobject";
    pub const EXPECTED_BOOLEAN: &str = "error.expected.jsboolean";
    pub const PATH_MISSING: &str = "error.path.missing";
}

/// Everything that can go wrong turning a request body into an app.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// Not JSON at all (400, `{"message":"Invalid JSON"}` with the parser's message).
    #[error("Invalid JSON: {0}")]
    Malformed(String),
    /// JSON of the wrong shape: wrong types, missing required fields (400).
    #[error("Invalid JSON")]
    InvalidJson(Vec<Violation>),
    /// Well-typed but semantically invalid (422, "Object is not valid").
    #[error("Object is not valid")]
    Invalid(Vec<Violation>),
}

impl AppError {
    /// The HTTP status Marathon answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Malformed(_) | AppError::InvalidJson(_) => 400,
            AppError::Invalid(_) => 422,
        }
    }

    /// The error body (`{"message":…, "details":[…]}`).
    pub fn body(&self) -> Value {
        match self {
            AppError::Malformed(msg) => json!({"message": "Invalid JSON", "details": [
                {"path": "/", "errors": [msg]}
            ]}),
            AppError::InvalidJson(d) => json!({"message": "Invalid JSON", "details": d}),
            AppError::Invalid(d) => json!({"message": "Object is not valid", "details": d}),
        }
    }

    /// The detail entries (one synthetic `/` entry for `Malformed`).
    pub fn details(&self) -> Vec<Violation> {
        match self {
            AppError::Malformed(msg) => vec![Violation::new("/", msg.clone())],
            AppError::InvalidJson(d) | AppError::Invalid(d) => d.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_the_error_model() {
        let e = AppError::InvalidJson(vec![Violation::new("/cpus", keys::EXPECTED_NUMBER)]);
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.body(),
            json!({"message":"Invalid JSON","details":[{"path":"/cpus","errors":["error.expected.jsnumber"]}]})
        );
        let e = AppError::Invalid(vec![Violation::new("/", "x")]);
        assert_eq!(e.status(), 422);
        assert_eq!(e.body()["message"], "Object is not valid");
    }

    #[test]
    fn violations_merge_per_path() {
        let mut v = Vec::new();
        push_violation(&mut v, "/a", "x");
        push_violation(&mut v, "/a", "y");
        push_violation(&mut v, "/a", "y");
        push_violation(&mut v, "/b", "z");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].errors, ["x", "y"]);
    }
}
