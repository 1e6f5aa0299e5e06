//! The replog bench's figures (per system: sequential latency and throughput, or why it was
//! skipped or failed) and the report: a table with ratios to the raw fsync and tepui/etcd, then,
//! as the last line of the output, one JSON object with every figure.

use super::{Settings, FSYNC_BYTES};
use crate::procfs;
use crate::stats::{r3, Summary};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub(super) struct Throughput {
    pub(super) ops: usize,
    pub(super) elapsed: Duration,
    pub(super) per_s: f64,
    pub(super) mb_per_s: f64,
    pub(super) latency: Summary,
    /// CPU seconds per 1000 operations: this process (+ etcd's members for etcd).
    pub(super) cpu_ms_per_op: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SystemFigures {
    pub(super) sequential: Summary,
    pub(super) throughput: Throughput,
}

pub(super) enum Outcome {
    Measured(SystemFigures),
    Skipped(String),
    Failed(String),
}

impl Outcome {
    fn figures(&self) -> Option<&SystemFigures> {
        match self {
            Outcome::Measured(f) => Some(f),
            _ => None,
        }
    }
}

pub(super) struct Figures {
    pub(super) fsync: Summary,
    pub(super) fsync_samples: usize,
    pub(super) tepui_elect: Option<Duration>,
    pub(super) tepui: Outcome,
    pub(super) tepui_http: Outcome,
    pub(super) etcd_version: Option<String>,
    pub(super) etcd_ready: Option<Duration>,
    pub(super) etcd: Outcome,
}

fn opt(v: Option<f64>) -> serde_json::Value {
    match v {
        Some(v) if v.is_finite() => serde_json::json!(r3(v)),
        _ => serde_json::Value::Null,
    }
}

/// Prints the report and the JSON line; false when a measured part failed.
pub(super) fn report(s: &Settings, f: &Figures, cpus: usize, load_before: Option<f64>) -> bool {
    let load_after = procfs::load_1min();
    let fs = f.fsync.p50_ms;
    println!("\n================ replicated log benchmark ================");
    println!(
        "machine: {} cpus, load average (1 min) {} -> {}",
        cpus,
        load_before
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "?".into()),
        load_after
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "?".into())
    );
    println!(
        "value {} B; sequential: {} unbatched ops one after the other; throughput: {} ops by {} concurrent clients",
        s.value_bytes, s.appends, s.throughput_appends, s.concurrency
    );
    println!(
        "raw fsync (write {FSYNC_BYTES} B + fdatasync, n = {}): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        f.fsync_samples, f.fsync.p50_ms, f.fsync.p99_ms, f.fsync.max_ms
    );
    if let Some(e) = f.tepui_elect {
        println!("tepui writer election: {:.1} ms", e.as_secs_f64() * 1e3);
    }
    if let Some(e) = f.etcd_ready {
        println!(
            "{}: leader after {:.2} s",
            f.etcd_version.as_deref().unwrap_or("etcd"),
            e.as_secs_f64()
        );
    }
    println!();
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>8} | {:>9} {:>8} {:>10} {:>10} {:>9}",
        "",
        "seq p50",
        "seq p99",
        "seq max",
        "p50/fs",
        "ops/s",
        "MB/s",
        "load p50",
        "load p99",
        "CPU/op"
    );
    let rows = [
        ("tepui in-process", &f.tepui),
        ("tepui over HTTP", &f.tepui_http),
        ("etcd over HTTP", &f.etcd),
    ];
    for (name, outcome) in rows {
        match outcome {
            Outcome::Measured(m) => println!(
                "{:<18} {:>6.3} ms {:>6.3} ms {:>6.3} ms {:>7.2}x | {:>9.1} {:>8.2} {:>7.3} ms {:>7.3} ms {:>6}",
                name,
                m.sequential.p50_ms,
                m.sequential.p99_ms,
                m.sequential.max_ms,
                m.sequential.p50_ms / fs,
                m.throughput.per_s,
                m.throughput.mb_per_s,
                m.throughput.latency.p50_ms,
                m.throughput.latency.p99_ms,
                m.throughput.cpu_ms_per_op.map(|c| format!("{c:.3}ms")).unwrap_or_else(|| "?".into())
            ),
            Outcome::Skipped(why) => println!("{name:<18} skipped: {why}"),
            Outcome::Failed(why) => println!("{name:<18} FAILED: {why}"),
        }
    }
    println!("(p50/fs: sequential p50 over raw fsync p50; CPU/op: CPU time of the bench process, plus etcd's members for etcd, per op in the throughput run)");

    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let get = |o: &Outcome, k: fn(&SystemFigures) -> f64| o.figures().map(k);
    let p50 = |m: &SystemFigures| m.sequential.p50_ms;
    let p99 = |m: &SystemFigures| m.sequential.p99_ms;
    let ops = |m: &SystemFigures| m.throughput.per_s;
    let http_p50 = ratio(get(&f.tepui_http, p50), get(&f.etcd, p50));
    let http_p99 = ratio(get(&f.tepui_http, p99), get(&f.etcd, p99));
    let http_ops = ratio(get(&f.tepui_http, ops), get(&f.etcd, ops));
    let in_p50 = ratio(get(&f.tepui, p50), get(&f.etcd, p50));
    let in_ops = ratio(get(&f.tepui, ops), get(&f.etcd, ops));
    let show = |v: Option<f64>| {
        v.map(|v| format!("{v:.2}x"))
            .unwrap_or_else(|| "n/a".into())
    };
    println!();
    println!(
        "tepui / etcd (both over HTTP): latency p50 {}, p99 {}; throughput {}",
        show(http_p50),
        show(http_p99),
        show(http_ops)
    );
    println!(
        "tepui in-process / etcd over HTTP: latency p50 {}; throughput {}",
        show(in_p50),
        show(in_ops)
    );
    println!(
        "append p50 / fsync p50: tepui in-process {}, over HTTP {}; etcd put p50 / fsync p50 {}",
        show(ratio(get(&f.tepui, p50), Some(fs))),
        show(ratio(get(&f.tepui_http, p50), Some(fs))),
        show(ratio(get(&f.etcd, p50), Some(fs)))
    );
    println!("==========================================================");

    let mut line = serde_json::json!({
        "cpus": cpus,
        "load_1min_start": opt(load_before),
        "load_1min_end": opt(load_after),
        "value_bytes": s.value_bytes,
        "sequential_ops": s.appends,
        "throughput_ops": s.throughput_appends,
        "concurrency": s.concurrency,
        "fsync_p50_ms": r3(f.fsync.p50_ms),
        "fsync_p99_ms": r3(f.fsync.p99_ms),
        "fsync_max_ms": r3(f.fsync.max_ms),
        "tepui_election_ms": opt(f.tepui_elect.map(|d| d.as_secs_f64() * 1e3)),
        "etcd_version": f.etcd_version,
        "etcd_ready_s": opt(f.etcd_ready.map(|d| d.as_secs_f64())),
        "tepui_http_over_etcd_p50": opt(http_p50),
        "tepui_http_over_etcd_p99": opt(http_p99),
        "tepui_http_over_etcd_ops_per_s": opt(http_ops),
        "tepui_inproc_over_etcd_p50": opt(in_p50),
        "tepui_inproc_over_etcd_ops_per_s": opt(in_ops),
    });
    let mut ok = true;
    for (key, outcome) in [
        ("tepui", &f.tepui),
        ("tepui_http", &f.tepui_http),
        ("etcd", &f.etcd),
    ] {
        let obj = line.as_object_mut().expect("object");
        match outcome {
            Outcome::Measured(m) => {
                obj.insert(format!("{key}_p50_ms"), opt(Some(m.sequential.p50_ms)));
                obj.insert(format!("{key}_p90_ms"), opt(Some(m.sequential.p90_ms)));
                obj.insert(format!("{key}_p99_ms"), opt(Some(m.sequential.p99_ms)));
                obj.insert(format!("{key}_max_ms"), opt(Some(m.sequential.max_ms)));
                obj.insert(
                    format!("{key}_p50_over_fsync_p50"),
                    opt(Some(m.sequential.p50_ms / fs)),
                );
                obj.insert(format!("{key}_ops_per_s"), opt(Some(m.throughput.per_s)));
                obj.insert(format!("{key}_mb_per_s"), opt(Some(m.throughput.mb_per_s)));
                obj.insert(
                    format!("{key}_throughput_s"),
                    opt(Some(m.throughput.elapsed.as_secs_f64())),
                );
                obj.insert(
                    format!("{key}_loaded_p50_ms"),
                    opt(Some(m.throughput.latency.p50_ms)),
                );
                obj.insert(
                    format!("{key}_loaded_p99_ms"),
                    opt(Some(m.throughput.latency.p99_ms)),
                );
                obj.insert(
                    format!("{key}_cpu_ms_per_op"),
                    opt(m.throughput.cpu_ms_per_op),
                );
            }
            Outcome::Skipped(why) => {
                obj.insert(format!("{key}_skipped"), serde_json::json!(why));
            }
            Outcome::Failed(why) => {
                ok = false;
                obj.insert(format!("{key}_error"), serde_json::json!(why));
            }
        }
    }
    println!("{line}");
    ok
}
