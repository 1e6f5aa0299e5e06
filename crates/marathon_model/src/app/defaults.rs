//! Defaults for omitted app fields (marathon-api.md §2, Marathon ≥ 1.8 values) and the
//! context a parse needs from the caller (base id, the framework's role).

use crate::id::PathId;

use super::{UnreachableStrategy, UpgradeStrategy};

pub const CPUS: f64 = 1.0;
pub const MEM: f64 = 128.0;
pub const DISK: f64 = 0.0;
pub const GPUS: i64 = 0;
pub const INSTANCES: i64 = 1;
pub const BACKOFF_SECONDS: i64 = 1;
pub const BACKOFF_FACTOR: f64 = 1.15;
/// 300 s since Marathon 1.8 (3600 up to 1.7).
pub const MAX_LAUNCH_DELAY_SECONDS: i64 = 300;
/// Name of the implicit port definition of a host-networking app.
pub const DEFAULT_PORT_NAME: &str = "default";
pub const PORT_PROTOCOL: &str = "tcp";
/// The role used when the caller has none (`--mesos_role` default).
pub const ROLE: &str = "*";

/// `{1, 1}`; see [`upgrade_strategy`] for apps with persistent volumes.
pub const UPGRADE_STRATEGY: UpgradeStrategy = UpgradeStrategy {
    minimum_health_capacity: 1.0,
    maximum_over_capacity: 1.0,
};
/// `{0.5, 0}` for apps with persistent or external volumes.
pub const UPGRADE_STRATEGY_RESIDENT: UpgradeStrategy = UpgradeStrategy {
    minimum_health_capacity: 0.5,
    maximum_over_capacity: 0.0,
};
/// `{0, 0}` (early 1.4.x/1.5.0 used 300/600).
pub const UNREACHABLE_STRATEGY: UnreachableStrategy = UnreachableStrategy::Enabled {
    inactive_after_seconds: 0,
    expunge_after_seconds: 0,
};

/// Upgrade strategy default by volume kind.
pub fn upgrade_strategy(has_persistent_volumes: bool) -> UpgradeStrategy {
    if has_persistent_volumes {
        UPGRADE_STRATEGY_RESIDENT
    } else {
        UPGRADE_STRATEGY
    }
}

/// Unreachable strategy default: `"disabled"` for resident apps.
pub fn unreachable_strategy(resident: bool) -> UnreachableStrategy {
    if resident {
        UnreachableStrategy::Disabled
    } else {
        UNREACHABLE_STRATEGY
    }
}

/// Archive suffixes for which a deprecated `uris` entry becomes `extract: true`.
pub const ARCHIVE_SUFFIXES: [&str; 7] = [
    ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip",
];

/// What parsing needs to know beyond the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseContext {
    /// Where the id comes from.
    pub id: IdSource,
    /// `--mesos_role`, used when the body has no `role`.
    pub default_role: String,
}

/// Where an app's id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// From the body's `id` (required); relative ids resolve against `base` (POST: `/`,
    /// group bodies: the group).
    Body { base: PathId },
    /// From the URL (`PUT /v2/apps/{id}`); a body `id` is ignored.
    Url(PathId),
}

impl ParseContext {
    /// POST semantics: id from the body, relative to `/`, role `*`.
    pub fn post() -> ParseContext {
        ParseContext {
            id: IdSource::Body {
                base: PathId::root(),
            },
            default_role: ROLE.to_string(),
        }
    }

    /// PUT semantics: id from the URL, role `*`.
    pub fn put(id: PathId) -> ParseContext {
        ParseContext {
            id: IdSource::Url(id),
            default_role: ROLE.to_string(),
        }
    }

    /// Replace the default role.
    pub fn with_role(mut self, role: impl Into<String>) -> ParseContext {
        self.default_role = role.into();
        self
    }
}
