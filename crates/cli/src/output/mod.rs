//! What the verbs print, as pure functions of the JSON documents the APIs answer: aligned
//! tables (`table`), views of the master's `/state` (`cluster`), of Marathon's apps and
//! deployments (`marathon`) and a deployment's progress (`progress`). Nothing here does I/O, so
//! every view is unit-tested; missing or mistyped fields print as `-`, never panic.

pub mod cluster;
pub mod marathon;
pub mod progress;
pub mod table;

use serde_json::Value;

/// A string field, or `-`.
pub fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "-".to_string(),
    }
}

/// A number field (0 when absent or not a number).
pub fn number(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// An array field's items (none when absent).
pub fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A quantity without a useless fraction: `2`, `0.5`, `0.25`.
pub fn quantity(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Megabytes (Mesos' unit for mem and disk) in a readable unit: `32 MB`, `22.5 GB`.
pub fn megabytes(mb: f64) -> String {
    if mb >= 1024.0 * 1024.0 {
        format!(
            "{} TB",
            quantity(((mb / (1024.0 * 1024.0)) * 10.0).round() / 10.0)
        )
    } else if mb >= 1024.0 {
        format!("{} GB", quantity(((mb / 1024.0) * 10.0).round() / 10.0))
    } else {
        format!("{} MB", quantity(mb))
    }
}

/// `yes`/`no` for a boolean field (`-` when absent).
pub fn yes_no(value: &Value, key: &str) -> String {
    match value.get(key).and_then(Value::as_bool) {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

/// A document as one line of JSON (what `--json` prints).
pub fn json_line(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_well() {
        assert_eq!(quantity(2.0), "2");
        assert_eq!(quantity(0.2), "0.2");
        assert_eq!(quantity(0.30000000000000004), "0.3");
        assert_eq!(megabytes(32.0), "32 MB");
        assert_eq!(megabytes(23081.0), "22.5 GB");
        assert_eq!(megabytes(0.0), "0 MB");
    }

    #[test]
    fn missing_fields_print_a_dash() {
        let v = json!({"a": "x", "n": 3, "e": "", "b": true});
        assert_eq!(text(&v, "a"), "x");
        assert_eq!(text(&v, "n"), "3");
        assert_eq!(text(&v, "e"), "-");
        assert_eq!(text(&v, "missing"), "-");
        assert_eq!(text(&json!([1]), "a"), "-");
        assert_eq!(yes_no(&v, "b"), "yes");
        assert_eq!(number(&v, "a"), 0.0);
        assert!(items(&v, "a").is_empty());
    }
}
