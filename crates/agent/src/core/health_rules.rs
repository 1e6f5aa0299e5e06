//! The health-check rules of one task, as Mesos' health checker applies them
//! (`src/checks/health_checker.cpp`; mesos-http-api.md 8.4 `health_check`, 8.5 `healthy`).
//!
//! What: `HealthTracker` says when the next check is due and what a result means. After the task
//! is RUNNING it waits `delay_seconds`, then checks every `interval_seconds` (counted from the end
//! of the previous check); a check still running after `timeout_seconds` is a failure. Until the
//! first success, failures within `grace_period_seconds` of the start are ignored. The first
//! result and every flip of health are reported (one TASK_RUNNING update each, none while health
//! is unchanged); `consecutive_failures` failures in a row give up on the task: it is killed and no
//! further check runs.
//!
//! Why separate: these are timing rules worth testing on their own, with no task, process or
//! clock (time comes in as `Instant`s).

use proto::HealthCheck;
use std::time::{Duration, Instant};

/// Shortest pause between two checks: a zero `interval_seconds` must not spin the agent.
pub const HEALTH_CHECK_INTERVAL_MIN: Duration = Duration::from_millis(100);

/// A health check's timing, as durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub consecutive_failures: u32,
}

impl HealthPolicy {
    /// `HealthCheck::from_json` bounded every field, so the conversions cannot fail; a bad value
    /// still yields a usable policy rather than a panic.
    pub fn of(check: &HealthCheck) -> Self {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
        HealthPolicy {
            delay: secs(check.delay_seconds),
            interval: secs(check.interval_seconds).max(HEALTH_CHECK_INTERVAL_MIN),
            timeout: secs(check.timeout_seconds),
            grace: secs(check.grace_period_seconds),
            consecutive_failures: check.consecutive_failures,
        }
    }
}

/// What a check's result asks of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Send a TASK_RUNNING update with this `healthy` (health changed).
    pub report: Option<bool>,
    /// Too many failures in a row: kill the task.
    pub kill: bool,
}

#[derive(Debug, Clone)]
pub struct HealthTracker {
    policy: HealthPolicy,
    /// When checking started (the task became RUNNING, or was found running after a restart).
    started: Instant,
    /// When the next check starts; `None` while one runs or after giving up.
    next_at: Option<Instant>,
    /// The running check: its number and when it times out.
    in_flight: Option<(u64, Instant)>,
    checks: u64,
    /// No success yet (Mesos' `initializing`): failures within the grace period are ignored.
    initializing: bool,
    failures: u32,
    /// The health last reported, if any.
    reported: Option<bool>,
    gave_up: bool,
}

impl HealthTracker {
    /// Checking starts at `started`; `reported` is the health already known (after a restart, the
    /// latest update's `healthy`), so an unchanged health is not reported again.
    pub fn new(policy: HealthPolicy, started: Instant, reported: Option<bool>) -> Self {
        HealthTracker {
            policy,
            started,
            next_at: started.checked_add(policy.delay),
            in_flight: None,
            checks: 0,
            initializing: true,
            failures: 0,
            reported,
            gave_up: false,
        }
    }

    /// When `tick` next has something to do: a check to start, or one to time out.
    pub fn next_due(&self) -> Option<Instant> {
        match self.in_flight {
            Some((_, deadline)) => Some(deadline),
            None => self.next_at,
        }
    }

    /// Starts the next check if it is due; its number must come back with its result.
    pub fn start_due(&mut self, now: Instant) -> Option<u64> {
        if self.gave_up || self.in_flight.is_some() || self.next_at.is_none_or(|at| now < at) {
            return None;
        }
        self.checks += 1;
        let deadline = now.checked_add(self.policy.timeout).unwrap_or(now);
        self.in_flight = Some((self.checks, deadline));
        self.next_at = None;
        Some(self.checks)
    }

