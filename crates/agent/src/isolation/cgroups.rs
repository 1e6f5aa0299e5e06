//! `cgroups/cpu` and `cgroups/mem` on cgroup v1 or v2, whichever the host mounts each controller on.
//!
//! Layout: `<mount>/<cgroups_root>/<container_id>` in every hierarchy used — v1: the `memory`
//! hierarchy, the `cpu` one and (for CPU time) `cpuacct` when it is mounted separately; v2: one
//! group in the unified hierarchy, with the controllers enabled in `cgroup.subtree_control` of
//! every ancestor.
//!
//! Values written (v1 / v2):
//! - memory: `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` when present, so swap does
//!   not extend the limit) / `memory.max` (+ `memory.swap.max` = 0 when present);
//! - CPU share: `cpu.shares` = 1024 × cpus (at least 2) / `cpu.weight` converted from the shares
//!   as systemd and the kernel do (`1 + (shares - 2) × 9999 / 262142`);
//! - CPU cap: `cpu.cfs_quota_us` = cpus × `cpu.cfs_period_us` (at least 1 ms) / `cpu.max` =
//!   `<quota> <period>`.
//!
//! Limitations: the kernel's OOM killer acts inside the group; every `CGROUPS_POLL` the group's
//! OOM-kill counter (v1 `memory.oom_control`, v2 `memory.events`, field `oom_kill`) is read, and a
//! non-zero count records a memory limitation and kills whatever is left in the container (the OOM
//! killer may have picked a child while the task's leader lives on). `limitation` reads the
//! counter again, so an exit that beats the poller is still reported.

use super::posix::PosixIsolator;
use super::registry::Registry;
use super::{
    spawn_poller, Backend, IsolationError, Isolator, Limitation, Limits, Prepared, Selection,
    Usage, CGROUPS_POLL,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `cleanup` keeps killing and retrying `rmdir` before it gives up.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default CFS period when `cpu.cfs_period_us` / `cpu.max` cannot be read.
const DEFAULT_CFS_PERIOD_US: u64 = 100_000;
/// Smallest CFS quota (Mesos' `MIN_CPU_CFS_QUOTA`, 1 ms).
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// Smallest `cpu.shares` the kernel accepts.
const MIN_CPU_SHARES: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
}

/// Where one controller lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    pub mount: PathBuf,
}

/// One line of `/proc/self/mountinfo`, the parts used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    pub super_options: Vec<String>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(value) = u8::try_from(value) {
                    out.push(value);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`: `id parent major:minor root point options [optional...] - fstype
/// source super_options`. Malformed lines are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            let mut right = right.split_whitespace();
            let fstype = right.next()?.to_string();
            let _source = right.next()?;
            let super_options = right
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::to_string)
                .collect();
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                fstype,
                super_options,
            })
        })
        .collect()
}

fn v2_lists(mount: &Path, controller: &str) -> bool {
    std::fs::read_to_string(mount.join("cgroup.controllers"))
        .map(|text| text.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

/// The hierarchy `controller` is mounted on: a v1 mount naming it, else a v2 mount listing it in
/// `cgroup.controllers`. With `under`, only mounts at or below it count; when none is there (a
/// directory that is not in the mount table), the conventional layout is tried: `under` itself as
/// a v2 root, or `under/<controller>` (or `under/cpu,cpuacct`) as a v1 one.
pub(crate) fn find_controller(
    mounts: &[Mount],
    controller: &str,
    under: Option<&Path>,
) -> Option<Hierarchy> {
    let inside = |m: &&Mount| under.is_none_or(|u| m.point.starts_with(u));
    let v1 = mounts
        .iter()
        .filter(inside)
        .find(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == controller));
    if let Some(m) = v1 {
        return Some(Hierarchy {
            version: Version::V1,
            mount: m.point.clone(),
        });
    }
    let v2 = mounts
        .iter()
        .filter(inside)
        .find(|m| m.fstype == "cgroup2" && v2_lists(&m.point, controller));
    if let Some(m) = v2 {
        return Some(Hierarchy {
            version: Version::V2,
            mount: m.point.clone(),
        });
    }
    let under = under?;
    if mounts
        .iter()
        .any(|m| m.point.starts_with(under) && m.fstype.starts_with("cgroup"))
    {
        return None; // real cgroup mounts are there, and none has this controller
    }
    if v2_lists(under, controller) {
        return Some(Hierarchy {
            version: Version::V2,
            mount: under.to_path_buf(),
        });
    }
    let mut names = vec![controller.to_string()];
    if controller == "cpu" || controller == "cpuacct" {
        names.push("cpu,cpuacct".to_string());
        names.push("cpuacct,cpu".to_string());
    }
    names
        .into_iter()
        .map(|n| under.join(n))
        .find(|p| p.is_dir())
        .map(|mount| Hierarchy {
            version: Version::V1,
            mount,
        })
}

/// `cpu.weight` for a `cpu.shares` value (the conversion systemd and the kernel use).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_CPU_SHARES, 262_144);
    (1 + (shares - MIN_CPU_SHARES) * 9999 / 262_142).clamp(1, 10_000)
}

