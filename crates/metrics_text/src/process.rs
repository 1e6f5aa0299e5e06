//! The standard process block every Prometheus client exports, read from `/proc/self`:
//! `process_start_time_seconds`, `process_resident_memory_bytes`, `process_open_fds`.
//!
//! Cheap: three small reads and one directory listing per scrape. A figure that cannot be read
//! (no `/proc`, an unexpected format) is left out rather than reported wrong.

use crate::{Kind, Metric};

/// The process figures that could be read now.
pub fn metrics() -> Vec<Metric> {
    let mut out = Vec::new();
    if let Some(start) = start_time_seconds() {
        out.push(Metric::new(
            "process_start_time_seconds",
            Kind::Gauge,
            "When this process started, in seconds since the Unix epoch.",
            start,
        ));
    }
    if let Some(rss) = resident_memory_bytes() {
        out.push(Metric::new(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident set size of this process, in bytes.",
            rss,
        ));
    }
    if let Some(fds) = open_fds() {
        out.push(Metric::new(
            "process_open_fds",
            Kind::Gauge,
            "File descriptors this process has open.",
            fds,
        ));
    }
    out
}

fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let value = unsafe { libc::sysconf(name) };
    (value > 0).then_some(value as f64)
}

/// Boot time (`btime` of /proc/stat) plus the process' start in clock ticks after boot (field 22
/// of /proc/self/stat).
fn start_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = start_ticks(&stat)?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let btime = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(btime + ticks / sysconf(libc::_SC_CLK_TCK)?)
}

/// Field 22 (`starttime`) of a /proc/<pid>/stat line. The command name (field 2) is in
/// parentheses and may itself hold spaces and `)`, so fields are counted after the last `)`.
fn start_ticks(stat: &str) -> Option<f64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // after_comm starts with field 3 (state), so field 22 is the 20th.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// Resident pages (field 2 of /proc/self/statm) times the page size.
fn resident_memory_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * sysconf(libc::_SC_PAGESIZE)?)
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_skip_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(start_ticks(stat), Some(98765.0));
        assert_eq!(start_ticks("garbage"), None);
        assert_eq!(start_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_plausible_figures() {
        let metrics = metrics();
        let value = |name: &str| metrics.iter().find(|m| m.name == name).map(|m| m.value);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds").unwrap();
        assert!(
            start <= now + 1.0 && start > now - 3_600.0,
            "start {start}, now {now}"
        );
        assert!(value("process_resident_memory_bytes").unwrap() > 1_000_000.0);
        assert!(value("process_open_fds").unwrap() >= 3.0);
    }
}
