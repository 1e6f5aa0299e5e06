//! `tepui-bench`: starts the real system (`tepui dev`) as a child process and drives its master as a
//! v1 HTTP scheduler, measuring
//!
//! 1. the machine baseline (sequential spawn+wait of `sh -c true` and `/bin/true`);
//! 2. single-task latency: fresh framework per iteration, SUBSCRIBE -> OFFERS -> ACCEPT ->
//!    TASK_RUNNING -> TEARDOWN;
//! 3. mass launch: one framework, N `sleep 600` tasks in as few ACCEPTs as the offers allow, first
//!    ACCEPT -> last TASK_RUNNING, as tasks/s and as a ratio to the `sh -c true` spawn rate;
//! 4. the peak RSS of tepui after the mass launch, and a clean stop (SIGINT).
//!
//! It prints a human-readable report and, as its last line, one JSON object with every figure.
//!
//! `tepui-bench sim-agents ...` instead runs N simulated agents against a ZooKeeper-elected master
//! (`sim_agents.rs`; used by `scripts/bench_failover.py`).
//! `tepui-bench replog ...` benchmarks the replicated log against raw fsync and a 3-member etcd
//! (`replog_bench.rs`; used by `scripts/bench-replog.sh`).
//! Every wait has a deadline; tepui is stopped on every path (a `Drop` guard), and the bench checks
//! that no task process outlives a TEARDOWN or the stop.

mod baseline;
mod devproc;
mod procfs;
mod replog_bench;
mod scheduler;
mod sim_agents;
mod stats;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use devproc::{DevConfig, DevProcess};
use proto::TaskState;
use scheduler::{Acker, Master, Next, Subscription, TaskShape};
use serde_json::json;
use stats::{r3, summarize, Summary};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The agent's resources: room for 2000 tasks of 0.1 cpus and 16 MB.
const AGENT_RESOURCES: &str = "cpus:200;mem:200000;disk:100000;ports:[31000-32000]";
const AGENT_CPUS: f64 = 200.0;
const TASK_CPUS: f64 = 0.1;
const TASK_MEM: f64 = 16.0;
/// Refusal filter for offers the bench has no use for.
const REFUSE_LONG_SECS: f64 = 3600.0;
/// Polling period of `/state` and /proc while waiting for a condition.
const POLL: Duration = Duration::from_millis(20);

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
    match main_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tepui-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner(args: Args) -> Result<()> {
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
        user: std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".to_string()),
    };

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load_before = procfs::load_1min();
    println!(
        "tepui-bench: {} on {cpus} cpus, load average (1 min) {}; tepui = {}",
        std::env::consts::ARCH,
        load_before.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into()),
        tepui.display()
    );
    println!("  launches = {launches}, mass tasks = {tasks}, baseline spawns = {}", args.spawns);

    // 1. Machine baseline, before tepui runs so nothing competes with it.
    println!("\n[1/4] machine baseline: sequential spawn+wait, N = {}", args.spawns);
    let sh_rate = baseline::spawn_rate("sh", &["-c", "true"], args.spawns).context("baseline `sh -c true`")?;
    let true_rate = baseline::spawn_rate("/bin/true", &[], args.spawns).context("baseline `/bin/true`")?;
    println!("  sh -c true : {sh_rate:>8.1} processes/s");
    println!("  /bin/true  : {true_rate:>8.1} processes/s");

    let ip = args.ip.unwrap_or_else(|| Ipv4Addr::new(127, 0, 0, 2 + (std::process::id() % 250) as u8));
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
    let run_dir = std::env::temp_dir().join(format!("tepui-bench-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
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
            report(&settings, sh_rate, true_rate, &figures, &anomalies, cpus, load_before);
            if args.keep_work_dir {
                eprintln!("tepui-bench: work dir kept: {}", run_dir.display());
            } else if let Err(e) = std::fs::remove_dir_all(&run_dir) {
                eprintln!("tepui-bench: could not remove {}: {e}", run_dir.display());
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("tepui-bench: tepui log: {} (last lines below)", config.log.display());
            eprintln!("{}", devproc::log_tail(&config.log, 30));
            eprintln!("tepui-bench: work dir kept for inspection: {}", run_dir.display());
            Err(e)
        }
    }
}

