//! Per-process-group usage from `/proc` (the posix isolators' only source).

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Usage summed over the processes of one process group.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GroupUsage {
    pub processes: u64,
    pub threads: u64,
    pub user_secs: f64,
    pub system_secs: f64,
    pub rss_bytes: u64,
    /// Resident memory that is neither file-backed nor shared (statm `resident - shared`); only
    /// filled by `scan_groups(.., true)` (one more file per process).
    pub anon_bytes: u64,
    /// The group's processes.
    pub pids: Vec<u32>,
}

/// The fields of `/proc/<pid>/stat` the isolators read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub pgrp: u32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub threads: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name is in parentheses and may itself contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first one after the name.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        pgrp: field(5)?.parse().ok()?,
        utime_ticks: field(14)?.parse().ok()?,
        stime_ticks: field(15)?.parse().ok()?,
        threads: field(20)?.parse().ok()?,
        rss_pages: field(24)?.parse::<i64>().ok()?.max(0) as u64,
    })
}

/// `(resident, shared)` pages from `/proc/<pid>/statm`.
pub(crate) fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace();
    let _size = fields.next()?;
    let resident = fields.next()?.parse().ok()?;
    let shared = fields.next()?.parse().ok()?;
    Some((resident, shared))
}

pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

pub(crate) fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Usage of every process group in `pgids`, from one pass over `proc_root` (normally `/proc`):
/// one `stat` read per process, plus its `statm` when `with_anon`. Processes that vanish during
/// the scan are skipped.
pub(crate) fn scan_groups(
    proc_root: &Path,
    pgids: &HashSet<u32>,
    with_anon: bool,
) -> HashMap<u32, GroupUsage> {
    let mut usage: HashMap<u32, GroupUsage> = HashMap::new();
    if pgids.is_empty() {
        return usage;
    }
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return usage;
    };
    let page = page_size();
    let ticks = clock_ticks();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(stat) = parse_stat(&text) else {
            continue;
        };
        if !pgids.contains(&stat.pgrp) {
            continue;
        }
        let group = usage.entry(stat.pgrp).or_default();
        group.processes += 1;
        group.threads += stat.threads;
        group.user_secs += stat.utime_ticks as f64 / ticks;
        group.system_secs += stat.stime_ticks as f64 / ticks;
        group.rss_bytes += stat.rss_pages * page;
        group.pids.push(pid);
    }
    if with_anon {
        for group in usage.values_mut() {
            group.anon_bytes = anon_bytes(proc_root, &group.pids);
        }
    }
    usage
}

/// Anonymous resident memory of these processes (statm `resident - shared`, summed).
pub(crate) fn anon_bytes(proc_root: &Path, pids: &[u32]) -> u64 {
    let page = page_size();
    pids.iter()
        .filter_map(|pid| {
            std::fs::read_to_string(proc_root.join(pid.to_string()).join("statm")).ok()
        })
        .filter_map(|text| parse_statm(&text))
        .map(|(resident, shared)| resident.saturating_sub(shared) * page)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let text = "4242 (we ird) (name)) S 1 4240 4240 0 -1 4194560 100 0 0 0 27 5 0 0 20 0 3 0 123 4096000 250 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                pgrp: 4240,
                utime_ticks: 27,
                stime_ticks: 5,
                threads: 3,
                rss_pages: 250
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
        assert_eq!(parse_statm("1000 300 120 10 0 200 0\n"), Some((300, 120)));
        assert_eq!(parse_statm(""), None);
    }

    #[test]
    fn own_process_group_is_found() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() } as u32;
        let usage = scan_groups(Path::new("/proc"), &HashSet::from([pgid]), true);
        let group = usage.get(&pgid).cloned().unwrap_or_default();
        assert!(group.processes >= 1, "{usage:?}");
        assert!(group.pids.contains(&std::process::id()), "{group:?}");
        assert!(
            group.rss_bytes > 0 && group.anon_bytes > 0 && group.anon_bytes <= group.rss_bytes,
            "{group:?}"
        );
        let quick = scan_groups(Path::new("/proc"), &HashSet::from([pgid]), false);
        assert_eq!(quick.get(&pgid).map(|g| g.anon_bytes), Some(0));
    }
}
