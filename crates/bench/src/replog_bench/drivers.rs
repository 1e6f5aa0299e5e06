//! The replog bench's load loops, the same for every system: N operations one after the other
//! (latency) and a fixed count by C concurrent workers (throughput), plus their printout and the
//! CPU time they cost (this process, and another process such as an etcd member).

use super::report::Throughput;
use crate::stats::{summarize, Summary};
use anyhow::{anyhow, Context, Result};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `op(0..n)` one after the other; returns each latency.
pub(super) async fn sequential<F, Fut>(n: usize, mut op: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i)
            .await
            .with_context(|| format!("sequential operation {i} of {n}"))?;
        out.push(start.elapsed());
    }
    Ok(out)
}

/// `total` operations by `workers` concurrent loops; returns the wall time and each latency.
pub(super) async fn concurrent<F, Fut>(
    total: usize,
    workers: usize,
    op: F,
) -> Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.min(total) {
        let (op, next, failed) = (op.clone(), next.clone(), failed.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(latencies);
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok(latencies);
                }
                let t = Instant::now();
                if let Err(e) = op(i).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e.context(format!("concurrent operation {i} of {total}")));
                }
                latencies.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::with_capacity(total);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(l)) => all.extend(l),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow!("a client task panicked: {e}"));
            }
        }
    }
    let elapsed = start.elapsed();
    match first_error {
        Some(e) => Err(e),
        None => Ok((elapsed, all)),
    }
}

pub(super) fn throughput(
    ops: usize,
    value_bytes: usize,
    elapsed: Duration,
    latencies: &[Duration],
    cpu: Option<Duration>,
) -> Throughput {
    let secs = elapsed.as_secs_f64();
    Throughput {
        ops,
        elapsed,
        per_s: ops as f64 / secs,
        mb_per_s: (ops * value_bytes) as f64 / secs / 1e6,
        latency: summarize(latencies),
        cpu_ms_per_op: cpu.map(|c| c.as_secs_f64() * 1e3 / ops as f64),
    }
}

pub(super) fn print_sequential(s: &Summary, n: usize, fsync_p50: Option<f64>) {
    println!(
        "  sequential x{n}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {:.3} ms{}",
        s.p50_ms,
        s.p90_ms,
        s.p99_ms,
        s.max_ms,
        s.mean_ms,
        fsync_p50.map(|f| format!("  ({:.2} x fsync p50)", s.p50_ms / f)).unwrap_or_default()
    );
}

pub(super) fn print_throughput(t: &Throughput, c: usize) {
    println!(
        "  throughput x{} with {c} clients: {:.2} s -> {:.1} ops/s, {:.2} MB/s; latency under load p50 {:.3} ms, p99 {:.3} ms{}",
        t.ops,
        t.elapsed.as_secs_f64(),
        t.per_s,
        t.mb_per_s,
        t.latency.p50_ms,
        t.latency.p99_ms,
        t.cpu_ms_per_op.map(|c| format!("; CPU {c:.3} ms/op")).unwrap_or_default()
    );
}

/// CPU time (user + system) of this process.
pub(super) fn self_cpu() -> Option<Duration> {
    // SAFETY: getrusage writes only into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// CPU time (user + system) of another process, from /proc/<pid>/stat.
pub(super) fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // rest[11] = utime (field 14), rest[12] = stime (field 15), in clock ticks.
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}
