//! `tepui-bench`: benchmarks of tepui. This file only parses the command line and dispatches:
//!
//! - no subcommand: the launch bench (`launch/`): starts the real system (`tepui dev`) as a child
//!   process, drives its master as a v1 HTTP scheduler and measures single-task latency, mass-launch
//!   throughput, tepui's memory and a clean stop, against the machine's own process spawn rate;
//! - `tepui-bench sim-agents ...` runs N simulated agents against a ZooKeeper-elected master
//!   (`sim_agents/`; used by `scripts/bench_failover.py`);
//! - `tepui-bench replog ...` benchmarks the replicated log against raw fsync and a 3-member etcd
//!   (`replog_bench/`; used by `scripts/bench-replog.sh`).
//!
//! Each subcommand parses its own arguments (`argv[0]` is the subcommand name), so the top-level
//! flags below belong to the launch bench only.

mod baseline;
mod devproc;
mod launch;
mod procfs;
mod replog_bench;
mod scheduler;
mod sim_agents;
mod stats;

use clap::Parser;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "tepui-bench",
    about = "Benchmark task launch latency and throughput of `tepui dev`",
    after_help = "Also: `tepui-bench sim-agents --master zk://... --count N` runs N simulated agents (see `tepui-bench sim-agents --help`); `tepui-bench replog` benchmarks the replicated log against fsync and etcd (see `tepui-bench replog --help`)."
)]
struct Args {
    /// The tepui binary (default: `tepui` next to this binary, e.g. target/release/tepui).
    #[arg(long)]
    tepui: Option<PathBuf>,
    /// Single-task latency iterations (default 200; 20 with --quick).
    #[arg(long)]
    launches: Option<usize>,
    /// Tasks in the mass launch (default 1000; 100 with --quick).
    #[arg(long)]
    tasks: Option<usize>,
    /// Smoke run: --launches 20 --tasks 100 unless given.
    #[arg(long)]
    quick: bool,
    /// Processes spawned for each machine baseline.
    #[arg(long, default_value_t = 500)]
    spawns: usize,
    /// Address for `tepui dev` (default: 127.0.0.X with X derived from the bench's pid).
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// Master port (default: a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Agent port (default: a free port).
    #[arg(long)]
    agent_port: Option<u16>,
    /// Deadline in seconds of each single wait (startup, an event, a drain).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Deadline in seconds of the whole mass launch (default: max(120, tasks / 5)).
    #[arg(long)]
    mass_timeout: Option<f64>,
    /// Keep the work directory (tepui log, sandboxes) even after a successful run.
    #[arg(long)]
    keep_work_dir: bool,
}

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "sim-agents") {
        argv.remove(0);
        return sim_agents::main(argv);
    }
    if argv.get(1).is_some_and(|a| a == "replog") {
        argv.remove(0);
        return replog_bench::main(argv);
    }
    let args = Args::parse_from(argv);
    match launch::run_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tepui-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
