//! Resource isolation of task containers: `--isolation` (Mesos isolator names).
//!
//! What: an `Isolator` sets a container up before its first process runs (`prepare`), learns its
//! process (`isolate`), reports when the container went over a limit (`watch`, `limitation`),
//! measures it (`usage`, for `/monitor/statistics`) and tears it down (`cleanup`). Two backends:
//!
//! - `posix/cpu,posix/mem` (the default, `posix.rs`): nothing is enforced by the kernel. CPU is
//!   only measured. Memory is *enforced by polling*: every `POSIX_POLL` (longer on a host with
//!   so many processes that a pass takes over 1/20 of it, see `poll_wait`) the anonymous resident
//!   memory (RSS minus file-backed and shared pages) of every process in the task's process group
//!   is summed from `/proc`, and a group over its limit is SIGKILLed and reported as a memory
//!   limitation. Mesos' `posix/mem` only reports usage; we enforce because on a host without
//!   cgroup permission that is the only protection other tasks get, and because schedulers then
//!   see the same `TASK_FAILED` / `REASON_CONTAINER_LIMITATION_MEMORY` as under `cgroups/mem`.
//!   Its limits: a burst faster than the poll period can overshoot before the kill; processes
//!   that leave the process group (`setsid`, `setpgid`) escape it; pages shared copy-on-write after
//!   `fork` count once per process (the sum can overstate a fork-heavy task).
//! - `cgroups/cpu,cgroups/mem` (`cgroups.rs`): cgroup v1 or v2, whichever the host mounts each
//!   controller on (read from `/proc/self/mountinfo`). One group `<cgroups_root>/<container_id>`
//!   per controller hierarchy (v1) or one unified group (v2); the kernel enforces the memory limit
//!   (its OOM killer) and the CPU share and CFS quota.
//!
//! Mixing is allowed (`cgroups/cpu,posix/mem`). Other Mesos isolator names are accepted with a
//! warning and ignored; unknown names are a flag error. When cgroups are asked for but cannot be
//! used (not mounted, not writable), `from_flags` falls back to the posix isolators and returns a
//! warning that the agent logs at start: the fallback is never silent.
//!
//! Who spawns does not matter: `prepare` returns a `Prepared` whose `PreExec` step is
//! async-signal-safe (it writes the child's pid into already-open `cgroup.procs` descriptors, no
//! allocation), so any spawner runs it between fork and exec. In this process: `pre_exec()`. In
//! another one (the launcher daemon): `spawn_isolation()` travels as `LaunchRequest.isolation`
//! and the daemon's `JoinCgroups` hook (`daemon.rs`) opens the files and runs the same step.
//! Call order per container: `prepare` → spawn with the pre-exec step → `isolate(pid)` →
//! (`watch` / `usage` while it runs) → after the process is reaped: `limitation` → `cleanup`.
//! After an agent restart: `recover` for each container still running (or whose exit is still to
//! be reported), then `cleanup` for each of `leftover_containers`. `agent.rs` is the driver's
//! side of all this.
//!
//! Memory limits below 32 MB are raised to 32 MB (Mesos' minimum container memory), for both
//! backends, so a task behaves the same whichever isolator runs it.

pub(crate) mod agent;
mod cgroups;
mod daemon;
mod posix;
mod proc_stat;
mod registry;
pub(crate) mod statistics;

pub use cgroups::{CgroupsIsolator, Hierarchy, Version};
pub use daemon::JoinCgroups;
pub use posix::PosixIsolator;

use proto::TaskInfo;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `--isolation` default (Mesos' default).
pub const DEFAULT_ISOLATION: &str = "posix/cpu,posix/mem";
/// `--cgroups_root` default: the group under each hierarchy that holds the containers' groups.
pub const DEFAULT_CGROUPS_ROOT: &str = "tepui";
/// The reason of a task stopped for going over its memory limit.
pub const REASON_CONTAINER_LIMITATION_MEMORY: &str = "REASON_CONTAINER_LIMITATION_MEMORY";
/// Smallest memory limit applied (Mesos' `MIN_MEMORY`).
pub const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
/// Period of the posix memory check: one pass over `/proc` (about 17 ms with 1,000 task
/// processes on the reference machine, so about 3% of one core at this period).
pub const POSIX_POLL: Duration = Duration::from_millis(500);
/// Period of the cgroups OOM check (one small file read per container).
pub const CGROUPS_POLL: Duration = Duration::from_millis(500);

const MIB: f64 = 1024.0 * 1024.0;

/// What a container may use, taken from its task.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Requested CPUs: the CPU share (`cpu.shares` = 1024 × cpus, `cpu.weight`).
    pub cpus: Option<f64>,
    /// Hard CPU cap for the CFS quota; `None` means no quota (no cpus, or a `limits.cpus` of
    /// `Infinity`).
    pub cpu_quota: Option<f64>,
    /// Hard memory limit in bytes (at least `MIN_MEMORY_BYTES`); `None` means unlimited.
    pub mem_bytes: Option<u64>,
}

