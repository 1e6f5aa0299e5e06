//! Resources and attributes: the wire form (`Resource`, `Attribute`, mesos-http-api.md 8.4), a
//! canonical bag (`ResourceBag`) with the arithmetic the master and allocator need, the
//! `--resources`/`--attributes` text forms, and the flattened object of `/state`.

use crate::serde_util;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Floating-point slack when comparing scalar amounts (Mesos keeps three decimal digits).
const SCALAR_EPSILON: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    Scalar,
    Ranges,
    Set,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    #[serde(
        deserialize_with = "serde_util::lenient_f64",
        serialize_with = "serde_util::ser_f64"
    )]
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(deserialize_with = "serde_util::lenient_u64")]
    pub begin: u64,
    #[serde(deserialize_with = "serde_util::lenient_u64")]
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ranges {
    #[serde(default)]
    pub range: Vec<Range>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValueSet {
    #[serde(default)]
    pub item: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AllocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// One resource on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<ValueSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<serde_json::Value>,
}

/// One attribute on the wire (`TEXT` is allowed here, unlike resources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<ValueSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource '{0}' is malformed: {1}")]
    Malformed(String, String),
    #[error("resource '{name}' has a negative or non-finite amount {value}")]
    BadAmount { name: String, value: f64 },
    #[error("resource '{name}' is a {found:?} here but a {expected:?} elsewhere")]
    TypeMismatch {
        name: String,
        expected: ValueType,
        found: ValueType,
    },
}

/// The amount of one named resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceValue {
    Scalar(f64),
    /// Disjoint, sorted, inclusive intervals.
    Ranges(Vec<(u64, u64)>),
    Set(BTreeSet<String>),
}

impl ResourceValue {
    fn kind(&self) -> ValueType {
        match self {
            ResourceValue::Scalar(_) => ValueType::Scalar,
            ResourceValue::Ranges(_) => ValueType::Ranges,
            ResourceValue::Set(_) => ValueType::Set,
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            ResourceValue::Scalar(v) => *v <= SCALAR_EPSILON,
            ResourceValue::Ranges(r) => r.is_empty(),
            ResourceValue::Set(s) => s.is_empty(),
        }
    }
}

/// Canonical, unreserved view of a set of resources: one value per name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceBag {
    values: BTreeMap<String, ResourceValue>,
}

fn normalize_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(b, e)| b <= e);
    ranges.sort();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (b, e) in ranges {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn subtract_ranges(have: &[(u64, u64)], take: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut b, e) in have {
        let mut alive = true;
        for &(tb, te) in take {
            if !alive || te < b || tb > e {
                continue;
            }
            if tb > b {
                out.push((b, tb - 1));
            }
            if te >= e {
                alive = false;
            } else {
                b = te + 1;
            }
        }
        if alive {
            out.push((b, e));
        }
    }
    normalize_ranges(out)
}

fn ranges_contain(have: &[(u64, u64)], want: &[(u64, u64)]) -> bool {
    want.iter()
        .all(|&(b, e)| have.iter().any(|&(hb, he)| hb <= b && e <= he))
}

impl ResourceBag {
    pub fn new() -> Self {
        ResourceBag::default()
    }

    pub fn is_empty(&self) -> bool {
        self.values.values().all(ResourceValue::is_empty)
    }

    pub fn get(&self, name: &str) -> Option<&ResourceValue> {
        self.values.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Scalar amount of `name`, 0 when absent or not a scalar.
    pub fn scalar(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(ResourceValue::Scalar(v)) => *v,
            _ => 0.0,
        }
    }

    pub fn ranges(&self, name: &str) -> Vec<(u64, u64)> {
        match self.values.get(name) {
            Some(ResourceValue::Ranges(r)) => r.clone(),
            _ => Vec::new(),
        }
    }

    pub fn set_scalar(&mut self, name: &str, value: f64) {
        self.values
            .insert(name.to_string(), ResourceValue::Scalar(value));
    }

    pub fn set_ranges(&mut self, name: &str, ranges: Vec<(u64, u64)>) {
        self.values.insert(
            name.to_string(),
            ResourceValue::Ranges(normalize_ranges(ranges)),
        );
    }

