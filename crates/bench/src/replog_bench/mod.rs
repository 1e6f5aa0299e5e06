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
//!
//! Layout: this file parses the flags and runs the phases in order; `replicas.rs` is tepui's
//! 3-replica cluster and its in-process driver, `etcd.rs` finds, starts and stops etcd, `http.rs`
//! is the client side shared by both over HTTP, `drivers.rs` the sequential and concurrent load
//! loops and CPU accounting, `report.rs` the figures and their printout.

mod drivers;
mod etcd;
mod http;
mod replicas;
mod report;

use crate::procfs;
use crate::stats::summarize;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use clap::Parser;
use etcd::{etcd_version_of, find_etcd, EtcdCluster};
use http::http_system;
use replicas::{tepui_in_process, TepuiCluster};
use report::{report, Figures, Outcome, SystemFigures};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The write size of the raw fsync probe (the same as the default value size).
const FSYNC_BYTES: usize = 4096;
const QUORUM: usize = 2;
const PUT_PATH: &str = "/v3/kv/put";

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
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
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
            eprintln!(
                "tepui-bench replog: could not remove {}: {e}",
                self.path.display()
            );
        }
    }
}

fn run_main(args: ReplogArgs) -> Result<bool> {
    let q = args.quick;
    let settings = Settings {
        appends: args.appends.unwrap_or(if q { 200 } else { 2000 }),
        value_bytes: args.value_bytes,
        concurrency: args.concurrency,
        throughput_appends: args
            .throughput_appends
            .unwrap_or(if q { 500 } else { 5000 }),
        warmup: args.warmup.unwrap_or(if q { 10 } else { 50 }),
        fsync_samples: args.fsync_samples.unwrap_or(if q { 100 } else { 500 }),
        op_timeout: positive_secs("op-timeout", args.op_timeout)?,
        startup_timeout: positive_secs("startup-timeout", args.startup_timeout)?,
    };
    if settings.appends == 0
        || settings.throughput_appends == 0
        || settings.concurrency == 0
        || settings.fsync_samples == 0
    {
        bail!(
            "--appends, --throughput-appends, --concurrency and --fsync-samples must be at least 1"
        );
    }
    if settings.value_bytes == 0 {
        bail!("--value-bytes must be at least 1");
    }

    let parent = args.work_parent.clone().unwrap_or_else(std::env::temp_dir);
    let path = parent.join(format!(
        "tepui-bench-replog-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // Declared first, so it is dropped last: after the runtime (tepui's replicas) and etcd are gone.
    let work = WorkDir {
        path,
        keep: args.keep_work_dir,
    };
    let trace_log = work.path.join("tepui-replog.log");
    init_tracing(&trace_log)?;

    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load_before = procfs::load_1min();
    println!(
        "tepui-bench replog: {} on {cpus} cpus, load average (1 min) {}; work dir {} ({})",
        std::env::consts::ARCH,
        load_before
            .map(|l| format!("{l:.2}"))
            .unwrap_or_else(|| "?".into()),
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
        eprintln!(
            "tepui-bench replog: tepui replica log (last lines of {}):",
            trace_log.display()
        );
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

/// The file system type of `path` (a tmpfs would make every fsync free and the figures meaningless).
fn fs_kind(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "?".into();
    };
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

async fn run(args: &ReplogArgs, s: &Settings, work: &Path) -> Result<Figures> {
    // 1. Raw fsync of this disk, before anything else runs.
    println!(
        "\n[1/4] raw fsync: {} x (write {FSYNC_BYTES} B + fdatasync) in {}",
        s.fsync_samples,
        work.join("fsync-probe").display()
    );
    let samples =
        replog::disk::try_measure_fsync(&work.join("fsync-probe"), s.fsync_samples, FSYNC_BYTES)
            .context("raw fsync measurement")?;
    let fsync = summarize(&samples);
    println!(
        "  p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        fsync.p50_ms, fsync.p99_ms, fsync.max_ms
    );

    let value: Arc<Vec<u8>> = Arc::new(
        (0..s.value_bytes)
            .map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8)
            .collect(),
    );
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
    let (tepui, tepui_http) = match TepuiCluster::start(&work.join("tepui"), s.startup_timeout)
        .await
    {
        Err(e) => {
            let msg = format!("{e:#}");
            println!("  FAILED to start: {msg}");
            (
                Outcome::Failed(msg),
                Outcome::Skipped("the cluster did not start".into()),
            )
        }
        Ok(mut cluster) => {
            tepui_elect = Some(cluster.elected_in);
            println!(
                "  replicas {} ; writer elected in {:.1} ms",
                cluster.addresses().join(", "),
                cluster.elected_in.as_secs_f64() * 1e3
            );
            let inproc = tepui_in_process(&cluster, s, &value).await;
            let inproc = finish("tepui in-process", inproc, &cluster);
            println!("\n[3/4] tepui over HTTP: keep-alive reqwest client -> axum endpoint in the bench -> handle.append");
            let http = match inproc {
                Outcome::Failed(_) => Outcome::Skipped("the in-process run failed".into()),
                _ => {
                    let r = async {
                        let url = cluster.start_endpoint().await?;
                        println!("  endpoint {url}");
                        http_system(
                            "tepui-http",
                            &client,
                            &url,
                            &value_b64,
                            s,
                            None,
                            Some(&cluster),
                        )
                        .await
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
                println!(
                    "  {} ({})",
                    binary.display(),
                    etcd_version.as_deref().unwrap_or("version ?")
                );
                let r = async {
                    let started = Instant::now();
                    let mut cluster = EtcdCluster::start(&binary, &work.join("etcd"))?;
                    let leader = cluster.wait_leader(&client, s.startup_timeout).await?;
                    etcd_ready = Some(started.elapsed());
                    println!(
                        "  members {} ; leader {} after {:.1} s",
                        cluster
                            .members
                            .iter()
                            .map(|m| m.client_url.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        cluster.members[leader].name,
                        started.elapsed().as_secs_f64()
                    );
                    let url = format!("{}{PUT_PATH}", cluster.members[leader].client_url);
                    let figures = http_system(
                        "etcd",
                        &client,
                        &url,
                        &value_b64,
                        s,
                        Some(&mut cluster),
                        None,
                    )
                    .await;
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

    Ok(Figures {
        fsync,
        fsync_samples: samples.len(),
        tepui_elect,
        tepui,
        tepui_http,
        etcd_version,
        etcd_ready,
        etcd,
    })
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
