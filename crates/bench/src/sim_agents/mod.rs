//! `tepui-bench sim-agents`: N simulated agents in one process, for failover benchmarks.
//!
//! Each simulated agent is a tokio task that behaves like `tepui agent` on the wire
//! (`proto::agent_protocol`, mesos-ha.md 3.3), without running tasks or serving HTTP:
//!
//! - all agents share one leader detector (`Election::zookeeper(url, timeout, None)`, or a fixed
//!   `host:port`);
//! - when a leader is detected an agent waits a random delay in `[0, --registration_backoff_factor]`,
//!   then `REGISTER`s (first time) or `REREGISTER`s with its agent id; a failed attempt doubles the
//!   bound, capped at one minute; a leader change resets it;
//! - `307` is followed to the `Location`'s `host:port` (a few hops at most), `503` and every other
//!   failure is retried after the backoff;
//! - the answer's RecordIO stream stays open; `PING` is answered with a `PONG` posted with the
//!   `tepui-agent-id` header; `SHUTDOWN` stops that agent (as it stops a real one); nothing heard for
//!   75 s, the end of the stream or a leader change make the agent detect and reregister.
//!
//! Agent `i` is `hostname = <prefix>-<i>`, `endpoint = <ip>:<port_base + i>`, resources
//! `cpus:1;mem:1024` by default; its connections leave from `--ip`.
//!
//! A reporter prints one line per leader change with how many agents are registered with the new
//! leader, and one line when all N have (re)registered with it, with the time since the change;
//! with `--report-file` the same facts go there as JSON lines (flushed at once). SIGINT/SIGTERM stop
//! every agent (closing its stream), leave the ZooKeeper session and exit 0.
//!
//! Layout: this file parses the flags and runs the whole (detector, agents, reporter, stop on a
//! signal); `agent.rs` is one simulated agent's registration and stream; `report.rs` counts agents
//! per leader and prints/writes the report lines; `stats.rs` holds the counters they share.

mod agent;
mod report;
mod stats;

use agent::SimAgent;
use anyhow::{bail, Context, Result};
use clap::Parser;
use election::{Detector, Election, Leader, StandaloneDetector, ZkUrl};
use proto::resources::Resource;
use proto::ResourceBag;
use report::{Event, Reporter};
use serde_json::json;
use stats::Stats;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch, Semaphore};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pongs in flight at once across all simulated agents.
const PONGS_IN_FLIGHT_MAX: usize = 64;
/// How long stopping may take before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    name = "tepui-bench sim-agents",
    about = "Run N simulated agents (one process, one shared leader detector) that register, reregister after every leader change and answer pings"
)]
pub struct SimArgs {
    /// `zk://host:port,.../path` (or `file://`), or a fixed master `host:port`.
    #[arg(long)]
    master: String,
    /// Number of simulated agents.
    #[arg(long)]
    count: usize,
    /// Address the agents connect from and advertise in their endpoints.
    #[arg(long, default_value = "127.0.0.1")]
    ip: Ipv4Addr,
    /// ZooKeeper session timeout of the shared detector (Mesos duration).
    #[arg(long = "zk_session_timeout", default_value = "10secs")]
    zk_session_timeout: String,
    /// Bound of the random delay before (re)registering; doubled after each failure (Mesos duration).
    #[arg(long = "registration_backoff_factor", default_value = "1secs")]
    registration_backoff_factor: String,
    /// Append one JSON object per event (leader change, all registered, progress, stop) to this file.
    #[arg(long = "report-file")]
    report_file: Option<PathBuf>,
    /// Hostname prefix: agent i is `<prefix>-<i>`.
    #[arg(long = "hostname-prefix", default_value = "sim")]
    hostname_prefix: String,
    /// Agent i advertises port `port-base + i` (nothing listens there).
    #[arg(long = "port-base", default_value_t = 40000)]
    port_base: u16,
    /// Resources of every simulated agent.
    #[arg(long, default_value = "cpus:1;mem:1024")]
    resources: String,
    /// Seconds between progress lines while not all agents are registered with the leader.
    #[arg(long = "progress-interval", default_value_t = 5.0)]
    progress_interval: f64,
}

/// Runs `tepui-bench sim-agents ARGS` (`argv[0]` is the subcommand name).
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args = match SimArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tepui-bench sim-agents: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn duration_flag(name: &str, text: &str) -> Result<Duration> {
    let secs = proto::parse_duration_secs(text).map_err(|e| anyhow::anyhow!("--{name}: {e}"))?;
    if !(secs.is_finite() && secs >= 0.0) {
        bail!("--{name} must be a non-negative duration");
    }
    Ok(Duration::from_secs_f64(secs))
}

struct Config {
    count: usize,
    ip: Ipv4Addr,
    backoff_factor: Duration,
    hostname_prefix: String,
    port_base: u16,
    resources: Vec<Resource>,
    progress_interval: Duration,
}

