//! `tepui-bench replog`: the replicated log (crates `replog` + `registrar`) against etcd, on this
//! machine, in one run:
//!
//! 1. the disk's raw fsync latency (`replog::disk::measure_fsync`: write 4 KiB + fdatasync) in a
//!    directory under the bench's work dir, the floor every durable write pays;
//! 2. tepui's log with 3 replicas on loopback, all in this process: each its own `LogHandle` over a
//!    `DiskStorage` in its own directory and its own axum server on 127.0.0.1x:port, quorum 2,
//!    replica 1 the writer. N unbatched sequential appends of V bytes (latency), then a fixed count
//!    with C concurrent appenders (throughput). Measured twice: "in-process" (`handle.append`) and
//!    "over HTTP" (a keep-alive reqwest client posting etcd-shaped JSON to a tiny axum endpoint in
//!    the bench that calls `handle.append`), so the comparison with etcd pays the same client hop;
//! 3. etcd 3.4 with 3 members on loopback, driven through its v3 JSON gateway
//!    (`POST /v3/kv/put`, base64 key and value) by the same client with the same requests.
//!
//! Every figure is also given as a ratio (to the fsync p50, and tepui/etcd). Processes (etcd) and
//! directories are removed on every path by `Drop` guards; the last line of the output is one JSON
//! object with every figure.
//!
//! Between phases (untimed) the writer truncates the log below its last append, as the registrar
//! does after each store, so the record files stay small as they do in a master.

use crate::procfs;
use crate::stats::{r3, summarize, Summary};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use clap::Parser;
use registrar::runtime::Input;
use registrar::{LogConfig, LogHandle};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener as StdTcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The write size of the raw fsync probe (the same as the default value size).
const FSYNC_BYTES: usize = 4096;
/// The replicas' addresses are 127.0.0.11-13 (any port): loopback, but each its own address.
const REPLICA_IP_BASE: u8 = 10;
const QUORUM: usize = 2;
const PUT_PATH: &str = "/v3/kv/put";
const POLL: Duration = Duration::from_millis(50);

#[derive(Parser, Debug)]
#[command(
    name = "tepui-bench replog",
    bin_name = "tepui-bench replog",
    about = "Replicated log benchmark: raw fsync, tepui's 3-replica log (in-process and over HTTP) and a 3-member etcd, on loopback"
)]
pub struct ReplogArgs {
    /// Sequential (unbatched) appends / puts timed one by one (default 2000; 200 with --quick).
    #[arg(long)]
    appends: Option<usize>,
    /// Value size in bytes, the same for tepui and etcd.
    #[arg(long, default_value_t = 4096)]
    value_bytes: usize,
    /// Concurrent appenders / clients in the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Appends / puts in the throughput run (default 5000; 500 with --quick).
    #[arg(long)]
    throughput_appends: Option<usize>,
    /// Untimed operations before each timed run (default 50; 10 with --quick).
    #[arg(long)]
    warmup: Option<usize>,
    /// Samples of the raw fsync probe (default 500; 100 with --quick).
    #[arg(long)]
    fsync_samples: Option<usize>,
    /// Short smoke run (smaller defaults for every count above).
    #[arg(long)]
    quick: bool,
    /// Install etcd with apt-get if it is missing (needs root).
    #[arg(long)]
    install: bool,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long)]
    etcd: Option<PathBuf>,
    /// Skip the etcd part.
    #[arg(long)]
    no_etcd: bool,
    /// Where the run's work directory is created (default: the system temp dir). It must be on the
    /// disk you want to measure (not tmpfs).
    #[arg(long)]
    work_parent: Option<PathBuf>,
    /// Keep the work directory (record files, logs) after the run.
    #[arg(long)]
    keep_work_dir: bool,
    /// Seconds one append / put may take before the run fails.
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
    /// Seconds to wait for tepui's writer election and for etcd's leader.
    #[arg(long, default_value_t = 60.0)]
    startup_timeout: f64,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args = match ReplogArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match run_main(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tepui-bench replog: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    appends: usize,
    value_bytes: usize,
    concurrency: usize,
    throughput_appends: usize,
    warmup: usize,
    fsync_samples: usize,
    op_timeout: Duration,
    startup_timeout: Duration,
}

