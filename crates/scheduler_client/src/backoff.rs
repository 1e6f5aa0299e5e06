//! Jittered exponential backoff between subscription attempts.
//!
//! mesos-http-api.md 8.6: a scheduler whose stream broke reconnects "with backoff (up to ~15 s)". The
//! bound doubles after every failed attempt, from `initial` up to `max`, and each delay is drawn
//! uniformly from `[bound/2, bound]` ("equal jitter"): never zero, so a master that refuses at once
//! is not hammered, and spread, so many schedulers do not come back in lockstep after a failover.
//!
//! The jitter source is a small xorshift generator seeded per client (from std's `RandomState`, so
//! no extra dependency); tests seed it explicitly and get the same sequence every run.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Default first bound: small, so tests and failovers are fast.
pub const BACKOFF_INITIAL_DEFAULT: Duration = Duration::from_millis(200);
/// Default cap (mesos-http-api.md 8.6: "up to ~15 s").
pub const BACKOFF_MAX_DEFAULT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    bound: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff seeded from the process's randomness.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(std::process::id() as u64);
        Backoff::with_seed(initial, max, hasher.finish())
    }

    /// A backoff with a fixed jitter seed (tests).
    pub fn with_seed(initial: Duration, max: Duration, seed: u64) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            bound: initial,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; doubles the bound for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let bound = self.bound;
        self.bound = (self.bound * 2).min(self.max);
        // Equal jitter: half fixed, half random.
        bound / 2 + bound.mul_f64(self.unit() / 2.0)
    }

    /// After a successful subscription: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.bound = self.initial;
    }

    /// The current bound (the largest delay `next_delay` may return next).
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// A number in `[0, 1)` (xorshift64).
    fn unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_inside_the_bound() {
        let mut b = Backoff::with_seed(Duration::from_millis(100), Duration::from_secs(15), 7);
        let mut bound = Duration::from_millis(100);
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= bound / 2 && d <= bound,
                "{d:?} outside [{:?}, {bound:?}]",
                bound / 2
            );
            bound = (bound * 2).min(Duration::from_secs(15));
        }
        assert_eq!(b.bound(), Duration::from_secs(15));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::with_seed(Duration::from_secs(10), Duration::from_secs(10), 42);
        let delays: Vec<Duration> = (0..50).map(|_| b.next_delay()).collect();
        let min = delays.iter().min().copied().unwrap_or_default();
        let max = delays.iter().max().copied().unwrap_or_default();
        assert!(
            max - min > Duration::from_secs(2),
            "jitter too narrow: {min:?}..{max:?}"
        );
    }

    #[test]
    fn degenerate_settings_are_clamped() {
        let mut b = Backoff::with_seed(Duration::ZERO, Duration::ZERO, 0);
        assert!(b.next_delay() <= Duration::from_millis(1));
    }
}
