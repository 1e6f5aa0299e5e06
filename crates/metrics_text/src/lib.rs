//! Metrics in the Prometheus text exposition format, version 0.0.4, written once for every server
//! (master, agent, Marathon) so `/metrics/prometheus` reads the same everywhere.
//!
//! What: [`render`] is a pure function from a list of [`Metric`]s (name, kind, help, labels, value)
//! to the text a Prometheus server scrapes; [`mesos`] turns `/metrics/snapshot` keys into names and
//! kinds; [`process`] reads the standard `process_*` figures from `/proc/self`; [`strict`] is a
//! strict reader of the format that the servers' tests use to check what they serve.
//!
//! Why one crate: the format has sharp edges (escaping, `NaN`/`+Inf`, one `# TYPE` per family, no
//! duplicate series) that are easy to get subtly wrong three times.

pub mod mesos;
pub mod process;
pub mod strict;

/// The `Content-Type` of the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up while the process lives (restarts reset it).
    Counter,
    /// A value that can go up and down.
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One sample and what its family says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Metric {
    /// A sample without labels; `name` is made valid with [`metric_name`].
    pub fn new(name: &str, kind: Kind, help: impl Into<String>, value: f64) -> Self {
        Metric {
            name: metric_name(name),
            kind,
            help: help.into(),
            labels: Vec::new(),
            value,
        }
    }

    pub fn with_label(mut self, name: &str, value: impl Into<String>) -> Self {
        self.labels.push((label_name(name), value.into()));
        self
    }
}

/// A valid metric name: every character outside `[a-zA-Z0-9_:]` becomes `_`, and a name that
/// would start with a digit (or be empty) gets a leading `_` (names match
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn metric_name(raw: &str) -> String {
    sanitize(raw, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`; no `:` in label names).
pub fn label_name(raw: &str) -> String {
    sanitize(raw, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitize(raw: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `# HELP` text escapes only backslash and line feed (exposition format 0.0.4).
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
pub fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A value as the format writes floats: `NaN`, `+Inf`, `-Inf`, or a decimal that parses back to
/// the same number (exponent form for very large or very small magnitudes).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if value == 0.0 || (1e-5..1e15).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// What a server answers on `/metrics/prometheus`: its own `metrics` and the `process_*` block.
pub fn exposition(mut metrics: Vec<Metric>) -> String {
    metrics.extend(process::metrics());
    render(&metrics)
}

/// The text of `metrics`: families sorted by name, each with one `# HELP` and one `# TYPE` line
/// before its samples, samples sorted by labels, so scrapes diff cleanly whatever order the
/// caller collected them in. Names and label names are made valid first; of two samples with the
/// same name and labels the first given wins (a duplicate series is invalid), and a family's help
/// and kind are those of its first sample given.
pub fn render(metrics: &[Metric]) -> String {
    // One series: valid name, valid labels, index into `metrics`.
    type Series = (String, Vec<(String, String)>, usize);
    let mut rows: Vec<Series> = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let labels = m
                .labels
                .iter()
                .map(|(k, v)| (label_name(k), v.clone()))
                .collect();
            (metric_name(&m.name), labels, i)
        })
        .collect();
    // Sorting on (name, labels, input index) keeps the first-given sample first among equals.
    rows.sort();
    let mut out = String::new();
    let mut family: Option<&str> = None;
    let mut last_series: Option<(&str, &[(String, String)])> = None;
    for (name, labels, index) in &rows {
        if last_series == Some((name.as_str(), labels.as_slice())) {
            continue;
        }
        last_series = Some((name.as_str(), labels.as_slice()));
        let metric = &metrics[*index];
        if family != Some(name.as_str()) {
            family = Some(name.as_str());
            // An empty help text leaves no trailing blank.
            match metric.help.as_str() {
                "" => out.push_str(&format!("# HELP {name}\n")),
                help => out.push_str(&format!("# HELP {name} {}\n", escape_help(help))),
            }
            out.push_str(&format!("# TYPE {name} {}\n", metric.kind.as_str()));
        }
        out.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                .collect();
            out.push_str(&format!("{{{}}}", pairs.join(",")));
        }
        out.push(' ');
        out.push_str(&format_value(metric.value));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_allowed_characters_and_replace_the_rest() {
        assert_eq!(metric_name("master/tasks_running"), "master_tasks_running");
        assert_eq!(
            metric_name("marathon.apps.active.gauge"),
            "marathon_apps_active_gauge"
        );
        assert_eq!(metric_name("a:b-c d/é"), "a:b_c_d__");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(metric_name(""), "_");
        assert_eq!(label_name("a:b"), "a_b");
    }

    #[test]
    fn help_and_label_values_are_escaped() {
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
        assert_eq!(escape_label_value("a\\b\nc \"q\""), "a\\\\b\\nc \\\"q\\\"");
        let text = render(&[Metric::new("m", Kind::Gauge, "line\none \\ two", 1.0)
            .with_label("path", "C:\\x\"y\"\n")]);
        assert_eq!(
            text,
            "# HELP m line\\none \\\\ two\n# TYPE m gauge\nm{path=\"C:\\\\x\\\"y\\\"\\n\"} 1\n"
        );
    }

    #[test]
    fn values_render_as_prometheus_floats() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-2.5), "-2.5");
        assert_eq!(format_value(1e300), "1e300");
        assert_eq!(format_value(1.5e-7), "1.5e-7");
        for v in [0.1, 123456.789, 1e300, 1.5e-7, -3.25e20, 17179869184.0] {
            assert_eq!(format_value(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn output_is_sorted_and_independent_of_input_order() {
        let a = Metric::new("b_total", Kind::Counter, "b", 2.0);
        let b = Metric::new("a", Kind::Gauge, "a", 1.0);
        let c = Metric::new("c", Kind::Gauge, "c", 3.0).with_label("x", "2");
        let d = Metric::new("c", Kind::Gauge, "c", 4.0).with_label("x", "1");
        let one = render(&[a.clone(), b.clone(), c.clone(), d.clone()]);
        let two = render(&[d, c, b, a]);
        assert_eq!(one, two);
        assert_eq!(
            one,
            "# HELP a a\n# TYPE a gauge\na 1\n\
             # HELP b_total b\n# TYPE b_total counter\nb_total 2\n\
             # HELP c c\n# TYPE c gauge\nc{x=\"1\"} 4\nc{x=\"2\"} 3\n"
        );
    }

    #[test]
    fn a_duplicate_series_keeps_the_first_given() {
        // `a/b` and `a_b` collide once made valid.
        let text = render(&[
            Metric::new("a/b", Kind::Counter, "first", 1.0),
            Metric::new("a_b", Kind::Gauge, "second", 2.0),
        ]);
        assert_eq!(text, "# HELP a_b first\n# TYPE a_b counter\na_b 1\n");
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn rendered_text_passes_the_strict_reader() {
        let text = render(&[
            Metric::new("x", Kind::Gauge, "", f64::NAN),
            Metric::new("y", Kind::Counter, "h", f64::INFINITY),
        ]);
        let samples = strict::parse(&text).unwrap();
        assert!(samples.value("x").unwrap().is_nan());
        assert_eq!(samples.value("y"), Some(f64::INFINITY));
        assert_eq!(samples.kind("y"), Some("counter"));
    }
}
