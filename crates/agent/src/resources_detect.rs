//! What the host offers: detected resources, and the host figures `/metrics/snapshot` reports.
//!
//! Detection follows the Mesos agent's defaults: every CPU, memory minus a reserve for the system
//! (`min(1 GiB, half)`), free disk of `--work_dir`'s filesystem minus `min(5 GiB, half)`, and ports
//! `[31000-32000]`. Names given in `--resources` replace the detected value of that name only.

use proto::ResourceBag;
use std::path::Path;

/// Default port range offered when `--resources` names no `ports`.
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);
/// Memory kept back for the host: at most this many MB, and at most half.
const MEM_RESERVE_MB_MAX: f64 = 1024.0;
/// Disk kept back for the host: at most this many MB, and at most half.
const DISK_RESERVE_MB_MAX: f64 = 5120.0;

/// Memory figures of the host, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

/// Reads `/proc/meminfo`; free memory is `MemAvailable` (what can be had without swapping), else
/// `MemFree`. `None` when the file cannot be read or parsed.
pub fn mem_info() -> Option<MemInfo> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| -> Option<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))?;
        let kb: u64 = line[name.len() + 1..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.saturating_mul(1024))
    };
    let total_bytes = field("MemTotal")?;
    let free_bytes = field("MemAvailable")
        .or_else(|| field("MemFree"))
        .unwrap_or(0);
    Some(MemInfo {
        total_bytes,
        free_bytes,
    })
}

/// One-minute load average, 0 when unknown.
pub fn load_1min() -> f64 {
    let mut loads = [0f64; 3];
    // SAFETY: getloadavg writes at most `nelem` doubles into the buffer we pass.
    let n = unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) };
    if n >= 1 {
        loads[0]
    } else {
        0.0
    }
}

/// Number of CPUs this process may use.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Free bytes (for unprivileged users) of the filesystem holding `path`.
pub fn free_disk_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value, and the call fills it in.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

fn minus_reserve(total_mb: f64, reserve_max_mb: f64) -> f64 {
    let total_mb = total_mb.max(0.0).floor();
    total_mb - reserve_max_mb.min((total_mb / 2.0).floor())
}

/// Detected defaults, from the host figures given (pure, so it can be tested).
pub fn detected_defaults(cpus: usize, mem_total_bytes: u64, disk_free_bytes: u64) -> ResourceBag {
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let mut bag = ResourceBag::new();
    bag.set_scalar("cpus", cpus as f64);
    bag.set_scalar(
        "mem",
        minus_reserve(mb(mem_total_bytes), MEM_RESERVE_MB_MAX),
    );
    bag.set_scalar(
        "disk",
        minus_reserve(mb(disk_free_bytes), DISK_RESERVE_MB_MAX),
    );
    bag.set_ranges("ports", vec![DEFAULT_PORTS]);
    bag
}

/// `configured` names win; every other detected name is kept.
pub fn merge(detected: &ResourceBag, configured: Option<&ResourceBag>) -> ResourceBag {
    let Some(configured) = configured else {
        return detected.clone();
    };
    let mut out = configured.clone();
    for name in detected.names() {
        if configured.get(name).is_some() {
            continue;
        }
        if let Some(value) = detected.get(name) {
            // Cannot clash: `out` has no value of this name yet.
            let _ = out.add_value(name, value.clone());
        }
    }
    out
}

/// The agent's total resources: detection on this host merged with `--resources`.
pub fn detect(work_dir: &Path, configured: Option<&ResourceBag>) -> ResourceBag {
    let mem = mem_info().map(|m| m.total_bytes).unwrap_or(0);
    let disk = free_disk_bytes(work_dir).unwrap_or(0);
    merge(&detected_defaults(cpu_count(), mem, disk), configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_follow_mesos_defaults() {
        let gib = 1024 * 1024 * 1024u64;
        let bag = detected_defaults(2, 24 * gib, 100 * gib);
        assert_eq!(bag.scalar("cpus"), 2.0);
        assert_eq!(bag.scalar("mem"), 24.0 * 1024.0 - 1024.0);
        assert_eq!(bag.scalar("disk"), 100.0 * 1024.0 - 5120.0);
        assert_eq!(bag.ranges("ports"), vec![(31000, 32000)]);
        // Small hosts keep half.
        let bag = detected_defaults(1, gib, 4 * gib);
        assert_eq!(bag.scalar("mem"), 512.0);
        assert_eq!(bag.scalar("disk"), 2048.0);
    }

    #[test]
    fn configured_names_override_detection_per_name() {
        let detected = detected_defaults(8, 16 << 30, 50 << 30);
        let configured = ResourceBag::parse("cpus:2;gpus:1;ports:[5000-5001]").unwrap();
        let bag = merge(&detected, Some(&configured));
        assert_eq!(bag.scalar("cpus"), 2.0);
        assert_eq!(bag.scalar("gpus"), 1.0);
        assert_eq!(bag.ranges("ports"), vec![(5000, 5001)]);
        assert_eq!(bag.scalar("mem"), detected.scalar("mem"));
    }

    #[test]
    fn meminfo_parses() {
        let text =
            "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:    20000000 kB\n";
        let info = parse_meminfo(text).unwrap();
        assert_eq!(info.total_bytes, 24576000 * 1024);
        assert_eq!(info.free_bytes, 20000000 * 1024);
        assert!(parse_meminfo("garbage").is_none());
        assert!(mem_info().is_some());
        assert!(free_disk_bytes(Path::new("/")).is_some());
    }
}