pub(crate) fn cpu_shares(cpus: f64) -> u64 {
    ((cpus * 1024.0) as u64).max(MIN_CPU_SHARES)
}

pub(crate) fn cfs_quota_us(cpus: f64, period_us: u64) -> u64 {
    ((cpus * period_us as f64) as u64).max(MIN_CFS_QUOTA_US)
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `memory.events`, `memory.oom_control`).
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

fn read_keyed(path: &Path) -> Option<BTreeMap<String, u64>> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| parse_flat_keyed(&t))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_value(path: &Path, value: &str) -> Result<(), IsolationError> {
    // O_TRUNC as a shell's `echo 1 > file` (cgroup files ignore it; plain files need it).
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| IsolationError::io("cannot write", path, e))
}

fn writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `<mount>/<root>` exist and proves it usable for `controllers`; the error is the reason
/// the fallback warning gives.
fn ensure_root(hierarchy: &Hierarchy, root: &Path, controllers: &[&str]) -> Result<(), String> {
    let mount = &hierarchy.mount;
    if !mount.is_dir() {
        return Err(format!("{} is not a directory", mount.display()));
    }
    if let Err(e) = writable(mount) {
        return Err(format!("{} is not writable ({e})", mount.display()));
    }
    match hierarchy.version {
        Version::V1 => {
            let dir = mount.join(root);
            std::fs::create_dir_all(&dir).map_err(|e| {
                format!(
                    "{} is not writable (cannot create {}: {e})",
                    mount.display(),
                    dir.display()
                )
            })?;
            writable(&dir).map_err(|e| format!("{} is not writable ({e})", dir.display()))?;
            for controller in controllers {
                let probe = match *controller {
                    "memory" => "memory.limit_in_bytes",
                    "cpu" => "cpu.shares",
                    "cpuacct" => "cpuacct.stat",
                    _ => continue,
                };
                if !dir.join(probe).exists() {
                    return Err(format!(
                        "{} is not a cgroup v1 {controller} hierarchy (no {probe} in {})",
                        mount.display(),
                        dir.display()
                    ));
                }
            }
        }
        Version::V2 => {
            // Every ancestor of the containers' groups must hand the controllers down.
            let mut dir = mount.clone();
            let mut parts = root.components().peekable();
            loop {
                enable_v2(&dir, controllers)?;
                let Some(part) = parts.next() else { break };
                dir = dir.join(part);
                match std::fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(format!(
                            "{} is not writable (cannot create {}: {e})",
                            mount.display(),
                            dir.display()
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

fn enable_v2(dir: &Path, controllers: &[&str]) -> Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {} ({e})", file.display()))?;
    for controller in controllers {
        if enabled.split_whitespace().any(|c| c == *controller) {
            continue;
        }
        write_value(&file, &format!("+{controller}"))
            .map_err(|e| format!("cannot enable the {controller} controller ({e})"))?;
    }
    Ok(())
}

pub struct CgroupsIsolator {
    inner: Arc<Inner>,
}

struct Inner {
    memory: Option<Hierarchy>,
    cpu: Option<Hierarchy>,
    /// v1 `cpuacct` (CPU time) when `cpu` is a v1 hierarchy without it.
    cpuacct: Option<Hierarchy>,
    root: PathBuf,
    /// Usage from `/proc`, and `posix/mem` when memory is not on cgroups.
    posix: PosixIsolator,
    registry: Registry,
    names: String,
}

impl CgroupsIsolator {
    /// Finds and checks the hierarchies `selection` needs (`hierarchy`: where to look instead of
    /// the mount table, as `--cgroups_hierarchy`). The error is a reason for the fallback warning.
    pub fn new(
        selection: &Selection,
        hierarchy: Option<&Path>,
        root: &Path,
    ) -> Result<CgroupsIsolator, String> {
        CgroupsIsolator::with_period(selection, hierarchy, root, CGROUPS_POLL)
    }

    pub fn with_period(
        selection: &Selection,
        hierarchy: Option<&Path>,
        root: &Path,
        period: Duration,
    ) -> Result<CgroupsIsolator, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo ({e})"))?;
        let mounts = parse_mountinfo(&mountinfo);
        let where_ = match hierarchy {
            Some(h) => format!(" under {}", h.display()),
            None => String::new(),
        };
        let need = |controller: &str| {
            find_controller(&mounts, controller, hierarchy)
                .ok_or_else(|| format!("no cgroup {controller} controller is mounted{where_}"))
        };
        let memory = match selection.mem {
            Some(Backend::Cgroups) => Some(need("memory")?),
            _ => None,
        };
        let cpu = match selection.cpu {
            Some(Backend::Cgroups) => Some(need("cpu")?),
            _ => None,
        };
        let cpuacct = match &cpu {
            Some(h) if h.version == Version::V1 => find_controller(&mounts, "cpuacct", hierarchy)
                .filter(|a| a.version == Version::V1 && a.mount != h.mount),
            _ => None,
        };
        // Controllers per mount (v2 may carry both in one).
        let mut per_mount: BTreeMap<(Version, PathBuf), Vec<&str>> = BTreeMap::new();
        for (hierarchy, controller) in [(&memory, "memory"), (&cpu, "cpu"), (&cpuacct, "cpuacct")] {
            if let Some(h) = hierarchy {
                per_mount
                    .entry((h.version, h.mount.clone()))
                    .or_default()
                    .push(controller);
            }
        }
        for ((version, mount), controllers) in &per_mount {
            let h = Hierarchy {
                version: *version,
                mount: mount.clone(),
            };
            ensure_root(&h, root, controllers)?;
        }
        let names = {
            let mut n = Vec::new();
            match selection.cpu {
                Some(Backend::Cgroups) => n.push("cgroups/cpu"),
                Some(Backend::Posix) => n.push("posix/cpu"),
                None => {}
            }
            match selection.mem {
                Some(Backend::Cgroups) => n.push("cgroups/mem"),
                Some(Backend::Posix) => n.push("posix/mem"),
                None => {}
            }
            n.join(",")
        };
        let inner = Arc::new(Inner {
            memory,
            cpu,
            cpuacct,
            root: root.to_path_buf(),
            posix: PosixIsolator::new(selection.mem == Some(Backend::Posix)),
            registry: Registry::default(),
            names,
        });
        if inner.memory.is_some() {
            spawn_poller("tepui-cgroups-oom", Arc::downgrade(&inner), period, check);
        }
        Ok(CgroupsIsolator { inner })
    }

    /// The hierarchies in use: memory, cpu, cpuacct.
    pub fn hierarchies(&self) -> (Option<Hierarchy>, Option<Hierarchy>, Option<Hierarchy>) {
        (
            self.inner.memory.clone(),
            self.inner.cpu.clone(),
            self.inner.cpuacct.clone(),
        )
    }

    /// The container's group in each hierarchy used (memory, cpu, cpuacct order; one path per
    /// distinct directory).
    pub fn group_dirs(&self, container_id: &str) -> Vec<PathBuf> {
        self.inner.group_dirs(container_id)
    }
}

impl Inner {
    fn dir(&self, hierarchy: &Hierarchy, container_id: &str) -> PathBuf {
        hierarchy.mount.join(&self.root).join(container_id)
    }

    fn group_dirs(&self, container_id: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for h in [&self.memory, &self.cpu, &self.cpuacct]
            .into_iter()
            .flatten()
        {
            let dir = self.dir(h, container_id);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// The kernel's OOM kills in the container's memory group, as a limitation.
    fn oom_limitation(&self, container_id: &str, limits: &Limits) -> Option<Limitation> {
        let memory = self.memory.as_ref()?;
        let limit = limits.mem_bytes?;
        let dir = self.dir(memory, container_id);
        let (counters, peak) = match memory.version {
            Version::V1 => (
                dir.join("memory.oom_control"),
                dir.join("memory.max_usage_in_bytes"),
            ),
            Version::V2 => (dir.join("memory.events"), dir.join("memory.peak")),
        };
        let counters = read_keyed(&counters)?;
        let killed = counters.get("oom_kill").copied().unwrap_or(0) > 0;
        let under_oom = counters.get("under_oom").copied().unwrap_or(0) > 0;
        if !killed && !under_oom {
            return None;
        }
        Some(Limitation::memory(
            Some(limit),
            read_u64(&peak),
            "the kernel's OOM killer acted in the container's memory cgroup",
        ))
    }

    /// SIGKILLs every process in the container's groups (v2: `cgroup.kill` when the kernel has it).
    fn kill_all(&self, container_id: &str) {
        for dir in self.group_dirs(container_id) {
            let kill_file = dir.join("cgroup.kill");
            // Only v2 groups have `cgroup.kill` (Linux 5.14 and later).
            if kill_file.exists() && write_value(&kill_file, "1").is_ok() {
                continue;
            }
            for pid in procs(&dir) {
                if pid > 1 {
                    // SAFETY: kill only sends a signal.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
        }
    }
}

/// Pids in a group's `cgroup.procs` (empty if unreadable).
fn procs(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn check(inner: &Inner) {
    for watched in inner.registry.unlimited() {
        let Some(limitation) = inner.oom_limitation(&watched.container_id, &watched.limits) else {
            continue;
        };
        if inner.registry.record(&watched.container_id, limitation) {
            tracing::warn!(container = %watched.container_id, "OOM kill in the container's memory cgroup; killing the container");
            inner.kill_all(&watched.container_id);
        }
    }
}

fn safe_container_id(container_id: &str) -> Result<(), IsolationError> {
    let ok = !container_id.is_empty()
        && container_id != "."
        && container_id != ".."
        && !container_id.contains('/')
        && !container_id.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(IsolationError::Other(format!(
            "container id '{container_id}' cannot name a cgroup"
        )))
    }
}

impl Inner {
    /// Overwrites `usage` with what the container's cgroups measure.
    fn overlay_usage(&self, container_id: &str, limits: &Limits, usage: &mut Usage) {
        if let Some(h) = &self.memory {
            let dir = self.dir(h, container_id);
            usage.mem_limit_bytes = limits.mem_bytes;
            let stat = read_keyed(&dir.join("memory.stat")).unwrap_or_default();
            match h.version {
                Version::V1 => {
                    let rss = stat.get("total_rss").or_else(|| stat.get("rss")).copied();
                    usage.mem_rss_bytes = rss.or(usage.mem_rss_bytes);
                    usage.mem_anon_bytes = rss.or(usage.mem_anon_bytes);
                    usage.mem_total_bytes = read_u64(&dir.join("memory.usage_in_bytes"));
                }
                Version::V2 => {
                    let anon = stat.get("anon").copied();
                    usage.mem_rss_bytes = anon.or(usage.mem_rss_bytes);
                    usage.mem_anon_bytes = anon.or(usage.mem_anon_bytes);
                    usage.mem_total_bytes = read_u64(&dir.join("memory.current"));
                }
            }
            usage.processes = Some(procs(&dir).len() as u64);
        }
        if let Some(h) = &self.cpu {
            let dir = self.dir(h, container_id);
            let stat = read_keyed(&dir.join("cpu.stat")).unwrap_or_default();
            usage.cpus_nr_periods = stat.get("nr_periods").copied();
            usage.cpus_nr_throttled = stat.get("nr_throttled").copied();
            match h.version {
                Version::V1 => {
                    usage.cpus_throttled_time_secs =
                        stat.get("throttled_time").map(|ns| *ns as f64 / 1e9);
                    let acct_dir = match &self.cpuacct {
                        Some(a) => self.dir(a, container_id),
                        None => dir.clone(),
                    };
                    if let Some(acct) = read_keyed(&acct_dir.join("cpuacct.stat")) {
                        let ticks = super::proc_stat::clock_ticks();
                        if let Some(user) = acct.get("user") {
                            usage.cpus_user_time_secs = Some(*user as f64 / ticks);
                        }
                        if let Some(system) = acct.get("system") {
                            usage.cpus_system_time_secs = Some(*system as f64 / ticks);
                        }
                    }
                }
                Version::V2 => {
                    usage.cpus_throttled_time_secs =
                        stat.get("throttled_usec").map(|us| *us as f64 / 1e6);
                    if let Some(user) = stat.get("user_usec") {
                        usage.cpus_user_time_secs = Some(*user as f64 / 1e6);
                    }
                    if let Some(system) = stat.get("system_usec") {
                        usage.cpus_system_time_secs = Some(*system as f64 / 1e6);
                    }
                }
            }
        }
    }

    fn write_limits(&self, container_id: &str, limits: &Limits) -> Result<(), IsolationError> {
        if let (Some(h), Some(bytes)) = (&self.memory, limits.mem_bytes) {
            let dir = self.dir(h, container_id);
            match h.version {
                Version::V1 => {
                    write_value(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write_value(&memsw, &bytes.to_string())?;
                    }
                }
                Version::V2 => {
                    write_value(&dir.join("memory.max"), &bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write_value(&swap, "0")?;
                    }
                }
            }
        }
        if let Some(h) = &self.cpu {
            let dir = self.dir(h, container_id);
            if let Some(cpus) = limits.cpus {
                let shares = cpu_shares(cpus);
                match h.version {
                    Version::V1 => write_value(&dir.join("cpu.shares"), &shares.to_string())?,
                    Version::V2 => write_value(
                        &dir.join("cpu.weight"),
                        &shares_to_weight(shares).to_string(),
                    )?,
                }
            }
            if let Some(cap) = limits.cpu_quota {
                match h.version {
                    Version::V1 => {
                        let period = read_u64(&dir.join("cpu.cfs_period_us"))
                            .filter(|p| *p > 0)
                            .unwrap_or(DEFAULT_CFS_PERIOD_US);
                        write_value(
                            &dir.join("cpu.cfs_quota_us"),
                            &cfs_quota_us(cap, period).to_string(),
                        )?;
                    }
                    Version::V2 => {
                        let period = std::fs::read_to_string(dir.join("cpu.max"))
                            .ok()
                            .and_then(|t| t.split_whitespace().nth(1).and_then(|p| p.parse().ok()))
                            .filter(|p: &u64| *p > 0)
                            .unwrap_or(DEFAULT_CFS_PERIOD_US);
                        write_value(
                            &dir.join("cpu.max"),
                            &format!("{} {period}", cfs_quota_us(cap, period)),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Kills what is left and removes the groups, retrying until `CLEANUP_TIMEOUT`.
    fn remove_groups(&self, container_id: &str) -> Result<(), IsolationError> {
        let deadline = Instant::now() + CLEANUP_TIMEOUT;
        let mut failures = Vec::new();
        for dir in self.group_dirs(container_id) {
            loop {
                if !dir.exists() {
                    break;
                }
                for pid in procs(&dir) {
                    if pid > 1 {
                        // SAFETY: kill only sends a signal.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => {
                        failures.push(format!("{}: {e}", dir.display()));
                        break;
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(IsolationError::Other(format!(
                "cannot remove the container's cgroups: {}",
                failures.join("; ")
            )))
        }
    }
}

impl Isolator for CgroupsIsolator {
    fn name(&self) -> String {
        self.inner.names.clone()
    }

    fn prepare(&self, container_id: &str, limits: &Limits) -> Result<Prepared, IsolationError> {
        safe_container_id(container_id)?;
        let inner = &self.inner;
        let mut created = Vec::new();
        let result = (|| {
            let mut procs = Vec::new();
            for dir in inner.group_dirs(container_id) {
                match std::fs::create_dir(&dir) {
                    Ok(()) => created.push(dir.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(IsolationError::io("cannot create the cgroup", &dir, e)),
                }
            }
            inner.write_limits(container_id, limits)?;
            for dir in inner.group_dirs(container_id) {
                let path = dir.join("cgroup.procs");
                // std opens with O_CLOEXEC: the task never inherits these.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| IsolationError::io("cannot open", &path, e))?;
                procs.push((path, file));
            }
            Ok(procs)
        })();
        match result {
            Ok(procs) => {
                let mut recorded = *limits;
                if inner.memory.is_none() {
                    recorded.mem_bytes = None;
                }
                inner.registry.insert(container_id, recorded);
                inner.posix.prepare(container_id, limits)?;
                Ok(Prepared::join(procs))
            }
            Err(e) => {
                for dir in created.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    fn isolate(&self, container_id: &str, pid: u32) -> Result<(), IsolationError> {
        if !self.inner.registry.set_pid(container_id, pid) {
            return Err(IsolationError::UnknownContainer(container_id.to_string()));
        }
        self.inner.posix.isolate(container_id, pid)?;
        // Normally the spawner's pre-exec step already put the leader there and this is a no-op.
        // A spawner without it (a launcher daemon from an older release) gets the leader moved
        // now: later than ideal (see `daemon.rs`), but limited rather than not at all.
        for dir in self.inner.group_dirs(container_id) {
            let path = dir.join("cgroup.procs");
            match write_value(&path, &pid.to_string()) {
                Ok(()) => {}
                Err(IsolationError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn watch(&self, container_id: &str) -> tokio::sync::oneshot::Receiver<Limitation> {
        if self.inner.memory.is_none() && self.inner.posix.enforces_mem() {
            return self.inner.posix.watch(container_id);
        }
        self.inner.registry.watch(container_id)
    }

    fn limitation(&self, container_id: &str) -> Option<Limitation> {
        let inner = &self.inner;
        if let Some(limitation) = inner.registry.limitation(container_id) {
            return Some(limitation);
        }
        if let Some(limits) = inner.registry.limits(container_id) {
            if let Some(limitation) = inner.oom_limitation(container_id, &limits) {
                inner.registry.record(container_id, limitation);
                return inner.registry.limitation(container_id);
            }
        }
        inner.posix.limitation(container_id)
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolationError> {
        self.usages(&[container_id.to_string()])
            .pop()
            .map(|(_, usage)| usage)
            .ok_or_else(|| IsolationError::UnknownContainer(container_id.to_string()))
    }

    fn usages(&self, container_ids: &[String]) -> Vec<(String, Usage)> {
        let inner = &self.inner;
        // The kernel's per-group accounting where a cgroup measures it; /proc (one pass for all)
        // only when some figure has no cgroup here (memory or CPU time on posix).
        let needs_proc = inner.memory.is_none()
            || inner.cpu.is_none()
            || (inner.cpu.as_ref().is_some_and(|h| h.version == Version::V1)
                && inner.cpuacct.is_none());
        let known: Vec<String> = container_ids
            .iter()
            .filter(|id| inner.registry.limits(id).is_some())
            .cloned()
            .collect();
        let mut base: std::collections::HashMap<String, Usage> = if needs_proc {
            inner.posix.usages(&known).into_iter().collect()
        } else {
            std::collections::HashMap::new()
        };
        let timestamp = super::wall_now();
        known
            .into_iter()
            .filter_map(|id| {
                let limits = inner.registry.limits(&id)?;
                let mut usage = base.remove(&id).unwrap_or(Usage {
                    timestamp,
                    ..Usage::default()
                });
                usage.cpus_limit = limits.cpus;
                inner.overlay_usage(&id, &limits, &mut usage);
                Some((id, usage))
            })
            .collect()
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolationError> {
        safe_container_id(container_id)?;
        let result = self.inner.remove_groups(container_id);
        self.inner.registry.remove(container_id);
        let _ = self.inner.posix.cleanup(container_id);
        result
    }

    fn containers(&self) -> Vec<String> {
        self.inner.registry.ids()
    }

    fn recover(
        &self,
        container_id: &str,
        limits: &Limits,
        pid: Option<u32>,
    ) -> Result<(), IsolationError> {
        safe_container_id(container_id)?;
        let inner = &self.inner;
        let missing: Vec<String> = inner
            .group_dirs(container_id)
            .into_iter()
            .filter(|d| !d.is_dir())
            .map(|d| d.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(IsolationError::Other(format!(
                "container '{container_id}' has no cgroup at {}",
                missing.join(", ")
            )));
        }
        let mut recorded = *limits;
        if inner.memory.is_none() {
            recorded.mem_bytes = None;
        }
        inner.registry.insert(container_id, recorded);
        inner.posix.recover(container_id, limits, pid)?;
        if let Some(pid) = pid {
            inner.registry.set_pid(container_id, pid);
        }
        Ok(())
    }

    fn leftover_containers(&self) -> Vec<String> {
        let inner = &self.inner;
        let tracked = inner.registry.ids();
        let mut found = std::collections::BTreeSet::new();
        for h in [&inner.memory, &inner.cpu, &inner.cpuacct]
            .into_iter()
            .flatten()
        {
            let Ok(entries) = std::fs::read_dir(h.mount.join(&inner.root)) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if let Some(name) = entry.file_name().to_str() {
                    if !tracked.iter().any(|t| t == name) {
                        found.insert(name.to_string());
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}

#[cfg(test)]
pub(crate) fn check_now(isolator: &CgroupsIsolator) {
    check(&isolator.inner);
}
