//! The launch bench's report: the human-readable summary of every figure, then, as the last line
//! of the output, one JSON object with the same figures (what the scripts parse).

use super::{Anomalies, Figures, Settings};
use crate::procfs;
use crate::stats::{r3, summarize, Summary};
use serde_json::json;
use std::time::Duration;

fn print_summary(label: &str, s: &Summary, n: usize) {
    println!(
        "  {label:<26} p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  max {:>8.2}  mean {:>8.2}  (n={n})",
        s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms
    );
}

pub(super) fn report(
    settings: &Settings,
    sh_rate: f64,
    true_rate: f64,
    f: &Figures,
    anomalies: &Anomalies,
    cpus: usize,
    load_before: Option<f64>,
) {
    let load_after = procfs::load_1min();
    let load = |l: Option<f64>| l.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into());
    let to_offer = summarize(&f.to_offer);
    let starting = summarize(&f.accept_to_starting);
    let launch = summarize(&f.accept_to_running);
    let e2e = summarize(&f.to_running);
    let mass_secs = f.mass.elapsed.as_secs_f64();
    let mass_rate = if mass_secs > 0.0 {
        settings.tasks as f64 / mass_secs
    } else {
        f64::INFINITY
    };
    let ratio = mass_rate / sh_rate;
    let per_iter_ms = f.latency_phase.as_secs_f64() * 1e3 / settings.launches as f64;

    println!("\n================ tepui-bench report ================");
    println!(
        "machine: {cpus} cpus, load average (1 min) {} at start, {} at end (other work on the machine skews every figure)",
        load(load_before),
        load(load_after)
    );
    println!("sequential spawn+wait:");
    println!("  sh -c true                 {sh_rate:>10.1} /s");
    println!("  /bin/true                  {true_rate:>10.1} /s");
    println!(
        "tepui dev startup (spawn -> 1 agent in /state): {:.1} ms",
        f.startup.as_secs_f64() * 1e3
    );
    println!(
        "single-task latency, ms ({} iterations, {per_iter_ms:.1} ms per whole iteration):",
        settings.launches
    );
    print_summary("SUBSCRIBE -> first OFFERS", &to_offer, f.to_offer.len());
    print_summary(
        "ACCEPT -> TASK_STARTING",
        &starting,
        f.accept_to_starting.len(),
    );
    print_summary("ACCEPT -> TASK_RUNNING", &launch, f.accept_to_running.len());
    print_summary("SUBSCRIBE -> TASK_RUNNING", &e2e, f.to_running.len());
    println!(
        "mass launch ({} tasks, {} ACCEPTs):",
        settings.tasks, f.mass.accepts
    );
    println!("  first ACCEPT -> last TASK_RUNNING   {mass_secs:>9.3} s");
    println!(
        "  first ACCEPT -> first TASK_RUNNING  {:>9.3} s",
        f.mass.first_running.as_secs_f64()
    );
    println!(
        "  first ACCEPT call answered (202) in {:>9.3} ms",
        f.mass.first_accept_call.as_secs_f64() * 1e3
    );
    println!("  throughput                          {mass_rate:>9.1} tasks/s");
    println!("  ratio to `sh -c true` spawn rate    {ratio:>9.3}");
    println!(
        "  processes under tepui when all ran  {:>9}",
        f.mass.processes_running
    );
    println!(
        "  TEARDOWN -> /state empty            {:>9.3} s",
        f.mass.teardown_to_state_empty.as_secs_f64()
    );
    match f.mass.teardown_to_processes_gone {
        Some(d) => println!(
            "  TEARDOWN -> no task process left    {:>9.3} s",
            d.as_secs_f64()
        ),
        None => println!(
            "  TEARDOWN -> no task process left    (processes still present at the deadline)"
        ),
    }
    println!(
        "tepui memory after the mass launch: peak RSS (VmHWM) {:.1} MiB, RSS {:.1} MiB, threads {}",
        f.rss_peak_kib as f64 / 1024.0,
        f.rss_kib as f64 / 1024.0,
        f.threads
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into())
    );
    println!(
        "tepui stop (SIGINT -> exit): {:.1} ms, {}",
        f.stop.as_secs_f64() * 1e3,
        f.exit
    );
    if anomalies.0.is_empty() {
        println!("anomalies: none");
    } else {
        println!("anomalies:");
        for a in &anomalies.0 {
            println!("  - {a}");
        }
    }
    println!("=====================================================");

    let ms = |d: Duration| r3(d.as_secs_f64() * 1e3);
    let line = json!({
        "cpus": cpus,
        "load_1min_start": load_before.map(r3),
        "load_1min_end": load_after.map(r3),
        "sh_c_true_per_s": r3(sh_rate),
        "bin_true_per_s": r3(true_rate),
        "startup_ms": ms(f.startup),
        "launches": settings.launches,
        "offer_p50_ms": r3(to_offer.p50_ms),
        "offer_p90_ms": r3(to_offer.p90_ms),
        "offer_p99_ms": r3(to_offer.p99_ms),
        "offer_max_ms": r3(to_offer.max_ms),
        "launch_p50_ms": r3(launch.p50_ms),
        "launch_p90_ms": r3(launch.p90_ms),
        "launch_p99_ms": r3(launch.p99_ms),
        "launch_max_ms": r3(launch.max_ms),
        "subscribe_to_running_p50_ms": r3(e2e.p50_ms),
        "subscribe_to_running_p90_ms": r3(e2e.p90_ms),
        "subscribe_to_running_p99_ms": r3(e2e.p99_ms),
        "subscribe_to_running_max_ms": r3(e2e.max_ms),
        "mass_tasks": settings.tasks,
        "mass_accepts": f.mass.accepts,
        "mass_launch_s": r3(mass_secs),
        "mass_tasks_per_s": r3(mass_rate),
        "mass_ratio_to_sh_c_true": r3(ratio),
        "mass_first_running_ms": ms(f.mass.first_running),
        "mass_teardown_to_state_empty_ms": ms(f.mass.teardown_to_state_empty),
        "mass_teardown_to_no_process_ms": f.mass.teardown_to_processes_gone.map(ms),
        "tepui_peak_rss_mib": r3(f.rss_peak_kib as f64 / 1024.0),
        "tepui_rss_mib": r3(f.rss_kib as f64 / 1024.0),
        "tepui_stop_ms": ms(f.stop),
        "anomalies": anomalies.0.len(),
    });
    println!("{line}");
}