/// The run's work directory; removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("tepui-bench replog: work dir kept: {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("tepui-bench replog: could not remove {}: {e}", self.path.display());
        }
    }
}

fn run_main(args: ReplogArgs) -> Result<bool> {
    let q = args.quick;
    let settings = Settings {
        appends: args.appends.unwrap_or(if q { 200 } else { 2000 }),
        value_bytes: args.value_bytes,
        concurrency: args.concurrency,
        throughput_appends: args.throughput_appends.unwrap_or(if q { 500 } else { 5000 }),
        warmup: args.warmup.unwrap_or(if q { 10 } else { 50 }),
        fsync_samples: args.fsync_samples.unwrap_or(if q { 100 } else { 500 }),
        op_timeout: positive_secs("op-timeout", args.op_timeout)?,
        startup_timeout: positive_secs("startup-timeout", args.startup_timeout)?,
    };
    if settings.appends == 0 || settings.throughput_appends == 0 || settings.concurrency == 0 || settings.fsync_samples == 0 {
        bail!("--appends, --throughput-appends, --concurrency and --fsync-samples must be at least 1");
    }
    if settings.value_bytes == 0 {
        bail!("--value-bytes must be at least 1");
    }

    let parent = args.work_parent.clone().unwrap_or_else(std::env::temp_dir);
    let path = parent.join(format!("tepui-bench-replog-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]));
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // Declared first, so it is dropped last: after the runtime (tepui's replicas) and etcd are gone.
    let work = WorkDir { path, keep: args.keep_work_dir };
    let trace_log = work.path.join("tepui-replog.log");
    init_tracing(&trace_log)?;

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load_before = procfs::load_1min();
    println!(
        "tepui-bench replog: {} on {cpus} cpus, load average (1 min) {}; work dir {} ({})",
        std::env::consts::ARCH,
        load_before.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into()),
        work.path.display(),
        fs_kind(&work.path)
    );
    println!(
        "  value {} B, sequential N = {}, throughput {} ops with C = {} concurrent clients, warmup {}, fsync samples {}",
        settings.value_bytes, settings.appends, settings.throughput_appends, settings.concurrency, settings.warmup, settings.fsync_samples
    );

    // The replicas' runtime persists with `block_in_place`, which needs the multi-thread runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // `block_on` runs this future on the main thread, so etcd (spawned from it with a parent-death
    // signal) is tied to the bench's main thread, not to a runtime worker that might exit.
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&args, &settings, &work.path) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C); every replica and etcd member was stopped")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let figures = outcome?;
    let ok = report(&settings, &figures, cpus, load_before);
    if !ok {
        eprintln!("tepui-bench replog: tepui replica log (last lines of {}):", trace_log.display());
        eprintln!("{}", crate::devproc::log_tail(&trace_log, 40));
    }
    Ok(ok)
}

