//! The per-app launch delay (spec §7 "Backoff / launch queue").
//!
//! An instance ending `TASK_FAILED`, `TASK_FINISHED`, `TASK_ERROR`, `TASK_DROPPED` or `TASK_GONE`
//! raises the delay: first `backoffSeconds`, then ×`backoffFactor` per further failure, capped at
//! `maxLaunchDelaySeconds`. Launches of the app wait until the delay has passed. The delay is
//! reset by a new config version (the delay remembers the version it was raised for), by
//! `DELETE /v2/queue/{id}/delay`, or by `maxLaunchDelaySeconds` without failure after the delay
//! ended.

use crate::types::Backoff;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LaunchDelay {
    /// The config version the delay applies to; another version starts without delay.
    pub config_version: u64,
    /// The current delay (ms).
    pub delay_ms: u64,
    /// Launches wait until this time (ms).
    pub until_ms: u64,
}

fn secs_to_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round().min(u64::MAX as f64 / 2.0) as u64
    } else {
        0
    }
}

impl LaunchDelay {
    /// The delay after a failure at `now_ms`, given the previous one (if any).
    pub fn after_failure(
        previous: Option<&LaunchDelay>,
        backoff: &Backoff,
        config_version: u64,
        now_ms: u64,
    ) -> LaunchDelay {
        let max_ms = secs_to_ms(backoff.max_launch_delay_seconds);
        let base_ms = secs_to_ms(backoff.seconds).min(max_ms);
        let delay_ms = match previous {
            // Spec §7: reset after maxLaunchDelaySeconds without failure after the last delay.
            Some(p)
                if p.config_version == config_version
                    && now_ms < p.until_ms.saturating_add(max_ms) =>
            {
                let factor = if backoff.factor.is_finite() && backoff.factor >= 1.0 {
                    backoff.factor
                } else {
                    1.0
                };
                let raised = (p.delay_ms as f64 * factor).round();
                let raised = if raised.is_finite() {
                    raised.min(max_ms as f64) as u64
                } else {
                    max_ms
                };
                raised.max(base_ms).min(max_ms)
            }
            _ => base_ms,
        };
        LaunchDelay {
            config_version,
            delay_ms,
            until_ms: now_ms.saturating_add(delay_ms),
        }
    }

    /// Whether launches of `config_version` must still wait at `now_ms`.
    pub fn blocks(&self, config_version: u64, now_ms: u64) -> bool {
        self.config_version == config_version && now_ms < self.until_ms
    }

    /// Milliseconds left (0 when overdue or for another config version).
    pub fn time_left_ms(&self, config_version: u64, now_ms: u64) -> u64 {
        if self.config_version == config_version {
            self.until_ms.saturating_sub(now_ms)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_factor_and_caps() {
        let b = Backoff {
            seconds: 1.0,
            factor: 2.0,
            max_launch_delay_seconds: 5.0,
        };
        let mut d = LaunchDelay::after_failure(None, &b, 7, 0);
        assert_eq!((d.delay_ms, d.until_ms), (1000, 1000));
        let mut seen = vec![];
        for now in [1000, 3000, 7000, 12000] {
            d = LaunchDelay::after_failure(Some(&d), &b, 7, now);
            seen.push(d.delay_ms);
        }
        assert_eq!(seen, vec![2000, 4000, 5000, 5000]);
    }

    #[test]
    fn defaults_give_the_spec_sequence() {
        let b = Backoff::default();
        let d1 = LaunchDelay::after_failure(None, &b, 1, 0);
        let d2 = LaunchDelay::after_failure(Some(&d1), &b, 1, 11_000);
        let d3 = LaunchDelay::after_failure(Some(&d2), &b, 1, 22_000);
        assert_eq!((d1.delay_ms, d2.delay_ms, d3.delay_ms), (1000, 1150, 1323));
    }

    #[test]
    fn resets_after_quiet_period_and_new_version() {
        let b = Backoff {
            seconds: 1.0,
            factor: 2.0,
            max_launch_delay_seconds: 10.0,
        };
        let d = LaunchDelay::after_failure(None, &b, 1, 0);
        let d = LaunchDelay::after_failure(Some(&d), &b, 1, 1000);
        assert_eq!(d.delay_ms, 2000);
        // 10 s without failure after the delay ended (at 3000): back to the base.
        let quiet = LaunchDelay::after_failure(Some(&d), &b, 1, 13_000);
        assert_eq!(quiet.delay_ms, 1000);
        let other = LaunchDelay::after_failure(Some(&d), &b, 2, 1500);
        assert_eq!(other.delay_ms, 1000);
        assert!(!d.blocks(2, 1500));
        assert!(d.blocks(1, 1500));
    }

    #[test]
    fn hostile_numbers_do_not_panic() {
        let b = Backoff {
            seconds: f64::NAN,
            factor: f64::INFINITY,
            max_launch_delay_seconds: 1e300,
        };
        let d = LaunchDelay::after_failure(None, &b, 1, u64::MAX);
        let d = LaunchDelay::after_failure(Some(&d), &b, 1, u64::MAX);
        assert_eq!(d.until_ms, u64::MAX);
    }
}