impl Limits {
    /// From the task's `cpus` and `mem` (MB) resources; a task `limits` (`{"cpus":"Infinity",
    /// "mem":512.0}`) raises the hard caps above the request as Mesos does.
    pub fn from_task(task: &TaskInfo) -> Limits {
        let scalar = |name: &str| -> Option<f64> {
            let total: f64 = task
                .resources
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
                .filter(|v| v.is_finite() && *v > 0.0)
                .sum();
            (total > 0.0).then_some(total)
        };
        let limit = |name: &str| -> Option<f64> {
            let value = task.limits.as_ref()?.get(name)?;
            match value {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "infinity" | "inf" => Some(f64::INFINITY),
                    other => other.parse().ok(),
                },
                _ => None,
            }
            .filter(|v| *v > 0.0)
        };
        let cpus = scalar("cpus");
        let cpu_quota = match limit("cpus") {
            Some(v) if v.is_infinite() => None,
            Some(v) => Some(v.max(cpus.unwrap_or(0.0))),
            None => cpus,
        };
        let mem_mb = match limit("mem") {
            Some(v) if v.is_infinite() => None,
            Some(v) => Some(v.max(scalar("mem").unwrap_or(0.0))),
            None => scalar("mem"),
        };
        Limits {
            cpus,
            cpu_quota,
            mem_bytes: mem_mb.map(|mb| ((mb * MIB) as u64).max(MIN_MEMORY_BYTES)),
        }
    }
}

/// Which resource a limitation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedResource {
    Mem,
}

/// A container went over a limit; its processes were (or are being) killed.
#[derive(Debug, Clone, PartialEq)]
pub struct Limitation {
    pub resource: LimitedResource,
    /// `REASON_*` for the task's terminal status.
    pub reason: &'static str,
    /// Human text for the status' `message`, naming the limit.
    pub message: String,
}

impl Limitation {
    pub(crate) fn memory(
        limit_bytes: Option<u64>,
        used_bytes: Option<u64>,
        how: &str,
    ) -> Limitation {
        let mut message = String::from("Memory limit exceeded:");
        if let Some(limit) = limit_bytes {
            message.push_str(&format!(" Requested: {}", format_mb(limit)));
        }
        if let Some(used) = used_bytes {
            message.push_str(&format!(" Maximum Used: {}", format_mb(used)));
        }
        message.push_str(&format!(" ({how})"));
        Limitation {
            resource: LimitedResource::Mem,
            reason: REASON_CONTAINER_LIMITATION_MEMORY,
            message,
        }
    }
}

/// `64MB`, `63.5MB`: bytes as Mesos prints memory sizes in limitation messages.
pub fn format_mb(bytes: u64) -> String {
    let mb = bytes as f64 / MIB;
    let text = format!("{mb:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}MB")
}

/// A container's resource usage (Mesos `ResourceStatistics` field names; unknown values are left
/// out of the JSON).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_user_time_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_system_time_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_nr_periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_nr_throttled: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_throttled_time_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_anon_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_limit_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container '{0}' is not known to the isolator")]
    UnknownContainer(String),
    #[error("{0}")]
    Other(String),
}

impl IsolationError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IsolationError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// What `prepare` hands the spawner. Keep it (or the `PreExec` taken from it) alive until the
/// spawn returned: it owns the descriptors the child writes to.
#[derive(Debug, Default)]
pub struct Prepared {
    pre_exec: Option<PreExec>,
    paths: Vec<PathBuf>,
}

impl Prepared {
    /// Nothing to do in the child (posix isolation).
    pub fn none() -> Prepared {
        Prepared::default()
    }

    pub(crate) fn join(procs: Vec<(PathBuf, File)>) -> Prepared {
        let (paths, files): (Vec<PathBuf>, Vec<File>) = procs.into_iter().unzip();
        Prepared {
            pre_exec: (!files.is_empty()).then(|| PreExec {
                procs: Arc::new(files),
            }),
            paths,
        }
    }

    /// The step a freshly forked child of *this* process must run before exec, if any. Spawning
    /// with std: `unsafe { cmd.pre_exec(move || step.run()) }` (with a pre-exec hook std forks
    /// instead of using `posix_spawn`; posix isolation returns `None` and keeps the fast path).
    pub fn pre_exec(&self) -> Option<PreExec> {
        self.pre_exec.clone()
    }