fn positive_secs(name: &str, secs: f64) -> Result<Duration> {
    if !(secs > 0.0 && secs.is_finite()) {
        bail!("--{name} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The replicas log through `tracing`; their lines go to a file in the work dir (`RUST_LOG` filters).
fn init_tracing(path: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(file)).try_init();
    Ok(())
}

/// The file system type of `path` (a tmpfs would make every fsync free and the figures meaningless).
fn fs_kind(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return "?".into() };
    // SAFETY: statfs writes only into the zeroed struct we pass; `c` is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "?".into();
    }
    match st.f_type as i64 {
        0x01021994 => "tmpfs: fsync costs nothing here, use --work-parent on a real disk".into(),
        0xEF53 => "ext2/3/4".into(),
        0x58465342 => "xfs".into(),
        0x9123683E => "btrfs".into(),
        0x794C7630 => "overlayfs".into(),
        other => format!("fs type {other:#x}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Figures

#[derive(Debug, Clone, Copy)]
struct Throughput {
    ops: usize,
    elapsed: Duration,
    per_s: f64,
    mb_per_s: f64,
    latency: Summary,
    /// CPU seconds per 1000 operations: this process (+ etcd's members for etcd).
    cpu_ms_per_op: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct SystemFigures {
    sequential: Summary,
    throughput: Throughput,
}

enum Outcome {
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

struct Figures {
    fsync: Summary,
    fsync_samples: usize,
    tepui_elect: Option<Duration>,
    tepui: Outcome,
    tepui_http: Outcome,
    etcd_version: Option<String>,
    etcd_ready: Option<Duration>,
    etcd: Outcome,
}

async fn run(args: &ReplogArgs, s: &Settings, work: &Path) -> Result<Figures> {
    // 1. Raw fsync of this disk, before anything else runs.
    println!("\n[1/4] raw fsync: {} x (write {FSYNC_BYTES} B + fdatasync) in {}", s.fsync_samples, work.join("fsync-probe").display());
    let samples = replog::disk::try_measure_fsync(&work.join("fsync-probe"), s.fsync_samples, FSYNC_BYTES).context("raw fsync measurement")?;
    let fsync = summarize(&samples);
    println!("  p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms", fsync.p50_ms, fsync.p99_ms, fsync.max_ms);

    let value: Arc<Vec<u8>> = Arc::new((0..s.value_bytes).map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8).collect());
    let value_b64: Arc<str> = B64.encode(value.as_slice()).into();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(s.concurrency.max(1) * 2)
        .timeout(s.op_timeout)
        .build()
        .context("cannot build the HTTP client")?;

    // 2 + 3. tepui.
    println!("\n[2/4] tepui replicated log: 3 replicas on loopback, quorum {QUORUM}, replica 1 the writer");
    let mut tepui_elect = None;
    let (tepui, tepui_http) = match TepuiCluster::start(&work.join("tepui"), s.startup_timeout).await {
        Err(e) => {
            let msg = format!("{e:#}");
            println!("  FAILED to start: {msg}");
            (Outcome::Failed(msg), Outcome::Skipped("the cluster did not start".into()))
        }
        Ok(mut cluster) => {
            tepui_elect = Some(cluster.elected_in);
            println!("  replicas {} ; writer elected in {:.1} ms", cluster.addresses().join(", "), cluster.elected_in.as_secs_f64() * 1e3);
            let inproc = tepui_in_process(&cluster, s, &value).await;
            let inproc = finish("tepui in-process", inproc, &cluster);
            println!("\n[3/4] tepui over HTTP: keep-alive reqwest client -> axum endpoint in the bench -> handle.append");
            let http = match inproc {
                Outcome::Failed(_) => Outcome::Skipped("the in-process run failed".into()),
                _ => {
                    let r = async {
                        let url = cluster.start_endpoint().await?;
                        println!("  endpoint {url}");
                        http_system("tepui-http", &client, &url, &value_b64, s, None, Some(&cluster)).await
                    }
                    .await;
                    finish("tepui over HTTP", r, &cluster)
                }
            };
            cluster.shutdown().await;
            (inproc, http)
        }
    };

    // 4. etcd.
    println!("\n[4/4] etcd: 3 members on loopback, v3 JSON gateway");
    let (mut etcd_version, mut etcd_ready) = (None, None);
    let etcd = if args.no_etcd {
        Outcome::Skipped("--no-etcd".into())
    } else {
        match find_etcd(args) {
            Err(e) => {
                println!("  SKIPPED: {e:#}");
                Outcome::Skipped(format!("{e:#}"))
            }
            Ok(binary) => {
                etcd_version = etcd_version_of(&binary);
                println!("  {} ({})", binary.display(), etcd_version.as_deref().unwrap_or("version ?"));
                let r = async {
                    let started = Instant::now();
                    let mut cluster = EtcdCluster::start(&binary, &work.join("etcd"))?;
                    let leader = cluster.wait_leader(&client, s.startup_timeout).await?;
                    etcd_ready = Some(started.elapsed());
                    println!(
                        "  members {} ; leader {} after {:.1} s",
                        cluster.members.iter().map(|m| m.client_url.as_str()).collect::<Vec<_>>().join(", "),
                        cluster.members[leader].name,
                        started.elapsed().as_secs_f64()
                    );
                    let url = format!("{}{PUT_PATH}", cluster.members[leader].client_url);
                    let figures = http_system("etcd", &client, &url, &value_b64, s, Some(&mut cluster), None).await;
                    match figures {
                        Ok(f) => Ok(f),
                        Err(e) => Err(e.context(cluster.describe())),
                    }
                }
                .await;
                match r {
                    Ok(f) => Outcome::Measured(f),
                    Err(e) => {
                        let msg = format!("{e:#}");
                        println!("  FAILED: {msg}");
                        Outcome::Failed(msg)
                    }
                }
            }
        }
    };

    Ok(Figures { fsync, fsync_samples: samples.len(), tepui_elect, tepui, tepui_http, etcd_version, etcd_ready, etcd })
}

fn finish(what: &str, r: Result<SystemFigures>, cluster: &TepuiCluster) -> Outcome {
    match r {
        Ok(f) => Outcome::Measured(f),
        Err(e) => {
            let msg = format!("{e:#}; replica stats: {}", cluster.describe());
            println!("  {what} FAILED: {msg}");
            Outcome::Failed(msg)
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Drivers

/// Runs `op(0..n)` one after the other; returns each latency.
async fn sequential<F, Fut>(n: usize, mut op: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i).await.with_context(|| format!("sequential operation {i} of {n}"))?;
        out.push(start.elapsed());
    }
    Ok(out)
}

/// `total` operations by `workers` concurrent loops; returns the wall time and each latency.
async fn concurrent<F, Fut>(total: usize, workers: usize, op: F) -> Result<(Duration, Vec<Duration>)>
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

fn throughput(ops: usize, value_bytes: usize, elapsed: Duration, latencies: &[Duration], cpu: Option<Duration>) -> Throughput {
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

fn print_sequential(s: &Summary, n: usize, fsync_p50: Option<f64>) {
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

fn print_throughput(t: &Throughput, c: usize) {
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
fn self_cpu() -> Option<Duration> {
    // SAFETY: getrusage writes only into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// CPU time (user + system) of another process, from /proc/<pid>/stat.
fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    // rest[11] = utime (field 14), rest[12] = stime (field 15), in clock ticks.
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}

// ------------------------------------------------------------------------------------------------
// tepui's log

struct Replica {
    address: String,
    handle: LogHandle,
}

struct TepuiCluster {
    replicas: Vec<Replica>,
    servers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    elected_in: Duration,
    /// The last position appended (what the untimed truncate keeps).
    last: Arc<std::sync::atomic::AtomicU64>,
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router, stop: &watch::Sender<bool>) -> JoinHandle<()> {
    let mut stop_rx = stop.subscribe();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("tepui-bench replog: a server failed: {e}");
        }
    })
}

impl TepuiCluster {
    async fn start(dir: &Path, timeout: Duration) -> Result<TepuiCluster> {
        let (stop, _) = watch::channel(false);
        let mut listeners = Vec::new();
        for i in 1..=3u8 {
            let ip = Ipv4Addr::new(127, 0, 0, REPLICA_IP_BASE + i);
            let listener = tokio::net::TcpListener::bind(SocketAddrV4::new(ip, 0)).await.with_context(|| format!("cannot bind {ip}:0"))?;
            let address = listener.local_addr().context("no local address")?.to_string();
            listeners.push((address, listener));
        }
        let network: BTreeSet<String> = listeners.iter().map(|(a, _)| a.clone()).collect();
        let mut cluster = TepuiCluster {
            replicas: Vec::new(),
            servers: Vec::new(),
            stop,
            elected_in: Duration::ZERO,
            last: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        for (i, (address, listener)) in listeners.into_iter().enumerate() {
            let store_dir = dir.join(format!("replica{}", i + 1)).join("replicated_log");
            let storage = replog::DiskStorage::open(&store_dir).with_context(|| format!("cannot open the log storage in {}", store_dir.display()))?;
            let config = LogConfig { address: address.clone(), quorum: QUORUM, auto_initialize: true };
            let handle = LogHandle::start(config, Box::new(storage)).with_context(|| format!("cannot start replica {address}"))?;
            let server = serve(listener, registrar::transport::router(handle.inbox.clone()), &cluster.stop).await;
            cluster.servers.push(server);
            cluster.replicas.push(Replica { address, handle });
        }
        for r in &cluster.replicas {
            r.handle.inbox.send(Input::Network(network.clone())).map_err(|_| anyhow!("replica {} stopped", r.address))?;
        }
        let started = Instant::now();
        let writer = &cluster.replicas[0].handle;
        writer.inbox.send(Input::StartWriter).map_err(|_| anyhow!("the writer replica stopped"))?;
        let mut stats = writer.stats.clone();
        let waited = tokio::time::timeout(timeout, async {
            stats
                .wait_for(|s| s.writer_elected || s.writer_demoted || s.storage_error.is_some())
                .await
                .map(|s| (s.writer_elected, s.clone()))
        })
        .await;
        match waited {
            Err(_) => bail!("replica 1 was not elected writer within {timeout:?}; replica stats: {}", cluster.describe()),
            Ok(Err(_)) => bail!("replica 1's log task stopped before its election; replica stats: {}", cluster.describe()),
            Ok(Ok((false, s))) => bail!("replica 1's election failed: {s:?}; replica stats: {}", cluster.describe()),
            Ok(Ok((true, _))) => {}
        }
        cluster.elected_in = started.elapsed();
        Ok(cluster)
    }

    fn addresses(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.address.clone()).collect()
    }

    fn writer(&self) -> LogHandle {
        self.replicas[0].handle.clone()
    }

    /// Every replica's stats, for error messages.
    fn describe(&self) -> String {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| format!("replica {} ({}): {:?}", i + 1, r.address, *r.handle.stats.borrow()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Untimed, between phases: truncates below the last append (as the registrar does after every
    /// store). Later appends queue behind it; the next warmup absorbs it.
    fn truncate(&self) {
        let last = self.last.load(Ordering::Relaxed);
        if last > 0 {
            let _ = self.replicas[0].handle.inbox.send(Input::Truncate(last));
        }
    }

    /// The bench's HTTP front of the writer: `POST /v3/kv/put` with etcd's JSON (base64 value),
    /// answered after `handle.append` completes. Returns its URL.
    async fn start_endpoint(&mut self) -> Result<String> {
        let listener = tokio::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).await.context("cannot bind 127.0.0.1:0")?;
        let addr: SocketAddr = listener.local_addr().context("no local address")?;
        let state = (self.writer(), self.last.clone());
        let app = axum::Router::new().route(PUT_PATH, axum::routing::post(put_handler)).with_state(state);
        let server = serve(listener, app, &self.stop).await;
        self.servers.push(server);
        Ok(format!("http://{addr}{PUT_PATH}"))
    }

    /// Stops the servers (gracefully, so their connections end and the replicas' inboxes close).
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server).await.is_err() {
                abort.abort();
            }
        }
        self.replicas.clear();
    }
}

impl Drop for TepuiCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for server in &self.servers {
            server.abort();
        }
    }
}

type EndpointState = (LogHandle, Arc<std::sync::atomic::AtomicU64>);

async fn put_handler(
    axum::extract::State((handle, last)): axum::extract::State<EndpointState>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    let value = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("value").and_then(|v| v.as_str()).map(|s| B64.decode(s)));
    let bytes = match value {
        Some(Ok(bytes)) => bytes,
        _ => return (StatusCode::BAD_REQUEST, "{\"error\":\"expected {\\\"key\\\":...,\\\"value\\\":base64}\"}".into()),
    };
    match handle.append(bytes).await {
        Ok(position) => {
            last.fetch_max(position, Ordering::Relaxed);
            (StatusCode::OK, format!("{{\"header\":{{\"revision\":\"{position}\"}}}}"))
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "error": e.to_string() }).to_string()),
    }
}

