//! App and group ids (`PathId`): parsing, resolution and the "safe id" form.
//!
//! Rules from marathon-api.md §2 "Id rules" and §1 "Ids in URLs": an id is a path of
//! segments separated by `/`; every segment matches [`SEGMENT_PATTERN`]; `.` and `..`
//! are resolved against a base; relative ids become absolute; `//` collapses and a
//! trailing `/` is dropped. App ids additionally may not be the root and may not end
//! in a reserved word (`restart`, `tasks`, `versions`).
//!
//! A `PathId` is always absolute and always valid: the only way to build one is through
//! the checked constructors here.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The segment regex of marathon-api.md §2, quoted in error messages.
pub const SEGMENT_PATTERN: &str =
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$";

/// Last segments an app id may not have (they are URL suffixes, marathon-api.md §2).
pub const RESERVED_LAST_SEGMENTS: [&str; 3] = ["restart", "tasks", "versions"];

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A segment does not match [`SEGMENT_PATTERN`].
    #[error("must fully match regular expression '{SEGMENT_PATTERN}' (segment '{0}')")]
    InvalidSegment(String),
    /// `..` climbed above the root.
    #[error("path '{0}' escapes the root group")]
    EscapesRoot(String),
    /// An app id resolved to the root group `/`.
    #[error("the root group '/' is not a valid app id")]
    Root,
    /// An app id ends in `restart`, `tasks` or `versions`.
    #[error("must not end with /{0}: it is a reserved path")]
    Reserved(String),
}

/// An absolute, validated path id such as `/prod/web`; the root is `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PathId {
    segments: Vec<String>,
}

