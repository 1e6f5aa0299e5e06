//! The launch bench (`tepui-bench` without a subcommand): starts the real system (`tepui dev`) as a
//! child process and drives its master as a v1 HTTP scheduler, measuring
//!
//! 1. the machine baseline (sequential spawn+wait of `sh -c true` and `/bin/true`);
//! 2. single-task latency: fresh framework per iteration, SUBSCRIBE -> OFFERS -> ACCEPT ->
//!    TASK_RUNNING -> TEARDOWN (`single.rs`);
//! 3. mass launch: one framework, N `sleep 600` tasks in as few ACCEPTs as the offers allow, first
//!    ACCEPT -> last TASK_RUNNING, as tasks/s and as a ratio to the `sh -c true` spawn rate
//!    (`mass.rs`);
//! 4. the peak RSS of tepui after the mass launch, and a clean stop (SIGINT).
//!
//! It prints a human-readable report and, as its last line, one JSON object with every figure
//! (`report.rs`). Every wait has a deadline (`wait.rs`); tepui is stopped on every path (a `Drop`
//! guard), and the bench checks that no task process outlives a TEARDOWN or the stop.
//!
//! This file holds the settings, the phase order and the figures the phases fill in.

mod mass;
mod report;
mod single;
mod wait;

use crate::devproc::{self, DevConfig, DevProcess};
use crate::scheduler::{Master, TaskShape};
use crate::{baseline, procfs, Args};
use anyhow::{anyhow, bail, Context, Result};
use mass::mass_launch;
use report::report;
use single::{one_launch, Latencies};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};
use wait::{wait_drained, wait_ready};

/// The agent's resources: room for 2000 tasks of 0.1 cpus and 16 MB.
const AGENT_RESOURCES: &str = "cpus:200;mem:200000;disk:100000;ports:[31000-32000]";
const AGENT_CPUS: f64 = 200.0;
const TASK_CPUS: f64 = 0.1;
const TASK_MEM: f64 = 16.0;
/// Refusal filter for offers the bench has no use for.
const REFUSE_LONG_SECS: f64 = 3600.0;
/// Polling period of `/state` and /proc while waiting for a condition.
const POLL: Duration = Duration::from_millis(20);

struct Settings {
    launches: usize,
    tasks: usize,
    timeout: Duration,
    mass_timeout: Duration,
    user: String,
}

fn deadline(after: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + after
}

/// Non-fatal deviations of tepui from the spec, listed at the end of the report.
#[derive(Default)]
struct Anomalies(Vec<String>);

impl Anomalies {
    fn note(&mut self, text: String) {
        eprintln!("tepui-bench: NOTE: {text}");
        if !self.0.contains(&text) {
            self.0.push(text);
        }
    }
}

/// Runs the launch bench with the top-level flags (parsed by `main`).
pub(crate) fn run_main(args: Args) -> Result<()> {
    let launches = args.launches.unwrap_or(if args.quick { 20 } else { 200 });
    let tasks = args.tasks.unwrap_or(if args.quick { 100 } else { 1000 });
    let max_tasks = ((AGENT_CPUS + 1e-6) / TASK_CPUS).floor() as usize;
    if tasks == 0 || tasks > max_tasks {
        bail!("--tasks must be between 1 and {max_tasks} (the agent has {AGENT_CPUS} cpus, {TASK_CPUS} per task)");
    }
    if launches == 0 {
        bail!("--launches must be at least 1");
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mass_timeout = args.mass_timeout.unwrap_or((tasks as f64 / 5.0).max(120.0));
    if !(mass_timeout > 0.0 && mass_timeout.is_finite()) {
        bail!("--mass-timeout must be a positive number of seconds");
    }
    let tepui = match &args.tepui {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("cannot find the bench's own path")?
            .parent()
            .context("the bench binary has no parent directory")?
            .join("tepui"),
    };
    if !tepui.is_file() {
        bail!("no tepui binary at {} (build it with `cargo build --release -p tepui`, or pass --tepui PATH)", tepui.display());
    }
    let settings = Settings {
        launches,
        tasks,
        timeout: Duration::from_secs_f64(args.timeout),
        mass_timeout: Duration::from_secs_f64(mass_timeout),
        user: std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".to_string()),
    };

    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load_before = procfs::load_1min();
    println!(
        "tepui-bench: {} on {cpus} cpus, load average (1 min) {}; tepui = {}",
        std::env::consts::ARCH,
        load_before
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "?".into()),
        tepui.display()
    );
    println!(
        "  launches = {launches}, mass tasks = {tasks}, baseline spawns = {}",
        args.spawns
    );

    // 1. Machine baseline, before tepui runs so nothing competes with it.
    println!(
        "\n[1/4] machine baseline: sequential spawn+wait, N = {}",
        args.spawns
    );
    let sh_rate = baseline::spawn_rate("sh", &["-c", "true"], args.spawns)
        .context("baseline `sh -c true`")?;
    let true_rate =
        baseline::spawn_rate("/bin/true", &[], args.spawns).context("baseline `/bin/true`")?;
    println!("  sh -c true : {sh_rate:>8.1} processes/s");
    println!("  /bin/true  : {true_rate:>8.1} processes/s");

    let ip = args
        .ip
        .unwrap_or_else(|| Ipv4Addr::new(127, 0, 0, 2 + (std::process::id() % 250) as u8));
    let port = match args.port {
        Some(p) => p,
        None => free_port(ip)?,
    };
    let agent_port = match args.agent_port {
        Some(p) => p,
        None => loop {
            let p = free_port(ip)?;
            if p != port {
                break p;
            }
        },
    };
    let run_dir = std::env::temp_dir().join(format!(
        "tepui-bench-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let config = DevConfig {
        tepui,
        ip,
        port,
        agent_port,
        work_dir: run_dir.join("dev"),
        resources: AGENT_RESOURCES.to_string(),
        log: run_dir.join("tepui.log"),
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&config, &settings) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C); tepui was stopped")),
        }
    });
    match outcome {
        Ok((figures, anomalies)) => {
            report(
                &settings,
                sh_rate,
                true_rate,
                &figures,
                &anomalies,
                cpus,
                load_before,
            );
            if args.keep_work_dir {
                eprintln!("tepui-bench: work dir kept: {}", run_dir.display());
            } else if let Err(e) = std::fs::remove_dir_all(&run_dir) {
                eprintln!("tepui-bench: could not remove {}: {e}", run_dir.display());
            }
            Ok(())
        }
        Err(e) => {
            eprintln!(
                "tepui-bench: tepui log: {} (last lines below)",
                config.log.display()
            );
            eprintln!("{}", devproc::log_tail(&config.log, 30));
            eprintln!(
                "tepui-bench: work dir kept for inspection: {}",
                run_dir.display()
            );
            Err(e)
        }
    }
}