    /// The same step for a spawner in another process (the launcher daemon): serialisable, turned
    /// back into a `PreExec` there with `SpawnIsolation::open`.
    pub fn spawn_isolation(&self) -> SpawnIsolation {
        SpawnIsolation {
            cgroup_procs: self.paths.clone(),
        }
    }
}

/// What a spawner in another process needs to put a container's first process into its cgroups;
/// travels as `LaunchRequest.isolation` (`to_value` / `from_value`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpawnIsolation {
    /// `cgroup.procs` files the child writes its pid to before exec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_procs: Vec<PathBuf>,
}

impl SpawnIsolation {
    /// JSON for `LaunchRequest.isolation`; `null` (left off the wire) when there is nothing to do.
    pub fn to_value(&self) -> serde_json::Value {
        if self.cgroup_procs.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!({ "cgroup_procs": self.cgroup_procs })
        }
    }

    pub fn from_value(value: &serde_json::Value) -> Result<SpawnIsolation, String> {
        if value.is_null() {
            return Ok(SpawnIsolation::default());
        }
        serde_json::from_value(value.clone())
            .map_err(|e| format!("unreadable isolation for the launch: {e}"))
    }

    /// Opens the files (write-only, close-on-exec) in the spawning process, before fork. `None`
    /// when there is nothing to join.
    pub fn open(&self) -> std::io::Result<Option<PreExec>> {
        if self.cgroup_procs.is_empty() {
            return Ok(None);
        }
        let mut files = Vec::with_capacity(self.cgroup_procs.len());
        for path in &self.cgroup_procs {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
                })?;
            files.push(file);
        }
        Ok(Some(PreExec {
            procs: Arc::new(files),
        }))
    }
}

/// Joins the calling process to the container's cgroups: writes its pid to each group's
/// `cgroup.procs`, opened (close-on-exec) by `prepare`.
#[derive(Debug, Clone)]
pub struct PreExec {
    procs: Arc<Vec<File>>,
}

impl PreExec {
    /// Async-signal-safe (getpid, write; no allocation, no locks): meant for the child between
    /// fork and exec. Also fine to call in a process that wants to move itself.
    pub fn run(&self) -> std::io::Result<()> {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut buf = [0u8; 24];
        let len = format_decimal(pid.max(0) as u64, &mut buf);
        for file in self.procs.iter() {
            // SAFETY: the descriptor is open (owned by `self.procs`), the buffer is valid for `len`.
            let rc = unsafe { libc::write(file.as_raw_fd(), buf.as_ptr().cast(), len) };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if rc as usize != len {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
        }
        Ok(())
    }

    /// The descriptors the child writes to (for spawners that fork by other means).
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }
}

/// Writes `value` in decimal at the start of `buf`, returns the length (no allocation).
fn format_decimal(mut value: u64, buf: &mut [u8; 24]) -> usize {
    let mut tmp = [0u8; 24];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[i] = tmp[n - 1 - i];
    }
    n
}

/// A container isolator. Every method is blocking file system work (small reads and writes, and
/// a bounded wait in `cleanup`): call it from a blocking context, never from an async task that
/// must stay responsive.
pub trait Isolator: Send + Sync + 'static {
    /// The isolation in force, as `--isolation` spells it (e.g. `cgroups/cpu,cgroups/mem`).
    fn name(&self) -> String;

    /// Sets the container up (creates its cgroups and writes their limits) before its first
    /// process exists; returns what the forked child must do before exec.
    fn prepare(&self, container_id: &str, limits: &Limits) -> Result<Prepared, IsolationError>;

    /// The container's first process was spawned (leader of its own process group).
    fn isolate(&self, container_id: &str, pid: u32) -> Result<(), IsolationError>;

    /// Resolves with the container's limitation when one is detected (at once if already seen).
    /// The isolator has already killed the container's processes when it fires. The sender is
    /// dropped (the receiver errors) when the container is cleaned up without a limitation.
    fn watch(&self, container_id: &str) -> tokio::sync::oneshot::Receiver<Limitation>;

    /// Whether the container went over a limit. Call after its process exited and before
    /// `cleanup`: this also checks the kernel's counters directly, so an OOM kill the poller has
    /// not seen yet is still reported.
    fn limitation(&self, container_id: &str) -> Option<Limitation>;

    /// The container's current usage.
    fn usage(&self, container_id: &str) -> Result<Usage, IsolationError>;

    /// The usage of several containers at once (unknown ones are left out); cheaper than one
    /// `usage` each where a measurement covers them all (one pass over `/proc`).
    fn usages(&self, container_ids: &[String]) -> Vec<(String, Usage)> {
        container_ids
            .iter()
            .filter_map(|id| Some((id.clone(), self.usage(id).ok()?)))
            .collect()
    }

    /// Kills whatever still runs in the container and removes its cgroups. Idempotent.
    fn cleanup(&self, container_id: &str) -> Result<(), IsolationError>;

    /// Containers prepared (or recovered) and not yet cleaned up.
    fn containers(&self) -> Vec<String>;

    /// Re-attaches to a container that outlived an agent restart (its cgroups exist, its process
    /// runs under the launcher daemon): `watch`, `limitation`, `usage` and `cleanup` work for it
    /// again. Creates and writes nothing. `pid` is its leader, when known.
    fn recover(
        &self,
        container_id: &str,
        limits: &Limits,
        pid: Option<u32>,
    ) -> Result<(), IsolationError>;

    /// Containers that have groups on this host but are not tracked here (left by an agent that
    /// stopped without cleaning up): after recovery, `cleanup` each one not recovered.
    fn leftover_containers(&self) -> Vec<String>;
}