/// Whether `s` is one valid segment (same language as [`SEGMENT_PATTERN`]): labels of
/// `[a-z0-9-]` separated by single dots, no label empty or starting/ending with `-`.
pub fn is_valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl PathId {
    /// The root group `/`.
    pub fn root() -> PathId {
        PathId::default()
    }

    /// Parse `s`, resolving a relative path against the root.
    pub fn parse(s: &str) -> Result<PathId, IdError> {
        PathId::parse_relative_to(s, &PathId::root())
    }

    /// Parse `s`; a relative `s` (no leading `/`) is resolved against `base`. `.` is
    /// skipped, `..` pops a segment, empty segments (`//`, trailing `/`) vanish.
    pub fn parse_relative_to(s: &str, base: &PathId) -> Result<PathId, IdError> {
        let mut segments = if s.starts_with('/') {
            Vec::new()
        } else {
            base.segments.clone()
        };
        for seg in s.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(IdError::EscapesRoot(s.to_string()));
                    }
                }
                other if is_valid_segment(other) => segments.push(other.to_string()),
                other => return Err(IdError::InvalidSegment(other.to_string())),
            }
        }
        Ok(PathId { segments })
    }

    /// Parse an app id: like [`PathId::parse_relative_to`], and the result must not be
    /// the root nor end in a reserved segment.
    pub fn parse_app_id(s: &str, base: &PathId) -> Result<PathId, IdError> {
        let id = PathId::parse_relative_to(s, base)?;
        id.check_app_id()?;
        Ok(id)
    }

    /// Check the app-only rules (not root, no reserved last segment).
    pub fn check_app_id(&self) -> Result<(), IdError> {
        match self.segments.last() {
            None => Err(IdError::Root),
            Some(last) if RESERVED_LAST_SEGMENTS.contains(&last.as_str()) => {
                Err(IdError::Reserved(last.clone()))
            }
            Some(_) => Ok(()),
        }
    }

    /// The segments, outermost first; empty for the root.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether this is the root group `/`.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The enclosing group; the root's parent is the root.
    pub fn parent(&self) -> PathId {
        let mut segments = self.segments.clone();
        segments.pop();
        PathId { segments }
    }

    /// The last segment (`web` for `/prod/web`); `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// `self` with one more segment.
    pub fn child(&self, segment: &str) -> Result<PathId, IdError> {
        if !is_valid_segment(segment) {
            return Err(IdError::InvalidSegment(segment.to_string()));
        }
        let mut segments = self.segments.clone();
        segments.push(segment.to_string());
        Ok(PathId { segments })
    }

    /// All enclosing groups, root first, excluding `self` (`/a/b/c` → `/`, `/a`, `/a/b`).
    pub fn ancestors(&self) -> Vec<PathId> {
        (0..self.segments.len())
            .map(|n| PathId {
                segments: self.segments[..n].to_vec(),
            })
            .collect()
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &PathId) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// The id without its leading `/` and with `/` turned into `_` (`/prod/web` →
    /// `prod_web`), the prefix of task ids (marathon-api.md §5).
    pub fn safe_id(&self) -> String {
        self.segments.join("_")
    }

    /// Invert [`PathId::safe_id`]. Exact because `_` is not allowed in segments.
    pub fn from_safe_id(safe: &str) -> Result<PathId, IdError> {
        let id = PathId::parse(&format!("/{}", safe.replace('_', "/")))?;
        if safe.is_empty() || id.segments.len() != safe.split('_').count() {
            // `a__b` or `_a` would collapse silently; refuse them.
            return Err(IdError::InvalidSegment(safe.to_string()));
        }
        Ok(id)
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for seg in &self.segments {
            write!(f, "/{seg}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PathId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<PathId, IdError> {
        PathId::parse(s)
    }
}

impl Serialize for PathId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PathId, D::Error> {
        let s = String::deserialize(d)?;
        PathId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathId {
        PathId::parse(s).unwrap()
    }

    #[test]
    fn segments_follow_the_regex() {
        for ok in ["a", "a1", "a-b", "a.b", "a-1.b-2.c", "0", "1-2"] {
            assert!(is_valid_segment(ok), "{ok}");
        }
        for bad in [
            "", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "a b", "é", "a.-b",
        ] {
            assert!(!is_valid_segment(bad), "{bad}");
        }
    }

    #[test]
    fn relative_ids_resolve_against_base() {
        assert_eq!(p("hello2").to_string(), "/hello2");
        let base = p("/prod");
        assert_eq!(
            PathId::parse_relative_to("web", &base).unwrap().to_string(),
            "/prod/web"
        );
        assert_eq!(
            PathId::parse_relative_to("./web", &base)
                .unwrap()
                .to_string(),
            "/prod/web"
        );
        assert_eq!(
            PathId::parse_relative_to("../dev/web", &base)
                .unwrap()
                .to_string(),
            "/dev/web"
        );
        assert_eq!(
            PathId::parse_relative_to("/x", &base).unwrap().to_string(),
            "/x"
        );
        assert!(matches!(
            PathId::parse_relative_to("../..", &base),
            Err(IdError::EscapesRoot(_))
        ));
    }

    #[test]
    fn slashes_collapse_and_trailing_slash_is_dropped() {
        assert_eq!(p("//prod//web/").to_string(), "/prod/web");
        assert_eq!(p("/").to_string(), "/");
        assert!(p("/").is_root());
    }

    #[test]
    fn invalid_and_reserved_ids_are_refused() {
        assert!(matches!(PathId::parse("/Prod"), Err(IdError::InvalidSegment(s)) if s == "Prod"));
        assert!(matches!(
            PathId::parse("/a_b"),
            Err(IdError::InvalidSegment(_))
        ));
        let root = PathId::root();
        for r in ["/a/restart", "/tasks", "x/versions"] {
            assert!(
                matches!(PathId::parse_app_id(r, &root), Err(IdError::Reserved(_))),
                "{r}"
            );
        }
        assert_eq!(PathId::parse_app_id("/", &root), Err(IdError::Root));
        assert!(PathId::parse_app_id("/tasks/x", &root).is_ok());
    }

    #[test]
    fn parent_children_and_ancestors() {
        let id = p("/a/b/c");
        assert_eq!(id.parent(), p("/a/b"));
        assert_eq!(PathId::root().parent(), PathId::root());
        assert_eq!(id.name(), Some("c"));
        assert_eq!(p("/a").child("b").unwrap(), p("/a/b"));
        assert!(p("/a").child("B").is_err());
        let anc: Vec<String> = id.ancestors().iter().map(|a| a.to_string()).collect();
        assert_eq!(anc, ["/", "/a", "/a/b"]);
        assert!(id.starts_with(&p("/a")));
        assert!(!p("/ab").starts_with(&p("/a")));
    }

    #[test]
    fn safe_ids_round_trip() {
        assert_eq!(p("/prod/web").safe_id(), "prod_web");
        assert_eq!(p("/my.app").safe_id(), "my.app");
        assert_eq!(PathId::from_safe_id("prod_web").unwrap(), p("/prod/web"));
        assert!(PathId::from_safe_id("").is_err());
        assert!(PathId::from_safe_id("a__b").is_err());
        assert!(PathId::from_safe_id("A").is_err());
    }

    #[test]
    fn serde_uses_the_display_form() {
        let id = p("/prod/web");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"/prod/web\"");
        let back: PathId = serde_json::from_str("\"prod//web/\"").unwrap();
        assert_eq!(back, id);
    }
}