fn free_port(ip: Ipv4Addr) -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(ip, 0)).with_context(|| format!("cannot bind {ip}:0 to find a free port"))?;
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
    println!("  master and agent up in {:.0} ms (pid {}, log {})", startup.as_secs_f64() * 1e3, dev.pid, dev.log.display());

    // 2. Single-task latency.
    println!("\n[3/4] single-task latency: {} iterations (fresh framework each)", settings.launches);
    let shape = TaskShape { command: "sleep 30".to_string(), cpus: TASK_CPUS, mem: TASK_MEM };
    let mut lat = Latencies::default();
    let phase_start = Instant::now();
    let mut wait_close = true;
    for i in 0..settings.launches {
        one_launch(&master, settings, &shape, i, &mut lat, &mut wait_close, &mut anomalies)
            .await
            .with_context(|| format!("single-task iteration {i}"))?;
        if (i + 1) % 50 == 0 || i + 1 == settings.launches {
            println!("  {} / {} done", i + 1, settings.launches);
        }
    }
    let latency_phase = phase_start.elapsed();
    let drained = wait_drained(&master, &dev, settings.timeout, "the single-task iterations", Instant::now()).await?;
    if let Some(left) = drained.left {
        anomalies.note(format!("after the single-task iterations, {left} processes under tepui outlived their TEARDOWN by more than {:?}", settings.timeout));
    }

    // 3. Mass launch.
    println!("\n[4/4] mass launch: {} x `sleep 600` (cpus {TASK_CPUS}, mem {TASK_MEM}) from one framework", settings.tasks);
    let (mass, (rss_peak_kib, rss_kib), threads) = mass_launch(&master, &dev, settings, &mut anomalies).await?;

    // 4. Stop.
    let before = procfs::descendants(dev.pid).unwrap_or_default();
    let stopped = dev.stop(devproc::STOP_DEADLINE)?;
    let exit = match (stopped.status.code(), std::os::unix::process::ExitStatusExt::signal(&stopped.status)) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => stopped.status.to_string(),
    };
    if stopped.killed {
        anomalies.note(format!("tepui did not exit within {:?} of SIGINT and was killed", devproc::STOP_DEADLINE));
    } else if !stopped.status.success() {
        anomalies.note(format!("tepui stopped by SIGINT with {exit} (expected 0)"));
    }
    let left = devproc::kill_leftovers(&before);
    if !left.is_empty() {
        anomalies.note(format!("{} processes outlived tepui's stop (killed by the bench): pids {left:?}", left.len()));
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

/// Polls `/state` until it lists one agent.
async fn wait_ready(master: &Master, dev: &mut DevProcess, until: tokio::time::Instant) -> Result<()> {
    loop {
        if let Some(status) = dev.exited()? {
            bail!("tepui exited during startup ({status})");
        }
        let last = match tokio::time::timeout_at(until, master.get_json("/state")).await {
            Err(_) => "GET /state did not answer before the deadline".to_string(),
            Ok(Ok(state)) => match state.get("slaves").and_then(|s| s.as_array()).map(Vec::len) {
                Some(1) => return Ok(()),
                Some(n) => format!("/state lists {n} slaves"),
                None => "/state has no 'slaves' array".to_string(),
            },
            Ok(Err(e)) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= until {
            bail!("tepui was not ready (one agent in the master's /state) before the deadline; last: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tasks the master's `/state` lists in a non-terminal state, and how many of them are RUNNING.
async fn live_tasks(master: &Master) -> Result<(usize, usize, BTreeMap<String, usize>)> {
    let state = master.get_json("/state").await?;
    let frameworks = state
        .get("frameworks")
        .and_then(|f| f.as_array())
        .context("/state has no 'frameworks' array")?;
    let (mut live, mut running) = (0, 0);
    let mut by_state = BTreeMap::new();
    for framework in frameworks {
        for task in framework.get("tasks").and_then(|t| t.as_array()).map(Vec::as_slice).unwrap_or_default() {
            let name = task.get("state").and_then(|s| s.as_str()).unwrap_or("(no state)");
            let parsed: Option<TaskState> = serde_json::from_value(json!(name)).ok();
            if parsed.is_some_and(|s| s.is_terminal()) {
                continue;
            }
            live += 1;
            if parsed == Some(TaskState::TaskRunning) {
                running += 1;
            }
            *by_state.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    Ok((live, running, by_state))
}

struct Drained {
    /// Until `/state` showed no live task.
    state_empty: Duration,
    /// Until no process ran under tepui any more (None: some were still there at the deadline).
    processes_gone: Option<Duration>,
    left: Option<usize>,
}

/// Waits until the master's `/state` shows no live task (an error at the deadline), then until no
/// process runs under tepui (at the deadline: reported, not an error). Times are since `since`.
async fn wait_drained(master: &Master, dev: &DevProcess, timeout: Duration, after: &str, since: Instant) -> Result<Drained> {
    let start = since;
    let until = deadline(timeout);
    loop {
        let (live, running, by_state) = tokio::time::timeout_at(until, live_tasks(master))
            .await
            .map_err(|_| anyhow!("after {after}, GET /state did not answer within {timeout:?}"))??;
        if live == 0 {
            break;
        }
        if tokio::time::Instant::now() >= until {
            bail!("after {after}, the master's /state still lists {live} live tasks ({running} running; {by_state:?}) {timeout:?} later");
        }
        tokio::time::sleep(POLL).await;
    }
    let state_empty = start.elapsed();
    let until = deadline(timeout);
    loop {
        let procs = procfs::descendants(dev.pid)?;
        if procs.is_empty() {
            return Ok(Drained { state_empty, processes_gone: Some(start.elapsed()), left: None });
        }
        if tokio::time::Instant::now() >= until {
            let sample: Vec<String> = procs.iter().take(5).map(|p| format!("{} {} ({})", p.pid, p.comm, p.state)).collect();
            eprintln!("tepui-bench: still under tepui after {after}: {} processes, e.g. {sample:?}", procs.len());
            return Ok(Drained { state_empty, processes_gone: None, left: Some(procs.len()) });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[derive(Default)]
struct Latencies {
    to_offer: Vec<Duration>,
    accept_to_starting: Vec<Duration>,
    accept_to_running: Vec<Duration>,
    to_running: Vec<Duration>,
}

/// One iteration: SUBSCRIBE -> OFFERS -> ACCEPT one task -> TASK_RUNNING -> TEARDOWN.
async fn one_launch(
    master: &Master,
    settings: &Settings,
    shape: &TaskShape,
    i: usize,
    lat: &mut Latencies,
    wait_close: &mut bool,
    anomalies: &mut Anomalies,
) -> Result<()> {
    let t_subscribe = Instant::now();
    let mut sub = master.subscribe(&format!("tepui-bench-latency-{i}"), &settings.user, deadline(settings.timeout)).await?;
    let mut acker = Acker::new(master, &sub);
    let until = deadline(settings.timeout);
    let (t_offer, offer) = loop {
        let (at, event) = sub.next_event(until, "OFFERS").await?;
        if event.kind != "OFFERS" {
            continue;
        }
        let offers = event.offers.map(|o| o.offers).unwrap_or_default();
        let mut chosen = None;
        let mut unused = Vec::new();
        for offer in offers {
            if chosen.is_none() && shape.fits(&offer)? >= 1 {
                chosen = Some(offer);
            } else {
                unused.push(offer.id);
            }
        }
        if !unused.is_empty() {
            master.decline(&sub, unused, REFUSE_LONG_SECS).await?;
        }
        if let Some(offer) = chosen {
            break (at, offer);
        }
        anomalies.note("an OFFERS event held no offer with room for one task (cpus 0.1, mem 16)".to_string());
    };
    let task_id = format!("lat-{i}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let t_accept = Instant::now();
    master.launch(&sub, &offer, vec![shape.task(&offer, &task_id)], REFUSE_LONG_SECS).await?;
    let until = deadline(settings.timeout);
    let mut t_starting = None;
    let t_running = loop {
        let (at, event) = sub.next_event(until, &format!("TASK_RUNNING of {task_id}")).await?;
        match event.kind.as_str() {
            "UPDATE" => {
                let status = event.update.context("UPDATE event without 'update'")?.status;
                acker.ack(&status)?;
                if status.task_id.value != task_id {
                    continue;
                }
                match status.state {
                    TaskState::TaskRunning => break at,
                    TaskState::TaskStarting => t_starting = Some(at),
                    s if s.is_terminal() => bail!(
                        "task {task_id} went to {} before TASK_RUNNING (reason {:?}, message {:?})",
                        s.name(),
                        status.reason,
                        status.message
                    ),
                    _ => {}
                }
            }
            "FAILURE" => bail!("FAILURE event while waiting for TASK_RUNNING: {:?}", event.failure),
            _ => {}
        }
    };
    acker.drain(deadline(settings.timeout)).await?;
    lat.to_offer.push(t_offer - t_subscribe);
    if let Some(at) = t_starting {
        lat.accept_to_starting.push(at - t_accept);
    }
    lat.accept_to_running.push(t_running - t_accept);
    lat.to_running.push(t_running - t_subscribe);

    master.teardown(&sub).await?;
    if *wait_close {
        let close_deadline = Duration::from_secs(5).min(settings.timeout);
        if !stream_closes(&mut sub, close_deadline, anomalies).await? {
            anomalies.note(format!("the master did not close the subscription stream within {close_deadline:?} of TEARDOWN (stopped checking)"));
            *wait_close = false;
        }
    }
    Ok(())
}

/// Reads (and drops) events until the stream ends; false if it is still open at the deadline. A
/// stream that breaks instead of ending (no final chunk) counts as closed and is noted.
async fn stream_closes(sub: &mut Subscription, within: Duration, anomalies: &mut Anomalies) -> Result<bool> {
    let until = deadline(within);
    loop {
        match sub.next(until, "the end of the stream after TEARDOWN").await {
            Ok(Next::Closed) => return Ok(true),
            Ok(Next::Event(..)) => {}
            Err(_) if tokio::time::Instant::now() >= until => return Ok(false),
            Err(e) => {
                anomalies.note(format!("after TEARDOWN the subscription stream broke instead of ending cleanly: {e:#}"));
                return Ok(true);
            }
        }
    }
}

async fn mass_launch(
    master: &Master,
    dev: &DevProcess,
    settings: &Settings,
    anomalies: &mut Anomalies,
) -> Result<(MassFigures, (u64, u64), Option<u64>)> {
    let n = settings.tasks;
    let shape = TaskShape { command: "sleep 600".to_string(), cpus: TASK_CPUS, mem: TASK_MEM };
    let mut sub = master.subscribe("tepui-bench-mass", &settings.user, deadline(settings.timeout)).await?;
    let result = mass_launch_on(master, dev, settings, &shape, &mut sub).await;
    // Tear down even when the launch failed, so the tasks do not outlive the bench's error report
    // (tepui's own stop would kill them too).
    let teardown_at = Instant::now();
    let teardown = master.teardown(&sub).await;
    let (launched, memory, threads) = result?;
    teardown?;
    let prefix = format!("the mass launch of {n} tasks");
    if !stream_closes(&mut sub, Duration::from_secs(5).min(settings.timeout), anomalies).await? {
        anomalies.note("the master did not close the mass-launch stream within 5 s of TEARDOWN".to_string());
    }
    drop(sub);
    let drained = wait_drained(master, dev, settings.timeout.max(Duration::from_secs(60)), &prefix, teardown_at).await?;
    if let Some(left) = drained.left {
        anomalies.note(format!("after TEARDOWN of {prefix}, {left} processes were still running under tepui at the deadline"));
    }
    let mass = MassFigures {
        teardown_to_state_empty: drained.state_empty,
        teardown_to_processes_gone: drained.processes_gone,
        ..launched
    };
    Ok((mass, memory, threads))
}

async fn mass_launch_on(
    master: &Master,
    dev: &DevProcess,
    settings: &Settings,
    shape: &TaskShape,
    sub: &mut Subscription,
) -> Result<(MassFigures, (u64, u64), Option<u64>)> {
    let n = settings.tasks;
    let mut acker = Acker::new(master, sub);
    let until = deadline(settings.mass_timeout);
    let mut remaining = n;
    let mut next_id = 0usize;
    let mut accepts = 0usize;
    let mut first_accept: Option<Instant> = None;
    let mut first_accept_call = Duration::ZERO;
    let mut first_running: Option<Instant> = None;
    let mut last_running: Option<Instant> = None;
    let mut launched: HashSet<String> = HashSet::with_capacity(n);
    let mut running: HashSet<String> = HashSet::with_capacity(n);
    let mut seen_states: BTreeMap<&'static str, usize> = BTreeMap::new();
    let report_step = (n / 4).max(1);
    let mut next_report = report_step;
    while running.len() < n {
        let waiting_for = format!(
            "TASK_RUNNING of {} more tasks ({} launched, {} running, updates so far {seen_states:?})",
            n - running.len(),
            launched.len(),
            running.len()
        );
        let (at, event) = sub.next_event(until, &waiting_for).await?;
        match event.kind.as_str() {
            "OFFERS" => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let k = shape.fits(&offer)?.min(remaining);
                    if k == 0 {
                        master.decline(sub, vec![offer.id.clone()], REFUSE_LONG_SECS).await?;
                        continue;
                    }
                    let tasks: Vec<_> = (next_id..next_id + k).map(|j| shape.task(&offer, &format!("mass-{j}"))).collect();
                    for t in &tasks {
                        launched.insert(t.task_id.value.clone());
                    }
                    next_id += k;
                    remaining -= k;
                    let refuse = if remaining == 0 { REFUSE_LONG_SECS } else { 0.0 };
                    let t0 = Instant::now();
                    if first_accept.is_none() {
                        first_accept = Some(t0);
                    }
                    master.launch(sub, &offer, tasks, refuse).await?;
                    if accepts == 0 {
                        first_accept_call = t0.elapsed();
                    }
                    accepts += 1;
                    println!("  ACCEPT #{accepts}: {k} tasks on offer {} ({remaining} left to launch)", offer.id);
                }
            }
            "UPDATE" => {
                let status = event.update.context("UPDATE event without 'update'")?.status;
                acker.ack(&status)?;
                *seen_states.entry(status.state.name()).or_insert(0) += 1;
                if !launched.contains(&status.task_id.value) {
                    continue;
                }
                match status.state {
                    TaskState::TaskRunning if running.insert(status.task_id.value.clone()) => {
                        first_running.get_or_insert(at);
                        last_running = Some(at);
                        if running.len() >= next_report && running.len() < n {
                            println!("  {} / {n} running", running.len());
                            next_report += report_step;
                        }
                    }
                    s if s.is_terminal() => bail!(
                        "task {} went to {} during the mass launch (reason {:?}, message {:?}); {} of {n} were running",
                        status.task_id,
                        s.name(),
                        status.reason,
                        status.message,
                        running.len()
                    ),
                    _ => {}
                }
            }
            "FAILURE" => bail!("FAILURE event during the mass launch: {:?}", event.failure),
            _ => {}
        }
    }
    let start = first_accept.context("all tasks running but no ACCEPT was sent")?;
    let last = last_running.context("no TASK_RUNNING seen")?;
    let first = first_running.context("no TASK_RUNNING seen")?;
    acker.drain(deadline(settings.timeout)).await?;
    let elapsed = last.saturating_duration_since(start);
    println!("  all {n} running: {:.3} s after the first ACCEPT ({accepts} ACCEPTs, {} acknowledgements)", elapsed.as_secs_f64(), acker.sent);
    let memory = procfs::memory_kib(dev.pid)?;
    let threads = procfs::threads(dev.pid);
    let processes_running = procfs::descendants(dev.pid)?.iter().filter(|p| p.state != 'Z').count();
    Ok((
        MassFigures {
            accepts,
            elapsed,
            first_accept_call,
            first_running: first.saturating_duration_since(start),
            processes_running,
            teardown_to_state_empty: Duration::ZERO,
            teardown_to_processes_gone: None,
        },
        memory,
        threads,
    ))
}

fn print_summary(label: &str, s: &Summary, n: usize) {
    println!(
        "  {label:<26} p50 {:>8.2}  p90 {:>8.2}  p99 {:>8.2}  max {:>8.2}  mean {:>8.2}  (n={n})",
        s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms
    );
}

fn report(settings: &Settings, sh_rate: f64, true_rate: f64, f: &Figures, anomalies: &Anomalies, cpus: usize, load_before: Option<f64>) {
    let load_after = procfs::load_1min();
    let load = |l: Option<f64>| l.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into());
    let to_offer = summarize(&f.to_offer);
    let starting = summarize(&f.accept_to_starting);
    let launch = summarize(&f.accept_to_running);
    let e2e = summarize(&f.to_running);
    let mass_secs = f.mass.elapsed.as_secs_f64();
    let mass_rate = if mass_secs > 0.0 { settings.tasks as f64 / mass_secs } else { f64::INFINITY };
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
    println!("tepui dev startup (spawn -> 1 agent in /state): {:.1} ms", f.startup.as_secs_f64() * 1e3);
    println!("single-task latency, ms ({} iterations, {per_iter_ms:.1} ms per whole iteration):", settings.launches);
    print_summary("SUBSCRIBE -> first OFFERS", &to_offer, f.to_offer.len());
    print_summary("ACCEPT -> TASK_STARTING", &starting, f.accept_to_starting.len());
    print_summary("ACCEPT -> TASK_RUNNING", &launch, f.accept_to_running.len());
    print_summary("SUBSCRIBE -> TASK_RUNNING", &e2e, f.to_running.len());
    println!("mass launch ({} tasks, {} ACCEPTs):", settings.tasks, f.mass.accepts);
    println!("  first ACCEPT -> last TASK_RUNNING   {mass_secs:>9.3} s");
    println!("  first ACCEPT -> first TASK_RUNNING  {:>9.3} s", f.mass.first_running.as_secs_f64());
    println!("  first ACCEPT call answered (202) in {:>9.3} ms", f.mass.first_accept_call.as_secs_f64() * 1e3);
    println!("  throughput                          {mass_rate:>9.1} tasks/s");
    println!("  ratio to `sh -c true` spawn rate    {ratio:>9.3}");
    println!("  processes under tepui when all ran  {:>9}", f.mass.processes_running);
    println!(
        "  TEARDOWN -> /state empty            {:>9.3} s",
        f.mass.teardown_to_state_empty.as_secs_f64()
    );
    match f.mass.teardown_to_processes_gone {
        Some(d) => println!("  TEARDOWN -> no task process left    {:>9.3} s", d.as_secs_f64()),
        None => println!("  TEARDOWN -> no task process left    (processes still present at the deadline)"),
    }
    println!(
        "tepui memory after the mass launch: peak RSS (VmHWM) {:.1} MiB, RSS {:.1} MiB, threads {}",
        f.rss_peak_kib as f64 / 1024.0,
        f.rss_kib as f64 / 1024.0,
        f.threads.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
    );
    println!("tepui stop (SIGINT -> exit): {:.1} ms, {}", f.stop.as_secs_f64() * 1e3, f.exit);
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