fn run_main(args: SimArgs) -> Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.port_base as usize + args.count - 1 > u16::MAX as usize {
        bail!(
            "--port-base {} + --count {} exceeds port 65535",
            args.port_base,
            args.count
        );
    }
    let session_timeout = duration_flag("zk_session_timeout", &args.zk_session_timeout)?;
    if session_timeout.is_zero() {
        bail!("--zk_session_timeout must be greater than zero");
    }
    let backoff_factor = duration_flag(
        "registration_backoff_factor",
        &args.registration_backoff_factor,
    )?;
    let resources = ResourceBag::parse(&args.resources)
        .map_err(|e| anyhow::anyhow!("--resources: {e}"))?
        .to_resources(None);
    if !(args.progress_interval.is_finite() && args.progress_interval > 0.0) {
        bail!("--progress-interval must be a positive number of seconds");
    }
    let report = match &args.report_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => None,
    };
    let config = Config {
        count: args.count,
        ip: args.ip,
        backoff_factor,
        hostname_prefix: args.hostname_prefix.clone(),
        port_base: args.port_base,
        resources,
        progress_interval: Duration::from_secs_f64(args.progress_interval),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args.master, session_timeout, config, report))
}

/// The shared detector, kept alive (and left cleanly) for the whole run.
enum DetectorHandle {
    Zk(Election),
    Fixed(StandaloneDetector),
}

impl DetectorHandle {
    fn leader(&self) -> watch::Receiver<Option<Leader>> {
        match self {
            DetectorHandle::Zk(e) => e.leader.clone(),
            DetectorHandle::Fixed(d) => d.leader(),
        }
    }

    async fn close(self) {
        if let DetectorHandle::Zk(e) = self {
            e.withdraw().await;
        }
    }
}

struct Shared {
    client: reqwest::Client,
    config: Config,
    stats: Stats,
    pong_permits: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
}

async fn run(
    master: String,
    session_timeout: Duration,
    config: Config,
    report: Option<std::fs::File>,
) -> Result<()> {
    let detector = if election::is_zk(&master) {
        let url = ZkUrl::parse(&master).map_err(|e| anyhow::anyhow!("--master: {e}"))?;
        DetectorHandle::Zk(Election::zookeeper(url, session_timeout, None))
    } else {
        DetectorHandle::Fixed(
            StandaloneDetector::new(&master).map_err(|e| anyhow::anyhow!("--master: {e}"))?,
        )
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(config.ip))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(PONGS_IN_FLIGHT_MAX)
        .build()
        .context("cannot build the HTTP client")?;
    let count = config.count;
    println!(
        "tepui-bench sim-agents: {count} agents from {} ({}-0..{}-{}, ports {}..{}), master {master}, backoff factor {:?}, zk session timeout {:?}",
        config.ip,
        config.hostname_prefix,
        config.hostname_prefix,
        count - 1,
        config.port_base,
        config.port_base as usize + count - 1,
        config.backoff_factor,
        session_timeout
    );
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        client,
        config,
        stats: Stats::default(),
        pong_permits: Arc::new(Semaphore::new(PONGS_IN_FLIGHT_MAX)),
        events: events_tx,
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut reporter = Reporter::new(count, report, shared.clone());
    reporter.emit("start", json!({ "agents": count, "master": master }));
    let reporter_rx = detector.leader();
    let reporter_stop = stop_rx.clone();
    let reporter_task =
        tokio::spawn(async move { reporter.run(reporter_rx, events_rx, reporter_stop).await });

    let seed = seed_base();
    let mut agents = Vec::with_capacity(count);
    for index in 0..count {
        let agent = SimAgent::new(
            shared.clone(),
            index,
            seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        agents.push(tokio::spawn(agent.run(detector.leader(), stop_rx.clone())));
    }

    wait_for_signal().await;
    println!("tepui-bench sim-agents: stopping");
    let _ = stop_tx.send(true);
    let joined = tokio::time::timeout(STOP_GRACE, futures::future::join_all(agents)).await;
    if joined.is_err() {
        eprintln!("tepui-bench sim-agents: some agents did not stop within {STOP_GRACE:?}");
    }
    match tokio::time::timeout(STOP_GRACE, reporter_task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("tepui-bench sim-agents: reporter failed: {e}"),
        Err(_) => eprintln!("tepui-bench sim-agents: reporter did not stop within {STOP_GRACE:?}"),
    }
    detector.close().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "tepui-bench sim-agents: cannot handle SIGTERM ({e}); only SIGINT stops cleanly"
            );
            None
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn seed_base() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ ((std::process::id() as u64) << 32)
}

/// Waits for a leader different from `current`; never resolves if the detector is gone.
async fn changed(
    rx: &mut watch::Receiver<Option<Leader>>,
    current: Option<&Leader>,
) -> Option<Leader> {
    let next = election::detect(rx, current).await;
    if next.as_ref() == current {
        std::future::pending::<()>().await;
    }
    next
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