/// Which backend enforces a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Posix,
    Cgroups,
}

/// A parsed `--isolation` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub cpu: Option<Backend>,
    pub mem: Option<Backend>,
    /// Known Mesos isolators this agent does not implement (ignored, with a warning).
    pub ignored: Vec<String>,
}

/// Mesos isolator names accepted and ignored.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "appc/runtime",
    "cgroups/blkio",
    "cgroups/cpuset",
    "cgroups/devices",
    "cgroups/hugetlb",
    "cgroups/net_cls",
    "cgroups/net_prio",
    "cgroups/perf_event",
    "cgroups/pids",
    "disk/du",
    "disk/xfs",
    "docker/runtime",
    "docker/volume",
    "environment_secret",
    "filesystem/linux",
    "filesystem/posix",
    "filesystem/shared",
    "filesystem/windows",
    "gpu/nvidia",
    "linux/capabilities",
    "linux/devices",
    "linux/nnp",
    "linux/seccomp",
    "namespaces/ipc",
    "namespaces/pid",
    "network/cni",
    "network/port_mapping",
    "network/ports",
    "posix/disk",
    "posix/rlimits",
    "volume/csi",
    "volume/host_path",
    "volume/image",
    "volume/sandbox_path",
    "volume/secret",
    "windows/cpu",
    "windows/mem",
];

impl Selection {
    pub fn parse(text: &str) -> Result<Selection, String> {
        let mut selection = Selection::default();
        let set = |slot: &mut Option<Backend>,
                   backend: Backend,
                   name: &str|
         -> Result<(), String> {
            match *slot {
                Some(existing) if existing != backend => Err(format!(
                    "'{name}' conflicts with another isolator for the same resource; pick one of posix/ and cgroups/"
                )),
                _ => {
                    *slot = Some(backend);
                    Ok(())
                }
            }
        };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "posix/cpu" => set(&mut selection.cpu, Backend::Posix, name)?,
                "posix/mem" => set(&mut selection.mem, Backend::Posix, name)?,
                "cgroups/cpu" => set(&mut selection.cpu, Backend::Cgroups, name)?,
                "cgroups/mem" => set(&mut selection.mem, Backend::Cgroups, name)?,
                "cgroups/all" => {
                    set(&mut selection.cpu, Backend::Cgroups, name)?;
                    set(&mut selection.mem, Backend::Cgroups, name)?;
                }
                other if KNOWN_UNSUPPORTED.contains(&other) => {
                    if !selection.ignored.iter().any(|n| n == other) {
                        selection.ignored.push(other.to_string());
                    }
                }
                other => {
                    return Err(format!(
                        "unknown isolator '{other}' (supported: posix/cpu, posix/mem, cgroups/cpu, cgroups/mem)"
                    ))
                }
            }
        }
        Ok(selection)
    }

    pub fn uses_cgroups(&self) -> bool {
        self.cpu == Some(Backend::Cgroups) || self.mem == Some(Backend::Cgroups)
    }

    /// The same resources, all on the posix backend.
    pub fn posix_fallback(&self) -> Selection {
        Selection {
            cpu: self.cpu.map(|_| Backend::Posix),
            mem: self.mem.map(|_| Backend::Posix),
            ignored: self.ignored.clone(),
        }
    }

    /// Canonical `--isolation` text of what is implemented (`posix/cpu,posix/mem`).
    pub fn names(&self) -> String {
        let name = |b: Backend, r: &str| match b {
            Backend::Posix => format!("posix/{r}"),
            Backend::Cgroups => format!("cgroups/{r}"),
        };
        let mut names = Vec::new();
        if let Some(b) = self.cpu {
            names.push(name(b, "cpu"));
        }
        if let Some(b) = self.mem {
            names.push(name(b, "mem"));
        }
        names.join(",")
    }
}