fn free_port(ip: Ipv4Addr) -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(ip, 0))
        .with_context(|| format!("cannot bind {ip}:0 to find a free port"))?;
    Ok(listener.local_addr().context("no local address")?.port())
}

/// Every figure of one run.
struct Figures {
    startup: Duration,
    to_offer: Vec<Duration>,
    accept_to_starting: Vec<Duration>,
    accept_to_running: Vec<Duration>,
    to_running: Vec<Duration>,
    latency_phase: Duration,
    mass: MassFigures,
    rss_peak_kib: u64,
    rss_kib: u64,
    threads: Option<u64>,
    stop: Duration,
    exit: String,
}

struct MassFigures {
    accepts: usize,
    elapsed: Duration,
    first_accept_call: Duration,
    first_running: Duration,
    processes_running: usize,
    teardown_to_state_empty: Duration,
    teardown_to_processes_gone: Option<Duration>,
}

async fn run(config: &DevConfig, settings: &Settings) -> Result<(Figures, Anomalies)> {
    let mut anomalies = Anomalies::default();
    let master = Master::new(format!("http://{}:{}", config.ip, config.port))?;

    println!("\n[2/4] starting: {} dev --ip {} --port {} --agent_port {} --work_dir {} --resources \"{}\"",
        config.tepui.display(), config.ip, config.port, config.agent_port, config.work_dir.display(), config.resources);
    let started = Instant::now();
    let mut dev = DevProcess::start(config)?;
    wait_ready(&master, &mut dev, deadline(settings.timeout)).await?;
    let startup = started.elapsed();
    println!(
        "  master and agent up in {:.0} ms (pid {}, log {})",
        startup.as_secs_f64() * 1e3,
        dev.pid,
        dev.log.display()
    );

    // 2. Single-task latency.
    println!(
        "\n[3/4] single-task latency: {} iterations (fresh framework each)",
        settings.launches
    );
    let shape = TaskShape {
        command: "sleep 30".to_string(),
        cpus: TASK_CPUS,
        mem: TASK_MEM,
    };
    let mut lat = Latencies::default();
    let phase_start = Instant::now();
    let mut wait_close = true;
    for i in 0..settings.launches {
        one_launch(
            &master,
            settings,
            &shape,
            i,
            &mut lat,
            &mut wait_close,
            &mut anomalies,
        )
        .await
        .with_context(|| format!("single-task iteration {i}"))?;
        if (i + 1) % 50 == 0 || i + 1 == settings.launches {
            println!("  {} / {} done", i + 1, settings.launches);
        }
    }
    let latency_phase = phase_start.elapsed();
    let drained = wait_drained(
        &master,
        &dev,
        settings.timeout,
        "the single-task iterations",
        Instant::now(),
    )
    .await?;
    if let Some(left) = drained.left {
        anomalies.note(format!("after the single-task iterations, {left} processes under tepui outlived their TEARDOWN by more than {:?}", settings.timeout));
    }

    // 3. Mass launch.
    println!("\n[4/4] mass launch: {} x `sleep 600` (cpus {TASK_CPUS}, mem {TASK_MEM}) from one framework", settings.tasks);
    let (mass, (rss_peak_kib, rss_kib), threads) =
        mass_launch(&master, &dev, settings, &mut anomalies).await?;

    // 4. Stop.
    let before = procfs::descendants(dev.pid).unwrap_or_default();
    let stopped = dev.stop(devproc::STOP_DEADLINE)?;
    let exit = match (
        stopped.status.code(),
        std::os::unix::process::ExitStatusExt::signal(&stopped.status),
    ) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => stopped.status.to_string(),
    };
    if stopped.killed {
        anomalies.note(format!(
            "tepui did not exit within {:?} of SIGINT and was killed",
            devproc::STOP_DEADLINE
        ));
    } else if !stopped.status.success() {
        anomalies.note(format!("tepui stopped by SIGINT with {exit} (expected 0)"));
    }
    let left = devproc::kill_leftovers(&before);
    if !left.is_empty() {
        anomalies.note(format!(
            "{} processes outlived tepui's stop (killed by the bench): pids {left:?}",
            left.len()
        ));
    }

    Ok((
        Figures {
            startup,
            to_offer: lat.to_offer,
            accept_to_starting: lat.accept_to_starting,
            accept_to_running: lat.accept_to_running,
            to_running: lat.to_running,
            latency_phase,
            mass,
            rss_peak_kib,
            rss_kib,
            threads,
            stop: stopped.took,
            exit,
        },
        anomalies,
    ))
}