async fn append_op(handle: &LogHandle, bytes: Vec<u8>, last: &std::sync::atomic::AtomicU64, timeout: Duration) -> Result<()> {
    match tokio::time::timeout(timeout, handle.append(bytes)).await {
        Err(_) => bail!("append did not complete within {timeout:?}"),
        Ok(Err(e)) => bail!("append failed: {e} ({e:?})"),
        Ok(Ok(position)) => {
            last.fetch_max(position, Ordering::Relaxed);
            Ok(())
        }
    }
}

async fn tepui_in_process(cluster: &TepuiCluster, s: &Settings, value: &Arc<Vec<u8>>) -> Result<SystemFigures> {
    let handle = cluster.writer();
    let last = cluster.last.clone();
    let op = {
        let (handle, value, last, timeout) = (handle.clone(), value.clone(), last.clone(), s.op_timeout);
        move |_i: usize| {
            let (handle, value, last) = (handle.clone(), value.clone(), last.clone());
            async move { append_op(&handle, value.to_vec(), &last, timeout).await }
        }
    };
    sequential(s.warmup, &op).await.context("warmup")?;
    let latencies = sequential(s.appends, &op).await?;
    let seq = summarize(&latencies);
    print_sequential(&seq, s.appends, None);
    cluster.truncate();
    sequential(s.warmup, &op).await.context("warmup")?;
    let cpu0 = self_cpu();
    let (elapsed, latencies) = concurrent(s.throughput_appends, s.concurrency, op).await?;
    let cpu = self_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    let t = throughput(s.throughput_appends, s.value_bytes, elapsed, &latencies, cpu);
    print_throughput(&t, s.concurrency);
    cluster.truncate();
    Ok(SystemFigures { sequential: seq, throughput: t })
}