    pub fn add_value(&mut self, name: &str, value: ResourceValue) -> Result<(), ResourceError> {
        let entry = match self.values.get_mut(name) {
            None => {
                let value = match value {
                    ResourceValue::Ranges(r) => ResourceValue::Ranges(normalize_ranges(r)),
                    other => other,
                };
                self.values.insert(name.to_string(), value);
                return Ok(());
            }
            Some(entry) => entry,
        };
        match (entry, value) {
            (ResourceValue::Scalar(a), ResourceValue::Scalar(b)) => *a += b,
            (ResourceValue::Ranges(a), ResourceValue::Ranges(b)) => {
                let mut all = a.clone();
                all.extend(b);
                *a = normalize_ranges(all);
            }
            (ResourceValue::Set(a), ResourceValue::Set(b)) => a.extend(b),
            (entry, value) => {
                return Err(ResourceError::TypeMismatch {
                    name: name.to_string(),
                    expected: entry.kind(),
                    found: value.kind(),
                })
            }
        }
        Ok(())
    }

    /// `self + other`; a name of two different types keeps the first and is reported.
    pub fn add(&mut self, other: &ResourceBag) -> Result<(), ResourceError> {
        for (name, value) in &other.values {
            self.add_value(name, value.clone())?;
        }
        Ok(())
    }

    /// `self - other`, saturating at zero; callers check `contains` first where it matters.
    pub fn subtract(&mut self, other: &ResourceBag) {
        for (name, take) in &other.values {
            let Some(have) = self.values.get_mut(name) else {
                continue;
            };
            match (have, take) {
                (ResourceValue::Scalar(a), ResourceValue::Scalar(b)) => {
                    *a = (*a - b).max(0.0);
                    if *a < SCALAR_EPSILON {
                        *a = 0.0;
                    }
                }
                (ResourceValue::Ranges(a), ResourceValue::Ranges(b)) => *a = subtract_ranges(a, b),
                (ResourceValue::Set(a), ResourceValue::Set(b)) => a.retain(|i| !b.contains(i)),
                _ => {}
            }
        }
        self.values.retain(|_, v| !v.is_empty());
    }

    /// Whether every amount in `other` is available in `self`.
    pub fn contains(&self, other: &ResourceBag) -> bool {
        other.values.iter().all(|(name, want)| {
            if want.is_empty() {
                return true;
            }
            match (self.values.get(name), want) {
                (Some(ResourceValue::Scalar(a)), ResourceValue::Scalar(b)) => {
                    *a + SCALAR_EPSILON >= *b
                }
                (Some(ResourceValue::Ranges(a)), ResourceValue::Ranges(b)) => ranges_contain(a, b),
                (Some(ResourceValue::Set(a)), ResourceValue::Set(b)) => b.is_subset(a),
                _ => false,
            }
        })
    }

