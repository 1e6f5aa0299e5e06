//! A strict reader of the text format, for tests: it accepts only what a careful exposition
//! contains, so a test that reads a server's `/metrics/prometheus` with it checks the format, not
//! just that some numbers are there.
//!
//! Accepted: `# HELP name text` and `# TYPE name kind` (at most one each per family, both before
//! its first sample, the TYPE line required), and samples `name value` without labels or
//! timestamps. Rejected: any other comment, blank lines, a family that reappears after another
//! began, a duplicate sample name, an invalid name, a value that is not a format float, and text
//! that does not end with a line feed.

use std::collections::{HashMap, HashSet};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StrictError {
    #[error("line {line}: {reason}: {text:?}")]
    Line {
        line: usize,
        reason: &'static str,
        text: String,
    },
    #[error("the text does not end with a line feed")]
    NoFinalNewline,
}

/// What was read: each sample's value and each family's kind.
#[derive(Debug, Default)]
pub struct Samples {
    pub values: Vec<(String, f64)>,
    pub kinds: HashMap<String, String>,
}

impl Samples {
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    pub fn kind(&self, name: &str) -> Option<&str> {
        self.kinds.get(name).map(String::as_str)
    }

    /// Checks an exposition against the `/metrics/snapshot` of the same process: every snapshot
    /// key is present under its Mesos name, each key in `exact` has the snapshot's value, and the
    /// process block is there. What servers' tests assert of `/metrics/prometheus`.
    pub fn check_against_snapshot<'a>(
        &self,
        snapshot: impl IntoIterator<Item = (&'a str, Option<f64>)>,
        exact: &[&str],
    ) -> Result<(), String> {
        let snapshot: Vec<(&str, Option<f64>)> = snapshot.into_iter().collect();
        for (key, value) in &snapshot {
            let name = crate::mesos::name(key);
            let sample = self.value(&name).ok_or_else(|| format!("{name} missing"))?;
            if exact.contains(key) && Some(sample) != *value {
                return Err(format!("{name} is {sample}, the snapshot says {value:?}"));
            }
        }
        if let Some(key) = exact
            .iter()
            .find(|key| !snapshot.iter().any(|(k, _)| k == *key))
        {
            return Err(format!("{key} is not in the snapshot"));
        }
        for name in [
            "process_start_time_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            if self.value(name).unwrap_or_default() <= 0.0 {
                return Err(format!("{name} missing or not positive"));
            }
        }
        Ok(())
    }
}

/// Whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A format float: `NaN`, `+Inf`, `-Inf` or a decimal (Rust's `inf`/`infinity` spellings are not
/// the format's, so only digits, signs, `.` and exponents pass to the number parser).
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

pub fn parse(text: &str) -> Result<Samples, StrictError> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(StrictError::NoFinalNewline);
    }
    let mut samples = Samples::default();
    let mut helped = HashSet::new();
    let mut seen_samples = HashSet::new();
    let mut finished_families = HashSet::new();
    let mut current: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let fail = |reason| StrictError::Line {
            line: index + 1,
            reason,
            text: line.to_string(),
        };
        // `rest` is Some((keyword, text)) for a comment, None for a sample.
        let (name, rest) = match line.strip_prefix("# ") {
            Some(comment) => {
                let mut parts = comment.splitn(3, ' ');
                let keyword = parts.next().unwrap_or_default();
                let name = parts
                    .next()
                    .ok_or_else(|| fail("comment without a metric name"))?;
                (name, Some((keyword, parts.next())))
            }
            None => (
                line.split_once(' ')
                    .ok_or_else(|| fail("sample without a value"))?
                    .0,
                None,
            ),
        };
        if !is_valid_name(name) {
            return Err(fail("invalid metric name"));
        }
        if current.as_deref() != Some(name) {
            if finished_families.contains(name) {
                return Err(fail("family appears again after another began"));
            }
            if let Some(previous) = current.replace(name.to_string()) {
                finished_families.insert(previous);
            }
        }
        match rest {
            Some(("HELP", _)) => {
                if !helped.insert(name.to_string()) {
                    return Err(fail("second HELP line"));
                }
                if seen_samples.contains(name) {
                    return Err(fail("HELP after samples"));
                }
            }
            Some(("TYPE", kind)) => {
                let kind = kind.ok_or_else(|| fail("TYPE without a kind"))?;
                if !["counter", "gauge", "untyped", "summary", "histogram"].contains(&kind) {
                    return Err(fail("unknown TYPE"));
                }
                if seen_samples.contains(name) {
                    return Err(fail("TYPE after samples"));
                }
                if samples
                    .kinds
                    .insert(name.to_string(), kind.to_string())
                    .is_some()
                {
                    return Err(fail("second TYPE line"));
                }
            }
            Some(_) => return Err(fail("comment that is neither HELP nor TYPE")),
            None => {
                let value = &line[name.len() + 1..];
                if !samples.kinds.contains_key(name) {
                    return Err(fail("sample before its TYPE line"));
                }
                if !seen_samples.insert(name.to_string()) {
                    return Err(fail("duplicate sample name"));
                }
                let value = parse_value(value).ok_or_else(|| fail("value is not a float"))?;
                samples.values.push((name.to_string(), value));
            }
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> &'static str {
        match parse(text) {
            Err(StrictError::Line { reason, .. }) => reason,
            other => panic!("expected a line error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_good_exposition_reads() {
        let samples =
            parse("# HELP a x y\n# TYPE a gauge\na 1.5\n# TYPE b counter\nb -Inf\n").unwrap();
        assert_eq!(samples.value("a"), Some(1.5));
        assert_eq!(samples.value("b"), Some(f64::NEG_INFINITY));
        assert_eq!(samples.kind("a"), Some("gauge"));
        assert_eq!(parse("").unwrap().values.len(), 0);
    }

    #[test]
    fn what_a_careful_exposition_never_holds_is_refused() {
        assert_eq!(reason("a 1\n"), "sample before its TYPE line");
        assert_eq!(
            reason("# TYPE a gauge\na 1\na 2\n"),
            "duplicate sample name"
        );
        assert_eq!(
            reason("# TYPE a gauge\n# TYPE a gauge\n"),
            "second TYPE line"
        );
        assert_eq!(
            reason("# TYPE a gauge\na 1\n# HELP a late\n"),
            "HELP after samples"
        );
        assert_eq!(
            reason("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n"),
            "family appears again after another began"
        );
        assert_eq!(reason("# TYPE a kind\n"), "unknown TYPE");
        assert_eq!(reason("# TYPE 1a gauge\n"), "invalid metric name");
        assert_eq!(reason("# TYPE a/b gauge\n"), "invalid metric name");
        assert_eq!(reason("# TYPE a gauge\na inf\n"), "value is not a float");
        assert_eq!(
            reason("# TYPE a gauge\na{x=\"1\"} 1\n"),
            "invalid metric name"
        );
        assert_eq!(
            reason("# a comment\n"),
            "comment that is neither HELP nor TYPE"
        );
        assert_eq!(reason("\n"), "sample without a value");
        assert_eq!(
            parse("# TYPE a gauge\na 1").unwrap_err(),
            StrictError::NoFinalNewline
        );
    }
}