// ------------------------------------------------------------------------------------------------
// The HTTP client side, the same for tepui's endpoint and etcd's gateway

fn put_body(prefix: &str, i: usize, value_b64: &str) -> String {
    let key = B64.encode(format!("bench/{prefix}/{i:08}"));
    format!("{{\"key\":\"{key}\",\"value\":\"{value_b64}\"}}")
}

async fn put(client: &reqwest::Client, url: &str, body: String) -> Result<()> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.with_context(|| format!("POST {url}: reading the answer"))?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {}", text.chars().take(300).collect::<String>());
    }
    if !text.contains("\"header\"") {
        bail!("POST {url}: unexpected answer: {}", text.chars().take(300).collect::<String>());
    }
    Ok(())
}

async fn http_system(
    name: &str,
    client: &reqwest::Client,
    url: &str,
    value_b64: &Arc<str>,
    s: &Settings,
    etcd: Option<&mut EtcdCluster>,
    tepui: Option<&TepuiCluster>,
) -> Result<SystemFigures> {
    let make = |phase: &'static str| {
        let (client, url, value_b64) = (client.clone(), Arc::<str>::from(url), value_b64.clone());
        let prefix = format!("{name}-{phase}");
        move |i: usize| {
            let (client, url, body) = (client.clone(), url.clone(), put_body(&prefix, i, &value_b64));
            async move { put(&client, &url, body).await }
        }
    };
    let mut etcd = etcd;
    sequential(s.warmup, make("warmup1")).await.context("warmup")?;
    let latencies = sequential(s.appends, make("seq")).await?;
    let seq = summarize(&latencies);
    print_sequential(&seq, s.appends, None);
    if let Some(c) = tepui {
        c.truncate();
    }
    if let Some(e) = etcd.as_deref_mut() {
        e.check_alive()?;
    }
    sequential(s.warmup, make("warmup2")).await.context("warmup")?;
    let etcd_cpu0 = etcd.as_deref().map(|e| e.cpu());
    let cpu0 = self_cpu();
    let (elapsed, latencies) = concurrent(s.throughput_appends, s.concurrency, make("tput")).await?;
    let mut cpu = self_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    if let Some(e) = etcd.as_deref() {
        cpu = match (cpu, e.cpu(), etcd_cpu0.flatten()) {
            (Some(c), Some(b), Some(a)) => Some(c + b.saturating_sub(a)),
            _ => None,
        };
    }
    let t = throughput(s.throughput_appends, s.value_bytes, elapsed, &latencies, cpu);
    print_throughput(&t, s.concurrency);
    if let Some(c) = tepui {
        c.truncate();
    }
    Ok(SystemFigures { sequential: seq, throughput: t })
}

