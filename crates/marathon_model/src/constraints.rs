//! Placement constraints (marathon-api.md §2 `constraints`): the typed form of a
//! `[field, OP, value?]` list, its validation rules, and pure evaluation against an
//! offer and the agents where the app's instances already run.
//!
//! Evaluation follows Marathon's `Constraints.meetsConstraint`: the field is
//! `hostname`/`@hostname` (the agent's hostname), `@region`/`@zone` (its fault
//! domain) or an agent attribute. An offer lacking the field satisfies only `UNLIKE`.
//! Scalar attributes compare as text formatted without a trailing `.0` (`rack:1` →
//! `"1"`), and `IS` compares scalars numerically. A failed check returns a
//! human-readable reason for `/v2/queue`.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// Compiled-size limit for LIKE/UNLIKE patterns (bytes), against pathological input.
pub const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl Operator {
    pub const ALL: [(&'static str, Operator); 7] = [
        ("UNIQUE", Operator::Unique),
        ("CLUSTER", Operator::Cluster),
        ("GROUP_BY", Operator::GroupBy),
        ("LIKE", Operator::Like),
        ("UNLIKE", Operator::Unlike),
        ("MAX_PER", Operator::MaxPer),
        ("IS", Operator::Is),
    ];

    /// Parse an operator name (case-insensitive).
    pub fn parse(s: &str) -> Option<Operator> {
        let up = s.to_uppercase();
        Operator::ALL
            .iter()
            .find(|(n, _)| *n == up)
            .map(|(_, o)| *o)
    }

    pub fn as_str(self) -> &'static str {
        Operator::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }
}

/// Why a constraint list is not a valid constraint (422 at `/constraints(i)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("Each constraint must have either 2 or 3 fields")]
    Arity,
    #[error("Constraint operator must be one of the following: [UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS], got '{0}'")]
    UnknownOperator(String),
    #[error("Value was specified but is not used with the {0} operator")]
    ValueNotAllowed(&'static str),
    #[error("A value is required with the {0} operator")]
    ValueRequired(&'static str),
    #[error("'{0}' is not a valid regular expression")]
    InvalidRegex(String),
    #[error("Value '{0}' is not an integer")]
    NotAnInteger(String),
    #[error("Value '{0}' must match ^[a-zA-Z0-9_/.-]*$ for the IS operator")]
    InvalidIsValue(String),
}

/// One checked constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub field: String,
    pub operator: Operator,
    pub value: Option<String>,
    /// Anchored pattern for LIKE/UNLIKE.
    pattern: Option<Regex>,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Constraint) -> bool {
        (&self.field, self.operator, &self.value) == (&other.field, other.operator, &other.value)
    }
}

fn compile(pattern: &str) -> Result<Regex, ConstraintError> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT_BYTES)
        .build()
        .map_err(|_| ConstraintError::InvalidRegex(pattern.to_string()))
}

impl Constraint {
    /// Check and type `[field, OP, value?]` (per-operator value rules of §2).
    pub fn from_parts(parts: &[String]) -> Result<Constraint, ConstraintError> {
        let (field, op, value) = match parts {
            [f, o] => (f, o, None),
            [f, o, v] => (f, o, Some(v.clone())),
            _ => return Err(ConstraintError::Arity),
        };
        let operator =
            Operator::parse(op).ok_or_else(|| ConstraintError::UnknownOperator(op.clone()))?;
        let name = operator.as_str();
        let mut pattern = None;
        match (operator, value.as_deref()) {
            (Operator::Unique, Some(_)) => return Err(ConstraintError::ValueNotAllowed(name)),
            (Operator::Unique | Operator::Cluster | Operator::GroupBy, None) => {}
            (Operator::Cluster, Some(_)) => {}
            (Operator::GroupBy, Some(v)) => {
                v.parse::<u32>()
                    .map_err(|_| ConstraintError::NotAnInteger(v.to_string()))?;
            }
            (Operator::MaxPer, Some(v)) => {
                v.parse::<u32>()
                    .map_err(|_| ConstraintError::NotAnInteger(v.to_string()))?;
            }
            (Operator::Like | Operator::Unlike, Some(v)) => pattern = Some(compile(v)?),
            (Operator::Is, Some(v)) => {
                let ok = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_/.-".contains(&b));
                if !ok {
                    return Err(ConstraintError::InvalidIsValue(v.to_string()));
                }
            }
            (Operator::Like | Operator::Unlike | Operator::MaxPer | Operator::Is, None) => {
                return Err(ConstraintError::ValueRequired(name))
            }
        }
        Ok(Constraint {
            field: field.clone(),
            operator,
            value,
            pattern,
        })
    }

    /// The wire form `[field, OP, value?]`.
    pub fn to_parts(&self) -> Vec<String> {
        let mut v = vec![self.field.clone(), self.operator.as_str().to_string()];
        v.extend(self.value.clone());
        v
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}", self.field, self.operator.as_str())?;
        if let Some(v) = &self.value {
            write!(f, ", {v}")?;
        }
        f.write_str("]")
    }
}