    /// The names in `other` that `self` cannot cover, for error messages.
    pub fn missing_from(&self, other: &ResourceBag) -> Vec<String> {
        other
            .values
            .iter()
            .filter(|(name, value)| {
                let mut one = ResourceBag::new();
                one.values.insert((*name).clone(), (*value).clone());
                !self.contains(&one)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Reads wire resources. Reservations are not modelled yet: every resource counts as unreserved.
    pub fn from_resources(resources: &[Resource]) -> Result<ResourceBag, ResourceError> {
        let mut bag = ResourceBag::new();
        for r in resources {
            let value = match r.kind {
                ValueType::Scalar => {
                    let v = r
                        .scalar
                        .as_ref()
                        .ok_or_else(|| {
                            ResourceError::Malformed(
                                r.name.clone(),
                                "SCALAR without 'scalar'".into(),
                            )
                        })?
                        .value;
                    if !v.is_finite() || v < 0.0 {
                        return Err(ResourceError::BadAmount {
                            name: r.name.clone(),
                            value: v,
                        });
                    }
                    ResourceValue::Scalar(v)
                }
                ValueType::Ranges => {
                    let ranges = r.ranges.as_ref().ok_or_else(|| {
                        ResourceError::Malformed(r.name.clone(), "RANGES without 'ranges'".into())
                    })?;
                    if let Some(bad) = ranges.range.iter().find(|x| x.begin > x.end) {
                        return Err(ResourceError::Malformed(
                            r.name.clone(),
                            format!("range [{}-{}] ends before it begins", bad.begin, bad.end),
                        ));
                    }
                    ResourceValue::Ranges(ranges.range.iter().map(|x| (x.begin, x.end)).collect())
                }
                ValueType::Set => ResourceValue::Set(
                    r.set
                        .as_ref()
                        .map(|s| s.item.iter().cloned().collect())
                        .unwrap_or_default(),
                ),
                ValueType::Text => {
                    return Err(ResourceError::Malformed(
                        r.name.clone(),
                        "TEXT is not a resource type".into(),
                    ))
                }
            };
            bag.add_value(&r.name, value)?;
        }
        Ok(bag)
    }

    /// Writes wire resources, each tagged with `allocation_info.role` when a role is given.
    pub fn to_resources(&self, allocation_role: Option<&str>) -> Vec<Resource> {
        self.values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, value)| {
                let mut r = Resource {
                    name: name.clone(),
                    kind: value.kind(),
                    scalar: None,
                    ranges: None,
                    set: None,
                    role: None,
                    allocation_info: allocation_role.map(|role| AllocationInfo {
                        role: Some(role.to_string()),
                    }),
                    reservations: None,
                };
                match value {
                    ResourceValue::Scalar(v) => r.scalar = Some(Scalar { value: round3(*v) }),
                    ResourceValue::Ranges(ranges) => {
                        r.ranges = Some(Ranges {
                            range: ranges
                                .iter()
                                .map(|&(begin, end)| Range { begin, end })
                                .collect(),
                        })
                    }
                    ResourceValue::Set(items) => {
                        r.set = Some(ValueSet {
                            item: items.iter().cloned().collect(),
                        })
                    }
                }
                r
            })
            .collect()
    }

    /// The flattened object of `/state` (mesos-http-api.md section 4): scalars summed per name with
    /// `cpus`, `gpus`, `mem`, `disk` always present; ranges and sets as strings.
    pub fn flatten(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for name in ["cpus", "gpus", "mem", "disk"] {
            out.insert(
                name.to_string(),
                serde_json::json!(round3(self.scalar(name))),
            );
        }
        for (name, value) in &self.values {
            let v = match value {
                ResourceValue::Scalar(v) => serde_json::json!(round3(*v)),
                ResourceValue::Ranges(r) => serde_json::Value::String(format_ranges(r)),
                ResourceValue::Set(s) => serde_json::Value::String(format!(
                    "{{{}}}",
                    s.iter().cloned().collect::<Vec<_>>().join(",")
                )),
            };
            out.insert(name.clone(), v);
        }
        out
    }

    /// Parses the `--resources` text form: `cpus:4;mem:1024;ports:[31000-32000];zones:{a,b}`,
    /// or a JSON array of wire resources. An optional `(role)` after the name is accepted and ignored.
    pub fn parse(text: &str) -> Result<ResourceBag, ResourceError> {
        let text = text.trim();
        if text.starts_with('[') && text.contains('{') && text.contains("\"name\"") {
            let resources: Vec<Resource> = serde_json::from_str(text)
                .map_err(|e| ResourceError::Malformed(text.to_string(), e.to_string()))?;
            return ResourceBag::from_resources(&resources);
        }
        let mut bag = ResourceBag::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once(':').ok_or_else(|| {
                ResourceError::Malformed(part.to_string(), "expected name:value".into())
            })?;
            let name = name.split('(').next().unwrap_or(name).trim();
            if name.is_empty() {
                return Err(ResourceError::Malformed(
                    part.to_string(),
                    "empty name".into(),
                ));
            }
            let value = parse_value(name, value.trim())?;
            if let ResourceValue::Scalar(v) = value {
                if !v.is_finite() || v < 0.0 {
                    return Err(ResourceError::BadAmount {
                        name: name.to_string(),
                        value: v,
                    });
                }
            }
            bag.add_value(name, value)?;
        }
        Ok(bag)
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn format_ranges(ranges: &[(u64, u64)]) -> String {
    let parts: Vec<String> = ranges.iter().map(|(b, e)| format!("{b}-{e}")).collect();
    format!("[{}]", parts.join(", "))
}

fn parse_value(name: &str, value: &str) -> Result<ResourceValue, ResourceError> {
    let malformed =
        |why: &str| ResourceError::Malformed(format!("{name}:{value}"), why.to_string());
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        let mut ranges = Vec::new();
        for piece in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (b, e) = piece
                .split_once('-')
                .ok_or_else(|| malformed("a range is begin-end"))?;
            let b: u64 = b
                .trim()
                .parse()
                .map_err(|_| malformed("range bounds are integers"))?;
            let e: u64 = e
                .trim()
                .parse()
                .map_err(|_| malformed("range bounds are integers"))?;
            if b > e {
                return Err(malformed("a range ends before it begins"));
            }
            ranges.push((b, e));
        }
        Ok(ResourceValue::Ranges(ranges))
    } else if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        Ok(ResourceValue::Set(
            inner
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    } else {
        value
            .parse::<f64>()
            .map(ResourceValue::Scalar)
            .map_err(|_| malformed("expected a number, [ranges] or {set}"))
    }
}

/// Parses `--attributes`: `rack:r1;level:10;ports:[1-2];zones:{a,b}`; values that are not numbers,
/// ranges or sets are text.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ResourceError> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once(':').ok_or_else(|| {
            ResourceError::Malformed(part.to_string(), "expected name:value".into())
        })?;
        let (name, value) = (name.trim().to_string(), value.trim());
        let mut attribute = Attribute {
            name: name.clone(),
            kind: ValueType::Text,
            scalar: None,
            ranges: None,
            set: None,
            text: None,
        };
        match parse_value(&name, value) {
            Ok(ResourceValue::Scalar(v)) => {
                attribute.kind = ValueType::Scalar;
                attribute.scalar = Some(Scalar { value: v });
            }
            Ok(ResourceValue::Ranges(r)) => {
                attribute.kind = ValueType::Ranges;
                attribute.ranges = Some(Ranges {
                    range: r
                        .into_iter()
                        .map(|(begin, end)| Range { begin, end })
                        .collect(),
                });
            }
            Ok(ResourceValue::Set(s)) => {
                attribute.kind = ValueType::Set;
                attribute.set = Some(ValueSet {
                    item: s.into_iter().collect(),
                });
            }
            Err(_) => {
                attribute.text = Some(Text {
                    value: value.to_string(),
                })
            }
        }
        out.push(attribute);
    }
    Ok(out)
}