// ------------------------------------------------------------------------------------------------
// etcd

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")]).map(|d| d.join(name)).find(|p| p.is_file())
}

const INSTALL_HINT: &str = "install it with `apt-get install -y etcd-server etcd-client` (as root), or run `tepui-bench replog --install` as root, or pass --etcd PATH";

fn find_etcd(args: &ReplogArgs) -> Result<PathBuf> {
    if let Some(p) = &args.etcd {
        if !p.is_file() {
            bail!("no etcd binary at {}", p.display());
        }
        return Ok(p.clone());
    }
    if let Some(p) = on_path("etcd") {
        return Ok(p);
    }
    if !args.install {
        bail!("etcd is not installed; {INSTALL_HINT}");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("etcd is not installed and --install needs root; {INSTALL_HINT}");
    }
    println!("  etcd is missing: apt-get install -y etcd-server etcd-client");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "etcd-server", "etcd-client"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
    };
    let mut ok = install().map(|s| s.success()).unwrap_or(false);
    if !ok {
        println!("  apt-get install failed; running apt-get update first");
        let _ = Command::new("apt-get").arg("update").stdin(Stdio::null()).stdout(Stdio::null()).status();
        ok = install().map(|s| s.success()).context("cannot run apt-get")?;
    }
    if !ok {
        bail!("`apt-get install -y etcd-server etcd-client` failed");
    }
    on_path("etcd").context("apt-get installed etcd-server but no `etcd` binary is on PATH")
}