    /// The running check's number if its timeout has passed (the caller fails it).
    pub fn timed_out(&self, now: Instant) -> Option<u64> {
        self.in_flight
            .filter(|(_, deadline)| now >= *deadline)
            .map(|(seq, _)| seq)
    }

    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    pub fn timeout(&self) -> Duration {
        self.policy.timeout
    }

    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// The result of check `seq`; `None` for a check that is not the running one (a late answer
    /// after a timeout, or after giving up).
    pub fn result(&mut self, now: Instant, seq: u64, healthy: bool) -> Option<Verdict> {
        match self.in_flight {
            Some((running, _)) if running == seq => {}
            _ => return None,
        }
        self.in_flight = None;
        self.next_at = now.checked_add(self.policy.interval);
        let mut verdict = Verdict::default();
        if healthy {
            // health_checker.cpp `success`: report the first success and the first after failures.
            self.initializing = false;
            self.failures = 0;
            if self.reported != Some(true) {
                verdict.report = Some(true);
            }
        } else {
            // health_checker.cpp `failure`: ignored while initializing within the grace period.
            let in_grace = self.initializing
                && !self.policy.grace.is_zero()
                && now.saturating_duration_since(self.started) <= self.policy.grace;
            if in_grace {
                return Some(verdict);
            }
            self.failures = self.failures.saturating_add(1);
            if self.reported != Some(false) {
                verdict.report = Some(false);
            }
            if self.failures >= self.policy.consecutive_failures {
                verdict.kill = true;
                self.gave_up = true;
                self.next_at = None;
            }
        }
        if let Some(healthy) = verdict.report {
            self.reported = Some(healthy);
        }
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(delay: u64, interval: u64, timeout: u64, grace: u64, failures: u32) -> HealthPolicy {
        HealthPolicy {
            delay: Duration::from_secs(delay),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            grace: Duration::from_secs(grace),
            consecutive_failures: failures,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Runs one check at `at` with `healthy` and returns its verdict.
    fn check(t: &mut HealthTracker, at: Instant, healthy: bool) -> Verdict {
        let seq = t.start_due(at).expect("a check is due");
        t.result(at, seq, healthy).expect("the running check")
    }

    #[test]
    fn the_first_check_waits_for_the_delay_then_runs_every_interval() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(15, 10, 20, 10, 3), t0, None);
        assert_eq!(t.next_due(), Some(t0 + s(15)));
        assert_eq!(t.start_due(t0 + s(14)), None);
        let seq = t.start_due(t0 + s(15)).unwrap();
        // While it runs, the next thing due is its timeout, and no second check starts.
        assert_eq!(t.next_due(), Some(t0 + s(35)));
        assert_eq!(t.start_due(t0 + s(16)), None);
        t.result(t0 + s(17), seq, true).unwrap();
        // The interval counts from the end of the check.
        assert_eq!(t.next_due(), Some(t0 + s(27)));
    }

    #[test]
    fn failures_in_the_grace_period_are_ignored_until_the_first_success() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 1, 5, 1), t0, None);
        assert_eq!(check(&mut t, t0, false), Verdict::default());
        assert_eq!(
            check(&mut t, t0 + s(5), false),
            Verdict::default(),
            "the grace period includes its end"
        );
        assert_eq!(check(&mut t, t0 + s(6), true).report, Some(true));
        assert!(!t.gave_up());
        // After a success the grace period no longer applies, even within it.
        let mut t = HealthTracker::new(policy(0, 1, 1, 60, 2), t0, None);
        check(&mut t, t0, true);
        assert_eq!(check(&mut t, t0 + s(1), false).report, Some(false));
        assert!(check(&mut t, t0 + s(2), false).kill);
    }

    #[test]
    fn outside_the_grace_period_consecutive_failures_kill_and_checking_stops() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 1, 0, 3), t0, None);
        assert_eq!(
            check(&mut t, t0, false),
            Verdict {
                report: Some(false),
                kill: false
            }
        );
        assert_eq!(check(&mut t, t0 + s(1), false), Verdict::default());
        assert_eq!(
            check(&mut t, t0 + s(2), false),
            Verdict {
                report: None,
                kill: true
            }
        );
        assert!(t.gave_up());
        assert_eq!(t.next_due(), None);
        assert_eq!(t.start_due(t0 + s(100)), None);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 1, 0, 2), t0, None);
        check(&mut t, t0, false);
        check(&mut t, t0 + s(1), true);
        assert!(
            !check(&mut t, t0 + s(2), false).kill,
            "one failure after a success"
        );
        assert!(check(&mut t, t0 + s(3), false).kill);
    }

    #[test]
    fn health_is_reported_once_per_change() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 1, 0, 10), t0, None);
        let reports: Vec<Option<bool>> = [true, true, true, false, false, true, true, false]
            .iter()
            .enumerate()
            .map(|(i, ok)| check(&mut t, t0 + s(i as u64), *ok).report)
            .collect();
        assert_eq!(
            reports,
            [
                Some(true),
                None,
                None,
                Some(false),
                None,
                Some(true),
                None,
                Some(false)
            ]
        );
    }

    #[test]
    fn a_known_health_is_not_reported_again_after_a_restart() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 1, 0, 3), t0, Some(true));
        assert_eq!(check(&mut t, t0, true).report, None);
        assert_eq!(check(&mut t, t0 + s(1), false).report, Some(false));
    }

    #[test]
    fn a_timed_out_check_is_a_failure_and_its_late_answer_is_ignored() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(policy(0, 1, 2, 0, 1), t0, None);
        let seq = t.start_due(t0).unwrap();
        assert_eq!(t.timed_out(t0 + s(1)), None);
        assert_eq!(t.timed_out(t0 + s(2)), Some(seq));
        let verdict = t.result(t0 + s(2), seq, false).unwrap();
        assert!(verdict.kill && verdict.report == Some(false));
        assert_eq!(
            t.result(t0 + s(3), seq, true),
            None,
            "a late answer changes nothing"
        );
    }

    #[test]
    fn a_zero_interval_is_bounded() {
        let check: HealthCheck = serde_json::from_value(serde_json::json!({
            "type": "TCP", "tcp": {"port": 1}, "delay_seconds": 0.0, "interval_seconds": 0.0,
            "timeout_seconds": 1.5, "consecutive_failures": 3, "grace_period_seconds": 0.0
        }))
        .unwrap();
        let p = HealthPolicy::of(&check);
        assert_eq!(p.interval, HEALTH_CHECK_INTERVAL_MIN);
        assert_eq!(p.timeout, Duration::from_millis(1500));
    }
}