/// Isolation settings, checked (from `--isolation`, `--cgroups_hierarchy`, `--cgroups_root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationConfig {
    /// The `--isolation` text as given.
    pub requested: String,
    pub selection: Selection,
    /// Where the cgroup hierarchies are mounted; `None` reads `/proc/self/mountinfo`.
    pub cgroups_hierarchy: Option<PathBuf>,
    /// Group (relative path) under each hierarchy that holds the containers' groups.
    pub cgroups_root: PathBuf,
}

impl IsolationConfig {
    /// Errors name the flag at fault (`isolation` or `cgroups_root`) and say why.
    pub fn new(
        isolation: &str,
        cgroups_hierarchy: Option<PathBuf>,
        cgroups_root: &str,
    ) -> Result<Self, (&'static str, String)> {
        let selection = Selection::parse(isolation).map_err(|e| ("isolation", e))?;
        let root = PathBuf::from(cgroups_root.trim().trim_matches('/'));
        let clean = !root.as_os_str().is_empty()
            && root
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !clean {
            return Err((
                "cgroups_root",
                format!("'{cgroups_root}' must be a relative group name such as 'tepui'"),
            ));
        }
        Ok(IsolationConfig {
            requested: isolation.to_string(),
            selection,
            cgroups_hierarchy,
            cgroups_root: root,
        })
    }
}

/// The isolator the agent runs with, and what to tell the operator about the choice.
pub struct Chosen {
    pub isolator: Arc<dyn Isolator>,
    /// Set when the agent runs with less than was asked for (cgroups unusable, ignored names).
    /// The caller logs it at WARN at start.
    pub warning: Option<String>,
}

impl std::fmt::Debug for Chosen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chosen")
            .field("isolator", &self.isolator.name())
            .field("warning", &self.warning)
            .finish()
    }
}

/// Builds the isolator `--isolation` asks for. Cgroups that cannot be used (not mounted, not
/// writable, controllers missing) fall back to posix with a warning naming the reason.
pub fn from_flags(config: &IsolationConfig) -> Chosen {
    let selection = &config.selection;
    let mut warnings = Vec::new();
    if !selection.ignored.is_empty() {
        warnings.push(format!(
            "--isolation: {} not supported by this agent; ignored",
            selection.ignored.join(", ")
        ));
    }
    let isolator: Arc<dyn Isolator> = if selection.uses_cgroups() {
        match CgroupsIsolator::new(
            selection,
            config.cgroups_hierarchy.as_deref(),
            &config.cgroups_root,
        ) {
            Ok(isolator) => Arc::new(isolator),
            Err(reason) => {
                let fallback = selection.posix_fallback();
                warnings.push(format!(
                    "--isolation={} requested but {reason}: falling back to {}",
                    config.requested,
                    fallback.names()
                ));
                Arc::new(PosixIsolator::for_selection(&fallback))
            }
        }
    } else {
        Arc::new(PosixIsolator::for_selection(selection))
    };
    Chosen {
        isolator,
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    }
}

/// Wall-clock seconds for `Usage::timestamp`.
pub(crate) fn wall_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs `check` on the target every `period` on a named thread, until the target is dropped.
pub(crate) fn spawn_poller<T: Send + Sync + 'static>(
    name: &str,
    target: std::sync::Weak<T>,
    period: Duration,
    check: fn(&T),
) {
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut wait = period;
            loop {
                std::thread::sleep(wait);
                let Some(target) = target.upgrade() else {
                    break;
                };
                let started = std::time::Instant::now();
                check(&target);
                wait = poll_wait(period, started.elapsed());
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the isolation monitor thread; limits are not watched");
    }
}

/// How many times its own duration a poll waits at least before the next one: a pass over
/// `/proc` grows with the processes on the host, so with thousands of tasks polling every
/// `period` would take a good part of a core; this keeps it under 1/(1+20) ≈ 5% of one.
const POLL_IDLE_FACTOR: u32 = 20;

/// The wait before the next poll: `period`, or longer when the last poll took long.
fn poll_wait(period: Duration, last_poll: Duration) -> Duration {
    period.max(last_poll.saturating_mul(POLL_IDLE_FACTOR))
}

#[cfg(test)]
mod tests;
