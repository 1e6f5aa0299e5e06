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

use anyhow::{bail, Context, Result};
use clap::Parser;
use election::{Detector, Election, Leader, StandaloneDetector, ZkUrl};
use futures::StreamExt;
use proto::agent_protocol::{AgentCall, AgentInfo, MasterToAgent, AGENT_ID_HEADER, AGENT_PATH, PROTOCOL_VERSION};
use proto::resources::Resource;
use proto::{recordio, AgentId, ResourceBag};
use serde_json::json;
use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch, Semaphore};

/// Upper bound of the registration backoff (mesos-ha.md 3.3).
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Silence after which a registered agent gives up on its master (15 s pings x 5).
const PING_TIMEOUT_TOTAL: Duration = Duration::from_secs(75);
/// How long a (re)registration may wait for the response headers.
const REGISTRATION_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one pong may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pongs in flight at once across all simulated agents.
const PONGS_IN_FLIGHT_MAX: usize = 64;
/// Redirects followed within one registration attempt.
const REDIRECT_HOPS_MAX: usize = 3;
/// How long stopping may take before the process exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Most bytes of an error body kept for the report.
const ERROR_TEXT_MAX: usize = 300;

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
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
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
        bail!("--port-base {} + --count {} exceeds port 65535", args.port_base, args.count);
    }
    let session_timeout = duration_flag("zk_session_timeout", &args.zk_session_timeout)?;
    if session_timeout.is_zero() {
        bail!("--zk_session_timeout must be greater than zero");
    }
    let backoff_factor = duration_flag("registration_backoff_factor", &args.registration_backoff_factor)?;
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

/// Counters shared by every simulated agent.
#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    registered: AtomicU64,
    reregistered: AtomicU64,
    redirects: AtomicU64,
    unavailable: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    stream_ends: AtomicU64,
    pings: AtomicU64,
    pongs_failed: AtomicU64,
    ignored_messages: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    fn note_error(&self, text: String) {
        let mut text = text;
        if text.len() > ERROR_TEXT_MAX {
            let mut end = ERROR_TEXT_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }

    fn take_last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "attempts": g(&self.attempts),
            "registered": g(&self.registered),
            "reregistered": g(&self.reregistered),
            "redirects_followed": g(&self.redirects),
            "answers_503": g(&self.unavailable),
            "answers_other": g(&self.refused),
            "request_errors": g(&self.errors),
            "request_timeouts": g(&self.timeouts),
            "stream_ends": g(&self.stream_ends),
            "pings": g(&self.pings),
            "pongs_failed": g(&self.pongs_failed),
            "ignored_messages": g(&self.ignored_messages),
        })
    }

    fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "attempts {}, 307 followed {}, 503 {}, other status {}, errors {}, timeouts {}, stream ends {}, pings {}, failed pongs {}",
            g(&self.attempts),
            g(&self.redirects),
            g(&self.unavailable),
            g(&self.refused),
            g(&self.errors),
            g(&self.timeouts),
            g(&self.stream_ends),
            g(&self.pings),
            g(&self.pongs_failed)
        )
    }
}

/// What agents tell the reporter.
enum Event {
    Registered { index: usize, with: RegisteredWith },
    Disconnected { index: usize },
    Stopped { index: usize, why: String },
}

/// The master an agent is registered with.
#[derive(Clone, Debug, PartialEq)]
struct RegisteredWith {
    master_id: String,
    /// `host:port` of the detected leader the registration started from (before redirects).
    via: String,
}

