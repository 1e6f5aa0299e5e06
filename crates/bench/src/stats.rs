//! Percentiles over latency samples.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let mean = if ms.is_empty() {
        f64::NAN
    } else {
        ms.iter().sum::<f64>() / ms.len() as f64
    };
    Summary {
        p50_ms: nearest_rank(&ms, 50.0),
        p90_ms: nearest_rank(&ms, 90.0),
        p99_ms: nearest_rank(&ms, 99.0),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
        mean_ms: mean,
    }
}

/// Rounds for the report and the JSON line (3 decimals).
pub fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(&samples);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        let one = summarize(&[Duration::from_millis(7)]);
        assert_eq!(one.p50_ms, 7.0);
        assert_eq!(one.p99_ms, 7.0);
    }
}
