//! A small strict JSON reader in the style of Play JSON `Reads`: every accessor checks
//! the JSON type and records a Play error key at the value's path instead of failing
//! fast, so one response lists every wrong field (marathon-api.md §1 "Error model").
//!
//! `null` counts as absent for every optional field (Play's `readNullable`), which is
//! also what makes GET→PUT round trips with `"version": null` and friends work.
//!
//! Two lists are kept: type errors (400, `json`) and semantic problems found while
//! reading, such as an unknown enum literal (422, `semantic`).

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::error::{keys, push_violation, Violation};

/// Largest magnitude accepted for integer fields (Scala `Int`).
pub const INT_MAX: i64 = i32::MAX as i64;

#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub json: Vec<Violation>,
    pub semantic: Vec<Violation>,
}

/// `parent/key`.
pub(crate) fn at(parent: &str, key: &str) -> String {
    format!("{parent}/{key}")
}

/// `parent(i)`.
pub(crate) fn idx(parent: &str, i: usize) -> String {
    format!("{parent}({i})")
}

impl Reader {
    pub fn type_error(&mut self, path: &str, key: &str) {
        push_violation(&mut self.json, path, key);
    }

    pub fn invalid(&mut self, path: &str, msg: impl Into<String>) {
        push_violation(&mut self.semantic, path, msg);
    }

    /// The value at `key`, `None` when absent or `null`.
    pub fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
        m.get(key).filter(|v| !v.is_null())
    }

    pub fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        let o = v.as_object();
        if o.is_none() {
            self.type_error(path, keys::EXPECTED_OBJECT);
        }
        o
    }

    pub fn array<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Vec<Value>> {
        let a = v.as_array();
        if a.is_none() {
            self.type_error(path, keys::EXPECTED_ARRAY);
        }
        a
    }

    pub fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(path, keys::EXPECTED_STRING);
                None
            }
        }
    }

    pub fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.type_error(path, keys::EXPECTED_BOOLEAN);
                None
            }
        }
    }

    pub fn number(&mut self, v: &Value, path: &str) -> Option<f64> {
        // serde_json refuses non-finite numbers while parsing; the check is a guard.
        let f = v.as_f64().filter(|f| f.is_finite());
        if f.is_none() {
            self.type_error(path, keys::EXPECTED_NUMBER);
        }
        f
    }

    /// An integral number within ±[`INT_MAX`] (`2.0` is accepted, `2.5` is not).
    pub fn int(&mut self, v: &Value, path: &str) -> Option<i64> {
        let Value::Number(n) = v else {
            self.type_error(path, keys::EXPECTED_NUMBER);
            return None;
        };
        match int_of(n) {
            Some(i) => Some(i),
            None => {
                self.type_error(path, keys::EXPECTED_INT);
                None
            }
        }
    }

    // Field helpers: read `m[key]` at `parent/key`, `None` when absent/null or wrong.

    pub fn opt_string(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<String> {
        Self::field(m, key).and_then(|v| self.string(v, &at(parent, key)))
    }

    pub fn opt_bool(&mut self, m: &Map<String, Value>, key: &str, parent: &str) -> Option<bool> {
        Self::field(m, key).and_then(|v| self.boolean(v, &at(parent, key)))
    }

    pub fn opt_number(&mut self, m: &Map<String, Value>, key: &str, parent: &str) -> Option<f64> {
        Self::field(m, key).and_then(|v| self.number(v, &at(parent, key)))
    }

    pub fn opt_int(&mut self, m: &Map<String, Value>, key: &str, parent: &str) -> Option<i64> {
        Self::field(m, key).and_then(|v| self.int(v, &at(parent, key)))
    }

    pub fn opt_object<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<&'a Map<String, Value>> {
        Self::field(m, key).and_then(|v| self.object(v, &at(parent, key)))
    }

    pub fn opt_array<'a>(
        &mut self,
        m: &'a Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<&'a Vec<Value>> {
        Self::field(m, key).and_then(|v| self.array(v, &at(parent, key)))
    }

    /// A required string: records `error.path.missing` when absent or null.
    pub fn req_string(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Option<String> {
        if Self::field(m, key).is_none() {
            self.type_error(&at(parent, key), keys::PATH_MISSING);
            return None;
        }
        self.opt_string(m, key, parent)
    }

    /// An array of strings (absent → empty).
    pub fn string_list(&mut self, m: &Map<String, Value>, key: &str, parent: &str) -> Vec<String> {
        let path = at(parent, key);
        let Some(a) = self.opt_array(m, key, parent) else {
            return Vec::new();
        };
        a.iter()
            .enumerate()
            .filter_map(|(i, v)| self.string(v, &idx(&path, i)))
            .collect()
    }

    /// An object of strings (absent → empty).
    pub fn string_map(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> BTreeMap<String, String> {
        let path = at(parent, key);
        let Some(o) = self.opt_object(m, key, parent) else {
            return BTreeMap::new();
        };
        o.iter()
            .filter_map(|(k, v)| self.string(v, &at(&path, k)).map(|s| (k.clone(), s)))
            .collect()
    }
}

/// An integer within ±[`INT_MAX`], from an integral JSON number.
pub(crate) fn int_of(n: &Number) -> Option<i64> {
    let i = if let Some(i) = n.as_i64() {
        i
    } else {
        let f = n.as_f64()?;
        if f.fract() != 0.0 || f.abs() > INT_MAX as f64 {
            return None;
        }
        f as i64
    };
    (-INT_MAX..=INT_MAX).contains(&i).then_some(i)
}

/// Write an `f64` the way Marathon's examples do: integral values without a fraction
/// (`16`, not `16.0`).
pub(crate) fn num(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::from(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ints_are_checked() {
        let mut r = Reader::default();
        assert_eq!(r.int(&json!(3), "/a"), Some(3));
        assert_eq!(r.int(&json!(3.0), "/a"), Some(3));
        assert_eq!(r.int(&json!(3.5), "/b"), None);
        assert_eq!(r.int(&json!(1e20), "/c"), None);
        assert_eq!(r.int(&json!("3"), "/d"), None);
        let paths: Vec<_> = r
            .json
            .iter()
            .map(|v| (v.path.as_str(), v.errors[0].as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/b", keys::EXPECTED_INT),
                ("/c", keys::EXPECTED_INT),
                ("/d", keys::EXPECTED_NUMBER)
            ]
        );
    }

    #[test]
    fn nulls_are_absent_and_numbers_print_like_marathon() {
        let m = json!({"a": null});
        let mut r = Reader::default();
        assert_eq!(r.opt_int(m.as_object().unwrap(), "a", ""), None);
        assert!(r.json.is_empty());
        assert_eq!(num(16.0), json!(16));
        assert_eq!(num(0.1), json!(0.1));
    }
}