impl RegisteredWith {
    /// With ZooKeeper the leader's id is known; a fixed `--master` is matched by address (the
    /// agent may have been redirected from it to the real leader).
    fn is(&self, leader: &Leader) -> bool {
        match &leader.info {
            Some(info) => info.id == self.master_id,
            None => leader.endpoint == self.via,
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

async fn run(master: String, session_timeout: Duration, config: Config, report: Option<std::fs::File>) -> Result<()> {
    let detector = if election::is_zk(&master) {
        let url = ZkUrl::parse(&master).map_err(|e| anyhow::anyhow!("--master: {e}"))?;
        DetectorHandle::Zk(Election::zookeeper(url, session_timeout, None))
    } else {
        DetectorHandle::Fixed(StandaloneDetector::new(&master).map_err(|e| anyhow::anyhow!("--master: {e}"))?)
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
    let reporter_task = tokio::spawn(async move { reporter.run(reporter_rx, events_rx, reporter_stop).await });

    let seed = seed_base();
    let mut agents = Vec::with_capacity(count);
    for index in 0..count {
        let agent = SimAgent::new(shared.clone(), index, seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
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
            eprintln!("tepui-bench sim-agents: cannot handle SIGTERM ({e}); only SIGINT stops cleanly");
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
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ ((std::process::id() as u64) << 32)
}

/// splitmix64: enough randomness for jitter, without another dependency.
struct Jitter(u64);

impl Jitter {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Waits for a leader different from `current`; never resolves if the detector is gone.
async fn changed(rx: &mut watch::Receiver<Option<Leader>>, current: Option<&Leader>) -> Option<Leader> {
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

/// An error with its sources (reqwest's own text is only "error sending request for url").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn url(endpoint: &str) -> String {
    format!("http://{endpoint}{AGENT_PATH}")
}

/// `host:port` of a `Location` header: `//host:port/path`, `http://host:port/path` or `host:port`.
fn location_endpoint(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))
        .unwrap_or(location);
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = authority.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some(authority.to_string())
}

#[allow(clippy::large_enum_variant)] // one per session
enum SessionEnd {
    LeaderChanged(Option<Leader>),
    Ended { registered: bool },
    Stop,
}

struct SimAgent {
    shared: Arc<Shared>,
    index: usize,
    agent_id: Option<AgentId>,
    info: AgentInfo,
    endpoint: String,
    jitter: Jitter,
}

impl SimAgent {
    fn new(shared: Arc<Shared>, index: usize, seed: u64) -> SimAgent {
        let c = &shared.config;
        let port = c.port_base + index as u16;
        let info = AgentInfo {
            id: None,
            hostname: format!("{}-{index}", c.hostname_prefix),
            port,
            resources: c.resources.clone(),
            attributes: Vec::new(),
        };
        let endpoint = format!("{}:{port}", c.ip);
        SimAgent { shared, index, agent_id: None, info, endpoint, jitter: Jitter(seed) }
    }

    async fn run(mut self, mut rx: watch::Receiver<Option<Leader>>, mut stop: watch::Receiver<bool>) {
        let factor = self.shared.config.backoff_factor;
        let mut leader = rx.borrow_and_update().clone();
        let mut backoff = factor;
        loop {
            if *stop.borrow() {
                return;
            }
            let Some(current) = leader.clone() else {
                tokio::select! {
                    next = changed(&mut rx, None) => leader = next,
                    _ = stopped(&mut stop) => return,
                }
                backoff = factor;
                continue;
            };
            let delay = backoff.mul_f64(self.jitter.next_unit());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                next = changed(&mut rx, Some(&current)) => {
                    leader = next;
                    backoff = factor;
                    continue;
                }
                _ = stopped(&mut stop) => return,
            }
            match self.session(&current, &mut rx, &mut stop).await {
                SessionEnd::LeaderChanged(next) => {
                    leader = next;
                    backoff = factor;
                }
                SessionEnd::Ended { registered: true } => backoff = factor,
                SessionEnd::Ended { registered: false } => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(1), BACKOFF_MAX);
                }
                SessionEnd::Stop => return,
            }
        }
    }

    fn registration_call(&self) -> AgentCall {
        let mut agent_info = self.info.clone();
        agent_info.id = self.agent_id.clone();
        match agent_info.id {
            None => AgentCall::Register {
                protocol_version: PROTOCOL_VERSION,
                agent_info,
                endpoint: self.endpoint.clone(),
                version: proto::MESOS_VERSION.to_string(),
            },
            Some(_) => AgentCall::Reregister {
                protocol_version: PROTOCOL_VERSION,
                agent_info,
                endpoint: self.endpoint.clone(),
                version: proto::MESOS_VERSION.to_string(),
                tasks: Vec::new(),
                frameworks: Vec::new(),
            },
        }
    }

    /// One (re)registration attempt (following redirects) and the life of its stream.
    async fn session(
        &mut self,
        leader: &Leader,
        rx: &mut watch::Receiver<Option<Leader>>,
        stop: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        let shared = self.shared.clone();
        let stats = &shared.stats;
        let call = self.registration_call();
        let mut target = leader.endpoint.clone();
        let mut hops = 0;
        let response = loop {
            stats.attempts.fetch_add(1, Ordering::Relaxed);
            let request = shared.client.post(url(&target)).json(&call).send();
            let answer = tokio::select! {
                r = tokio::time::timeout(REGISTRATION_RESPONSE_TIMEOUT, request) => r,
                next = changed(rx, Some(leader)) => return SessionEnd::LeaderChanged(next),
                _ = stopped(stop) => return SessionEnd::Stop,
            };
            let response = match answer {
                Err(_) => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!("{target}: no answer within {REGISTRATION_RESPONSE_TIMEOUT:?}"));
                    return SessionEnd::Ended { registered: false };
                }
                Ok(Err(e)) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!("{target}: {}", chain(&e)));
                    return SessionEnd::Ended { registered: false };
                }
                Ok(Ok(r)) => r,
            };
            match response.status().as_u16() {
                200 => break response,
                307 => {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match location.as_deref().and_then(location_endpoint) {
                        Some(next) if hops < REDIRECT_HOPS_MAX && next != target => {
                            stats.redirects.fetch_add(1, Ordering::Relaxed);
                            hops += 1;
                            target = next;
                        }
                        _ => {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            stats.note_error(format!("{target}: 307 to {location:?} not followed (hop {hops})"));
                            return SessionEnd::Ended { registered: false };
                        }
                    }
                }
                503 => {
                    stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    return SessionEnd::Ended { registered: false };
                }
                _ => {
                    let status = response.status();
                    let body = tokio::time::timeout(CALL_TIMEOUT, response.text())
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .unwrap_or_default();
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!("{target}: {status}: {body}"));
                    return SessionEnd::Ended { registered: false };
                }
            }
        };
        let mut stream = response.bytes_stream();
        let mut decoder = recordio::Decoder::new();
        let mut registered = false;
        let end = 'stream: loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(PING_TIMEOUT_TOTAL, stream.next()) => c,
                next = changed(rx, Some(leader)) => break 'stream SessionEnd::LeaderChanged(next),
                _ = stopped(stop) => break 'stream SessionEnd::Stop,
            };
            let bytes = match chunk {
                Err(_) => {
                    stats.note_error(format!("{target}: nothing heard for {PING_TIMEOUT_TOTAL:?}"));
                    break SessionEnd::Ended { registered };
                }
                Ok(None) => break SessionEnd::Ended { registered },
                Ok(Some(Err(e))) => {
                    stats.note_error(format!("{target}: stream broke: {}", chain(&e)));
                    break SessionEnd::Ended { registered };
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            decoder.feed(&bytes);
            loop {
                let record = match decoder.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(e) => {
                        stats.note_error(format!("{target}: bad framing: {e}"));
                        break 'stream SessionEnd::Ended { registered };
                    }
                };
                let message: MasterToAgent = match serde_json::from_slice(&record) {
                    Ok(m) => m,
                    Err(e) => {
                        stats.ignored_messages.fetch_add(1, Ordering::Relaxed);
                        stats.note_error(format!("{target}: unreadable message: {e}"));
                        continue;
                    }
                };
                match message {
                    MasterToAgent::Registered { protocol_version, agent_id, master_info } => {
                        if protocol_version != PROTOCOL_VERSION {
                            let why = format!("master {target} speaks agent protocol {protocol_version}, not {PROTOCOL_VERSION}");
                            let _ = shared.events.send(Event::Stopped { index: self.index, why });
                            break 'stream SessionEnd::Stop;
                        }
                        let counter = if self.agent_id.is_some() { &stats.reregistered } else { &stats.registered };
                        counter.fetch_add(1, Ordering::Relaxed);
                        self.agent_id = Some(agent_id);
                        registered = true;
                        let with = RegisteredWith { master_id: master_info.id, via: leader.endpoint.clone() };
                        let _ = shared.events.send(Event::Registered { index: self.index, with });
                    }
                    MasterToAgent::Ping if registered => {
                        stats.pings.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = &self.agent_id {
                            self.pong(&target, id);
                        }
                    }
                    MasterToAgent::Shutdown { message } => {
                        let why = format!("master {target} sent SHUTDOWN: {message}");
                        let _ = shared.events.send(Event::Stopped { index: self.index, why });
                        break 'stream SessionEnd::Stop;
                    }
                    _ => {
                        stats.ignored_messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Ended { .. }) {
            stats.stream_ends.fetch_add(1, Ordering::Relaxed);
        }
        if registered {
            let _ = shared.events.send(Event::Disconnected { index: self.index });
        }
        end
    }

    fn pong(&self, endpoint: &str, agent_id: &AgentId) {
        let shared = self.shared.clone();
        let request = shared
            .client
            .post(url(endpoint))
            .header(AGENT_ID_HEADER, agent_id.as_str())
            .timeout(CALL_TIMEOUT)
            .json(&AgentCall::Pong { protocol_version: PROTOCOL_VERSION });
        let endpoint = endpoint.to_string();
        tokio::spawn(async move {
            let Ok(_permit) = shared.pong_permits.clone().acquire_owned().await else {
                return;
            };
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {}
                Ok(r) => {
                    shared.stats.pongs_failed.fetch_add(1, Ordering::Relaxed);
                    shared.stats.note_error(format!("{endpoint}: PONG answered {}", r.status()));
                }
                Err(e) => {
                    shared.stats.pongs_failed.fetch_add(1, Ordering::Relaxed);
                    shared.stats.note_error(format!("{endpoint}: PONG failed: {}", chain(&e)));
                }
            }
        });
    }
}

