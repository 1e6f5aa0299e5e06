//! Unreachable instances (spec §2 `unreachableStrategy`, §7 "Other timers").
//!
//! An instance reported `TASK_UNREACHABLE` (or `TASK_LOST`/`TASK_UNKNOWN`) keeps counting toward
//! `instances` until `inactiveAfterSeconds` have passed; then it is *inactive*: no longer counted,
//! so the keeper requests a replacement. After `expungeAfterSeconds` it is forgotten. If it comes
//! back `TASK_RUNNING` before that, it counts again and the keeper kills the surplus by
//! `killSelection`. With the strategy `disabled` it is never replaced nor expunged.

use crate::types::{Instance, InstanceState, Unreachable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnreachableStep {
    Inactive { since_ms: u64 },
    Expunge,
}

fn after(since_ms: u64, seconds: u64) -> u64 {
    since_ms.saturating_add(seconds.saturating_mul(1000))
}

/// The transition due for `instance` at `now_ms`, if any.
pub(crate) fn unreachable_step(
    instance: &Instance,
    strategy: &Unreachable,
    now_ms: u64,
) -> Option<UnreachableStep> {
    let Unreachable::Enabled {
        inactive_after_seconds,
        expunge_after_seconds,
    } = *strategy
    else {
        return None;
    };
    match instance.state {
        InstanceState::Unreachable { since_ms }
        | InstanceState::UnreachableInactive { since_ms }
            if now_ms >= after(since_ms, expunge_after_seconds.max(inactive_after_seconds)) =>
        {
            Some(UnreachableStep::Expunge)
        }
        InstanceState::Unreachable { since_ms }
            if now_ms >= after(since_ms, inactive_after_seconds) =>
        {
            Some(UnreachableStep::Inactive { since_ms })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_then_expunged_and_disabled_never() {
        let mut i = Instance::scheduled("i".into(), "/a".into(), 1, 0);
        i.state = InstanceState::Unreachable { since_ms: 1000 };
        let s = Unreachable::Enabled {
            inactive_after_seconds: 10,
            expunge_after_seconds: 20,
        };
        assert_eq!(unreachable_step(&i, &s, 10_999), None);
        assert_eq!(
            unreachable_step(&i, &s, 11_000),
            Some(UnreachableStep::Inactive { since_ms: 1000 })
        );
        i.state = InstanceState::UnreachableInactive { since_ms: 1000 };
        assert_eq!(unreachable_step(&i, &s, 20_999), None);
        assert_eq!(
            unreachable_step(&i, &s, 21_000),
            Some(UnreachableStep::Expunge)
        );
        assert_eq!(unreachable_step(&i, &Unreachable::Disabled, u64::MAX), None);
    }
}