fn etcd_version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").stdin(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("etcd Version:").map(|v| format!("etcd {}", v.trim())))
}

struct EtcdMember {
    name: String,
    child: Option<Child>,
    pid: u32,
    client_url: String,
    log: PathBuf,
}

/// Three etcd processes; stopped (SIGTERM, then SIGKILL) on drop.
struct EtcdCluster {
    members: Vec<EtcdMember>,
}

fn json_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl EtcdCluster {
    /// Spawns the members (from the bench's main thread: see `run_main`).
    fn start(binary: &Path, dir: &Path) -> Result<EtcdCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Six distinct free ports (held open until all are chosen).
        let mut held = Vec::new();
        let mut ports = Vec::new();
        while ports.len() < 6 {
            let l = StdTcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
            let p = l.local_addr()?.port();
            if !ports.contains(&p) {
                ports.push(p);
                held.push(l);
            }
        }
        drop(held);
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial: Vec<String> = (0..3).map(|i| format!("e{}={}", i + 1, peer(i))).collect();
        let initial = initial.join(",");
        let token = format!("tepui-bench-{}", std::process::id());
        let mut cluster = EtcdCluster { members: Vec::new() };
        for i in 0..3 {
            let name = format!("e{}", i + 1);
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
            let log = dir.join(format!("{name}.log"));
            let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
            let err = out.try_clone()?;
            let mut cmd = Command::new(binary);
            cmd.arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(dir.join(&name))
                .arg("--listen-client-urls")
                .arg(&client_url)
                .arg("--advertise-client-urls")
                .arg(&client_url)
                .arg("--listen-peer-urls")
                .arg(peer(i))
                .arg("--initial-advertise-peer-urls")
                .arg(peer(i))
                .arg("--initial-cluster")
                .arg(&initial)
                .arg("--initial-cluster-token")
                .arg(&token)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--logger")
                .arg("zap")
                .arg("--log-outputs")
                .arg("stderr")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .process_group(0);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("ETCD_") {
                    cmd.env_remove(k);
                }
            }
            if std::env::consts::ARCH == "aarch64" {
                cmd.env("ETCD_UNSUPPORTED_ARCH", "arm64");
            }
            // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no parent memory. If
            // the bench dies without its guard (SIGKILL), the kernel kills the member.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
            let pid = child.id();
            cluster.members.push(EtcdMember { name, child: Some(child), pid, client_url, log });
        }
        Ok(cluster)
    }

    fn check_alive(&mut self) -> Result<()> {
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("etcd member {} exited ({status}); last lines of {}:\n{}", m.name, m.log.display(), crate::devproc::log_tail(&m.log, 20));
                }
            }
        }
        Ok(())
    }

    /// Waits until every member names the same leader; returns its index.
    async fn wait_leader(&mut self, client: &reqwest::Client, timeout: Duration) -> Result<usize> {
        let until = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        loop {
            self.check_alive()?;
            let mut views = Vec::new();
            for m in &self.members {
                let url = format!("{}/v3/maintenance/status", m.client_url);
                let answer = async {
                    let r = client.post(&url).body("{}").send().await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await?;
                    anyhow::Ok((status, v))
                }
                .await;
                match answer {
                    Ok((status, v)) if status.is_success() => {
                        let member = json_u64(v.get("header").and_then(|h| h.get("member_id")));
                        let leader = json_u64(v.get("leader"));
                        views.push((member, leader));
                    }
                    Ok((status, v)) => last = format!("{url}: {status} {v}"),
                    Err(e) => last = format!("{url}: {e:#}"),
                }
            }
            if views.len() == self.members.len() {
                let leader = views[0].1.filter(|l| *l != 0);
                if let Some(leader) = leader.filter(|l| views.iter().all(|v| v.1 == Some(*l))) {
                    if let Some(index) = views.iter().position(|v| v.0 == Some(leader)) {
                        return Ok(index);
                    }
                }
                last = format!("members report (member, leader) = {views:?}");
            }
            if Instant::now() >= until {
                bail!("etcd had no leader within {timeout:?}; last: {last}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// CPU time of all members so far.
    fn cpu(&self) -> Option<Duration> {
        self.members.iter().map(|m| process_cpu(m.pid)).sum()
    }

    fn describe(&self) -> String {
        self.members.iter().map(|m| format!("etcd log {}:\n{}", m.log.display(), crate::devproc::log_tail(&m.log, 5))).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        let signal = |pid: u32, sig| {
            // SAFETY: kill only signals our own child, whose pid is still ours (not yet reaped).
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        };
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if matches!(child.try_wait(), Ok(None)) {
                    signal(m.pid, libc::SIGTERM);
                }
            }
        }
        // The data is thrown away, so a short grace: an etcd leader whose followers already left
        // spends seconds trying to hand its leadership over before it exits.
        let until = Instant::now() + Duration::from_secs(3);
        for m in &mut self.members {
            let Some(mut child) = m.child.take() else { continue };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= until => {
                        eprintln!("tepui-bench replog: etcd member {} still running 3 s after SIGTERM (a leader first tries to hand over leadership); killed, its data is discarded anyway", m.name);
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Report

fn opt(v: Option<f64>) -> serde_json::Value {
    match v {
        Some(v) if v.is_finite() => serde_json::json!(r3(v)),
        _ => serde_json::Value::Null,
    }
}

/// Prints the report and the JSON line; false when a measured part failed.
fn report(s: &Settings, f: &Figures, cpus: usize, load_before: Option<f64>) -> bool {
    let load_after = procfs::load_1min();
    let fs = f.fsync.p50_ms;
    println!("\n================ replicated log benchmark ================");
    println!(
        "machine: {} cpus, load average (1 min) {} -> {}",
        cpus,
        load_before.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into()),
        load_after.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into())
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
        println!("{}: leader after {:.2} s", f.etcd_version.as_deref().unwrap_or("etcd"), e.as_secs_f64());
    }
    println!();
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>8} | {:>9} {:>8} {:>10} {:>10} {:>9}",
        "", "seq p50", "seq p99", "seq max", "p50/fs", "ops/s", "MB/s", "load p50", "load p99", "CPU/op"
    );
    let rows = [("tepui in-process", &f.tepui), ("tepui over HTTP", &f.tepui_http), ("etcd over HTTP", &f.etcd)];
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
    let show = |v: Option<f64>| v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "n/a".into());
    println!();
    println!("tepui / etcd (both over HTTP): latency p50 {}, p99 {}; throughput {}", show(http_p50), show(http_p99), show(http_ops));
    println!("tepui in-process / etcd over HTTP: latency p50 {}; throughput {}", show(in_p50), show(in_ops));
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
    for (key, outcome) in [("tepui", &f.tepui), ("tepui_http", &f.tepui_http), ("etcd", &f.etcd)] {
        let obj = line.as_object_mut().expect("object");
        match outcome {
            Outcome::Measured(m) => {
                obj.insert(format!("{key}_p50_ms"), opt(Some(m.sequential.p50_ms)));
                obj.insert(format!("{key}_p90_ms"), opt(Some(m.sequential.p90_ms)));
                obj.insert(format!("{key}_p99_ms"), opt(Some(m.sequential.p99_ms)));
                obj.insert(format!("{key}_max_ms"), opt(Some(m.sequential.max_ms)));
                obj.insert(format!("{key}_p50_over_fsync_p50"), opt(Some(m.sequential.p50_ms / fs)));
                obj.insert(format!("{key}_ops_per_s"), opt(Some(m.throughput.per_s)));
                obj.insert(format!("{key}_mb_per_s"), opt(Some(m.throughput.mb_per_s)));
                obj.insert(format!("{key}_throughput_s"), opt(Some(m.throughput.elapsed.as_secs_f64())));
                obj.insert(format!("{key}_loaded_p50_ms"), opt(Some(m.throughput.latency.p50_ms)));
                obj.insert(format!("{key}_loaded_p99_ms"), opt(Some(m.throughput.latency.p99_ms)));
                obj.insert(format!("{key}_cpu_ms_per_op"), opt(m.throughput.cpu_ms_per_op));
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
