//! How a new definition differs from the running one at runtime (marathon-api.md §7
//! "Plan construction"): only `instances` changed → scale; any other field changed
//! (cmd, args, env, resources, ports, constraints, health checks, container, labels,
//! fetch, strategies, killSelection, user, backoff, role, …) → rolling restart.
//!
//! `version` is ignored. Service ports must be assigned in both definitions before
//! comparing (a stored `port: 10000` against a requested `port: 0` is a change).

use super::AppDefinition;

/// The kind of runtime change from `old` to `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    ScaleOnly,
    Restart,
}

/// Classify the change from `old` to `new`.
pub fn change_kind(old: &AppDefinition, new: &AppDefinition) -> Change {
    let mut same_count = new.clone();
    same_count.instances = old.instances;
    same_count.version = old.version;
    if same_count != *old {
        Change::Restart
    } else if new.instances != old.instances {
        Change::ScaleOnly
    } else {
        Change::None
    }
}