/// An agent attribute value (Mesos TEXT or SCALAR).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Text(String),
    Scalar(f64),
}

impl AttrValue {
    /// Text form used for comparisons (`1.0` → `"1"`).
    pub fn as_text(&self) -> String {
        match self {
            AttrValue::Text(s) => s.clone(),
            AttrValue::Scalar(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            AttrValue::Scalar(f) => format!("{f}"),
        }
    }
}

/// What constraints look at on an agent: an offer's, or where an instance runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentInfo {
    pub hostname: String,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub attributes: BTreeMap<String, AttrValue>,
}

impl AgentInfo {
    /// The value of a constraint field on this agent, `None` when it has none.
    pub fn field_value(&self, field: &str) -> Option<String> {
        match field {
            "hostname" | "@hostname" => Some(self.hostname.clone()),
            "@region" => self.region.clone(),
            "@zone" => self.zone.clone(),
            attr => self.attributes.get(attr).map(AttrValue::as_text),
        }
    }
}

/// A constraint an offer does not meet, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("constraint {constraint} not satisfied: {reason}")]
pub struct Unmet {
    pub constraint: Constraint,
    pub reason: String,
}

/// Whether a new instance may be placed on `offer`, given the agents of the app's
/// existing instances (one entry per instance). Returns the first unmet constraint.
pub fn check(
    constraints: &[Constraint],
    offer: &AgentInfo,
    placed: &[AgentInfo],
) -> Result<(), Unmet> {
    for c in constraints {
        c.is_met(offer, placed).map_err(|reason| Unmet {
            constraint: c.clone(),
            reason,
        })?;
    }
    Ok(())
}

impl Constraint {
    /// Evaluate this constraint alone; `Err(reason)` when not met.
    pub fn is_met(&self, offer: &AgentInfo, placed: &[AgentInfo]) -> Result<(), String> {
        let field = &self.field;
        let Some(ov) = offer.field_value(field) else {
            return if self.operator == Operator::Unlike {
                Ok(())
            } else {
                Err(format!(
                    "agent {} has no value for field '{field}'",
                    offer.hostname
                ))
            };
        };
        let same = || {
            placed
                .iter()
                .filter(|a| a.field_value(field).as_deref() == Some(ov.as_str()))
                .count()
        };
        match self.operator {
            Operator::Unique => match same() {
                0 => Ok(()),
                n => Err(format!(
                    "{n} instance(s) already placed where {field} is '{ov}'"
                )),
            },
            Operator::Cluster => {
                let target = self
                    .value
                    .clone()
                    .or_else(|| placed.iter().find_map(|a| a.field_value(field)));
                match target {
                    Some(t) if t != ov => Err(format!(
                        "{field} is '{ov}', instances must run where it is '{t}'"
                    )),
                    _ => Ok(()),
                }
            }
            Operator::GroupBy => {
                let minimum: usize = self
                    .value
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut groups: BTreeMap<String, usize> = BTreeMap::new();
                for v in placed.iter().filter_map(|a| a.field_value(field)) {
                    *groups.entry(v).or_default() += 1;
                }
                let min_count = groups.values().copied().min().unwrap_or(0);
                match groups.get(&ov) {
                    None => Ok(()),
                    Some(&n) if groups.len() >= minimum && n == min_count => Ok(()),
                    Some(&n) if groups.len() < minimum => Err(format!(
                        "{field} '{ov}' already has {n} instance(s); {} of {minimum} groups used, waiting for a new group",
                        groups.len()
                    )),
                    Some(&n) => Err(format!(
                        "{field} '{ov}' has {n} instance(s), more than the smallest group ({min_count})"
                    )),
                }
            }
            Operator::Like | Operator::Unlike => {
                let want = self.operator == Operator::Like;
                let value = self.value.as_deref().unwrap_or("");
                let matched = match &self.pattern {
                    Some(p) => p.is_match(&ov),
                    None => compile(value).map(|p| p.is_match(&ov)).unwrap_or(false),
                };
                match (want, matched) {
                    (true, false) => Err(format!("{field} '{ov}' does not match '{value}'")),
                    (false, true) => Err(format!("{field} '{ov}' matches '{value}'")),
                    _ => Ok(()),
                }
            }
            Operator::MaxPer => {
                let max: usize = self
                    .value
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                match same() {
                    n if n < max => Ok(()),
                    n => Err(format!(
                        "{n} instance(s) already placed where {field} is '{ov}' (max {max})"
                    )),
                }
            }
            Operator::Is => {
                let value = self.value.as_deref().unwrap_or("");
                let equal = match (field.as_str(), offer.attributes.get(field)) {
                    ("hostname" | "@hostname" | "@region" | "@zone", _) => ov == value,
                    (_, Some(AttrValue::Scalar(f))) => {
                        value.parse::<f64>().is_ok_and(|v| (v - f).abs() < 1e-9)
                    }
                    _ => ov == value,
                };
                if equal {
                    Ok(())
                } else {
                    Err(format!("{field} is '{ov}', not '{value}'"))
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "constraints_tests.rs"]
mod tests;
