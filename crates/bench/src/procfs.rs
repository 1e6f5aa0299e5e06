//! What the bench reads from /proc: memory of the tepui process and the processes it left running.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// A process as /proc/<pid>/stat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    /// Start time in clock ticks since boot: tells a process from a later one with the same pid.
    pub start_time: u64,
    pub comm: String,
}

/// Parses one /proc/<pid>/stat line; `comm` may contain spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid: i32 = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] = state (field 3), rest[1] = ppid (field 4), rest[19] = starttime (field 22).
    let state = rest.first()?.chars().next()?;
    let ppid: i32 = rest.get(1)?.parse().ok()?;
    let start_time: u64 = rest.get(19)?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        state,
        start_time,
        comm,
    })
}

pub fn read_proc(pid: i32) -> Option<ProcInfo> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Every process on the machine (those that vanish while scanning are skipped).
fn all_processes() -> Result<Vec<ProcInfo>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(info) = read_proc(pid) {
            out.push(info);
        }
    }
    Ok(out)
}

/// All descendants of `root` (children, grandchildren, ...), zombies included.
pub fn descendants(root: i32) -> Result<Vec<ProcInfo>> {
    let all = all_processes()?;
    let mut children: BTreeMap<i32, Vec<&ProcInfo>> = BTreeMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child.pid) {
                out.push((*child).clone());
                queue.push(child.pid);
            }
        }
    }
    Ok(out)
}

/// The task processes under `root`: its descendants except the agent's launcher daemon (a
/// `tepui launcher` child that parents the tasks and stays while the agent runs).
pub fn task_processes(root: i32) -> Result<Vec<ProcInfo>> {
    Ok(descendants(root)?
        .into_iter()
        .filter(|p| p.comm != "tepui")
        .collect())
}

/// `VmHWM` (peak resident set) and `VmRSS` of `pid`, in KiB.
pub fn memory_kib(pid: i32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (has tepui exited?)"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("/proc/{pid}/status has no {name}"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("/proc/{pid}/status: cannot parse {line:?}"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Threads of `pid` (from /proc/<pid>/status).
pub fn threads(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The 1-minute load average of the machine.
pub fn load_1min() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line =
            "1234 (a (b) c) S 99 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 1000 10";
        let p = parse_stat(line).unwrap();
        assert_eq!(p.pid, 1234);
        assert_eq!(p.comm, "a (b) c");
        assert_eq!(p.state, 'S');
        assert_eq!(p.ppid, 99);
        assert_eq!(p.start_time, 777);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_memory_is_readable() {
        let (hwm, rss) = memory_kib(std::process::id() as i32).unwrap();
        assert!(hwm >= rss && rss > 0);
    }
}