/// Attributes as the flattened object of `/state`: `{"rack":"r1","level":10.0}`.
pub fn flatten_attributes(attributes: &[Attribute]) -> serde_json::Map<String, serde_json::Value> {
    attributes
        .iter()
        .map(|a| {
            let v = match a.kind {
                ValueType::Scalar => {
                    serde_json::json!(a.scalar.as_ref().map(|s| s.value).unwrap_or(0.0))
                }
                ValueType::Text => {
                    serde_json::json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())
                }
                ValueType::Ranges => serde_json::json!(format_ranges(
                    &a.ranges
                        .as_ref()
                        .map(|r| r.range.iter().map(|x| (x.begin, x.end)).collect::<Vec<_>>())
                        .unwrap_or_default()
                )),
                ValueType::Set => serde_json::json!(format!(
                    "{{{}}}",
                    a.set.as_ref().map(|s| s.item.join(",")).unwrap_or_default()
                )),
            };
            (a.name.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_flatten_agent_resources() {
        let bag = ResourceBag::parse("cpus:4;mem:1024;disk:2048;ports:[31000-32000]").unwrap();
        let flat = bag.flatten();
        assert_eq!(flat["cpus"], 4.0);
        assert_eq!(flat["gpus"], 0.0);
        assert_eq!(flat["ports"], "[31000-32000]");
    }

    #[test]
    fn arithmetic_on_scalars_and_ranges() {
        let total = ResourceBag::parse("cpus:4;mem:1024;ports:[31000-31010]").unwrap();
        let used = ResourceBag::parse("cpus:1.5;ports:[31002-31003]").unwrap();
        assert!(total.contains(&used));
        let mut free = total.clone();
        free.subtract(&used);
        assert_eq!(free.scalar("cpus"), 2.5);
        assert_eq!(free.ranges("ports"), vec![(31000, 31001), (31004, 31010)]);
        assert!(!free.contains(&used));
        assert_eq!(free.missing_from(&used), vec!["ports".to_string()]);
        free.add(&used).unwrap();
        assert_eq!(free, total);
    }

    #[test]
    fn wire_round_trip_and_validation() {
        let bag = ResourceBag::parse("cpus:0.5;ports:[31005-31005]").unwrap();
        let wire = bag.to_resources(Some("*"));
        assert_eq!(ResourceBag::from_resources(&wire).unwrap(), bag);
        let json = serde_json::to_value(&wire[0]).unwrap();
        assert_eq!(json["type"], "SCALAR");
        assert_eq!(json["allocation_info"]["role"], "*");
        assert!(ResourceBag::parse("cpus:-1").is_err());
        assert!(ResourceBag::parse("cpus").is_err());
        assert!(ResourceBag::parse("ports:[9-1]").is_err());
    }

    #[test]
    fn attributes_parse_by_shape() {
        let attrs = parse_attributes("rack:r1;level:10").unwrap();
        let flat = flatten_attributes(&attrs);
        assert_eq!(flat["rack"], "r1");
        assert_eq!(flat["level"], 10.0);
    }
}