/// Counts agents per master and reports leader changes and completion.
struct Reporter {
    count: usize,
    file: Option<std::fs::File>,
    shared: Arc<Shared>,
    started: Instant,
    with: Vec<Option<RegisteredWith>>,
    stopped: usize,
    /// The leader the detector reports now.
    current: Option<Leader>,
    /// The last leader that was reported (survives a `None` in between).
    last_leader: Option<Leader>,
    changed_at: Instant,
    lost_at: Option<Instant>,
    complete: bool,
    changes: u64,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Reporter {
    fn new(count: usize, file: Option<std::fs::File>, shared: Arc<Shared>) -> Reporter {
        let now = Instant::now();
        Reporter {
            count,
            file,
            shared,
            started: now,
            with: vec![None; count],
            stopped: 0,
            current: None,
            last_leader: None,
            changed_at: now,
            lost_at: None,
            complete: false,
            changes: 0,
        }
    }

    fn emit(&mut self, event: &str, mut fields: serde_json::Value) {
        let Some(file) = self.file.as_mut() else { return };
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), json!(event));
            map.insert("t".into(), json!(secs(self.started.elapsed())));
            map.insert("ts".into(), json!(unix_now()));
        }
        let line = format!("{fields}\n");
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|_| file.flush()) {
            eprintln!("tepui-bench sim-agents: cannot write the report file ({e}); no more report lines");
            self.file = None;
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>8.3}s]", self.started.elapsed().as_secs_f64())
    }

    fn registered_with_current(&self) -> usize {
        match &self.current {
            Some(leader) => self.with.iter().filter(|w| w.as_ref().is_some_and(|w| w.is(leader))).count(),
            None => 0,
        }
    }

    async fn run(
        &mut self,
        mut rx: watch::Receiver<Option<Leader>>,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut stop: watch::Receiver<bool>,
    ) {
        let first = rx.borrow_and_update().clone();
        self.on_leader(first);
        let mut progress = tokio::time::interval(self.shared.config.progress_interval);
        progress.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => break,
                next = changed(&mut rx, self.current.as_ref()) => self.on_leader(next),
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => break,
                },
                _ = progress.tick() => self.on_progress(),
            }
        }
        let registered = self.registered_with_current();
        println!(
            "{} stop: {registered}/{} agents registered with the current leader; {} leader changes; {}",
            self.stamp(),
            self.count,
            self.changes,
            self.shared.stats.line()
        );
        let stats = self.shared.stats.json();
        let leader = self.current.as_ref().map(|l| l.endpoint.clone());
        self.emit("stop", json!({ "registered": registered, "agents": self.count, "leader": leader, "stats": stats }));
    }

    fn on_leader(&mut self, next: Option<Leader>) {
        let now = Instant::now();
        let before = self.registered_with_current();
        match next {
            None => {
                let old = self.current.as_ref().map(|l| l.endpoint.clone());
                self.current = None;
                self.lost_at = Some(now);
                match &old {
                    Some(old) => println!(
                        "{} no leading master detected ({before}/{} agents were registered with {old})",
                        self.stamp(),
                        self.count
                    ),
                    None if self.changes == 0 => println!("{} waiting for a leading master", self.stamp()),
                    None => {}
                }
                self.emit("no_leader", json!({ "previous": old, "registered_before": before }));
            }
            Some(leader) => {
                let same = self.last_leader.as_ref().is_some_and(|l| l == &leader);
                self.current = Some(leader.clone());
                let registered = self.registered_with_current();
                if same {
                    println!(
                        "{} leading master {} detected again ({registered}/{} agents registered with it)",
                        self.stamp(),
                        leader.endpoint,
                        self.count
                    );
                    self.emit("leader_again", json!({ "leader": leader.endpoint, "registered": registered }));
                } else {
                    if !self.complete && self.last_leader.is_some() {
                        println!(
                            "{} (the previous leader never had all {} agents: {before} at its end)",
                            self.stamp(),
                            self.count
                        );
                    }
                    self.changes += 1;
                    self.changed_at = now;
                    self.complete = false;
                    let id = leader.info.as_ref().map(|i| i.id.clone());
                    println!(
                        "{} leader change #{}: {} (id {}), {registered}/{} agents registered with it",
                        self.stamp(),
                        self.changes,
                        leader.endpoint,
                        id.as_deref().unwrap_or("?"),
                        self.count
                    );
                    let since_lost = self.lost_at.map(|t| secs(now.saturating_duration_since(t)));
                    self.emit(
                        "leader_change",
                        json!({
                            "leader": leader.endpoint, "leader_id": id, "registered": registered,
                            "no_leader_for": since_lost, "change": self.changes,
                        }),
                    );
                    self.last_leader = Some(leader);
                }
                self.lost_at = None;
                self.check_complete();
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Registered { index, with } => {
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = Some(with);
                }
                self.check_complete();
            }
            Event::Disconnected { index } => {
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = None;
                }
            }
            Event::Stopped { index, why } => {
                self.stopped += 1;
                if let Some(slot) = self.with.get_mut(index) {
                    *slot = None;
                }
                println!("{} agent {index} stopped: {why}", self.stamp());
                self.emit("agent_stopped", json!({ "agent": index, "why": why }));
            }
        }
    }

    fn check_complete(&mut self) {
        if self.complete {
            return;
        }
        let Some(leader) = self.current.clone() else { return };
        let registered = self.registered_with_current();
        if registered < self.count {
            return;
        }
        self.complete = true;
        let took = self.changed_at.elapsed();
        println!(
            "{} all {} agents registered with {} {:.3} s after the leader change ({})",
            self.stamp(),
            self.count,
            leader.endpoint,
            took.as_secs_f64(),
            self.shared.stats.line()
        );
        let stats = self.shared.stats.json();
        self.emit(
            "all_registered",
            json!({
                "leader": leader.endpoint,
                "leader_id": leader.info.as_ref().map(|i| i.id.clone()),
                "agents": self.count,
                "seconds_since_change": secs(took),
                "change": self.changes,
                "stats": stats,
            }),
        );
    }

    fn on_progress(&mut self) {
        if self.complete {
            return;
        }
        let registered = self.registered_with_current();
        let leader = self.current.as_ref().map(|l| l.endpoint.clone());
        let last_error = self.shared.stats.take_last_error();
        println!(
            "{} {registered}/{} agents registered with {} ({:.1} s since the change; {} stopped; {}){}",
            self.stamp(),
            self.count,
            leader.as_deref().unwrap_or("no leader"),
            self.changed_at.elapsed().as_secs_f64(),
            self.stopped,
            self.shared.stats.line(),
            last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
        );
        self.emit(
            "progress",
            json!({ "leader": leader, "registered": registered, "agents": self.count, "last_error": last_error }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_forms() {
        assert_eq!(location_endpoint("//10.0.0.2:5050/internal/v1/agent").as_deref(), Some("10.0.0.2:5050"));
        assert_eq!(location_endpoint("http://m2:5050/x?y").as_deref(), Some("m2:5050"));
        assert_eq!(location_endpoint("m3:5050").as_deref(), Some("m3:5050"));
        assert_eq!(location_endpoint("//nohost/path"), None);
        assert_eq!(location_endpoint("//:5050/"), None);
        assert_eq!(location_endpoint("//h:99999/"), None);
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        let mut j = Jitter(42);
        for _ in 0..10_000 {
            let x = j.next_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn calls_register_then_reregister() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            client: reqwest::Client::new(),
            config: Config {
                count: 1,
                ip: Ipv4Addr::LOCALHOST,
                backoff_factor: Duration::from_secs(1),
                hostname_prefix: "sim".into(),
                port_base: 40000,
                resources: ResourceBag::parse("cpus:1;mem:1024").unwrap_or_default().to_resources(None),
                progress_interval: Duration::from_secs(5),
            },
            stats: Stats::default(),
            pong_permits: Arc::new(Semaphore::new(1)),
            events: tx,
        });
        let mut agent = SimAgent::new(shared, 7, 1);
        assert_eq!(agent.info.hostname, "sim-7");
        assert_eq!(agent.endpoint, "127.0.0.1:40007");
        assert!(matches!(agent.registration_call(), AgentCall::Register { .. }));
        agent.agent_id = Some(AgentId::new("a-1"));
        match agent.registration_call() {
            AgentCall::Reregister { agent_info, .. } => assert_eq!(agent_info.id, Some(AgentId::new("a-1"))),
            other => panic!("expected REREGISTER, got {other:?}"),
        }
    }
}
