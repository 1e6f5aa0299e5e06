//! `posix/cpu` and `posix/mem`: usage from `/proc`, memory enforced by polling (see the module
//! docs in `mod.rs` for what that does and does not catch).
//!
//! A container is its leader's process group (the spawner makes every task leader of its own
//! group). Every `POSIX_POLL` one pass over `/proc` sums the anonymous resident memory of each
//! watched group; a group over its limit has its limitation recorded first and is then SIGKILLed,
//! so whoever reaps the leader finds the limitation.

use super::proc_stat::scan_groups;
use super::registry::Registry;
use super::{
    spawn_poller, IsolationError, Isolator, Limitation, Limits, Prepared, Usage, POSIX_POLL,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct PosixIsolator {
    inner: Arc<Inner>,
}

struct Inner {
    enforce_mem: bool,
    names: String,
    registry: Registry,
    proc_root: PathBuf,
}

impl PosixIsolator {
    /// `enforce_mem`: whether `posix/mem` is on (kill groups over their memory limit).
    pub fn new(enforce_mem: bool) -> PosixIsolator {
        PosixIsolator::with_period(enforce_mem, POSIX_POLL)
    }

    /// The posix isolators `selection` names (`cgroups/...` entries count as their posix twin).
    pub fn for_selection(selection: &super::Selection) -> PosixIsolator {
        let posix = selection.posix_fallback();
        PosixIsolator::build(posix.mem.is_some(), posix.names(), POSIX_POLL)
    }

    pub fn with_period(enforce_mem: bool, period: Duration) -> PosixIsolator {
        let names = if enforce_mem {
            "posix/cpu,posix/mem"
        } else {
            "posix/cpu"
        };
        PosixIsolator::build(enforce_mem, names.to_string(), period)
    }

    fn build(enforce_mem: bool, names: String, period: Duration) -> PosixIsolator {
        let inner = Arc::new(Inner {
            enforce_mem,
            names,
            registry: Registry::default(),
            proc_root: PathBuf::from("/proc"),
        });
        if enforce_mem {
            spawn_poller("tepui-posix-mem", Arc::downgrade(&inner), period, check);
        }
        PosixIsolator { inner }
    }

    pub(crate) fn enforces_mem(&self) -> bool {
        self.inner.enforce_mem
    }
}

/// SIGKILLs a process group; one already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never the whole system
    }
    // SAFETY: killpg only sends a signal.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

fn check(inner: &Inner) {
    let watched: Vec<_> = inner
        .registry
        .unlimited()
        .into_iter()
        .filter_map(|w| Some((w.container_id, w.pid?, w.limits.mem_bytes?)))
        .collect();
    if watched.is_empty() {
        return;
    }
    let pgids: HashSet<u32> = watched.iter().map(|(_, pid, _)| *pid).collect();
    // Total RSS (from `stat`) bounds the anonymous part: only groups over their limit by that
    // measure pay for reading `statm`.
    let usage = scan_groups(&inner.proc_root, &pgids, false);
    for (container_id, pgid, limit) in watched {
        let Some(group) = usage.get(&pgid) else {
            continue;
        };
        if group.rss_bytes <= limit {
            continue;
        }
        let anon = super::proc_stat::anon_bytes(&inner.proc_root, &group.pids);
        if anon <= limit {
            continue;
        }
        let limitation = Limitation::memory(
            Some(limit),
            Some(anon),
            "posix/mem: the agent killed the task's processes",
        );
        // Recorded before the kill, so the exit is always seen with its cause.
        if inner.registry.record(&container_id, limitation) {
            tracing::warn!(container = %container_id, pgid, used = anon, limit,
                "container over its memory limit; killing its process group");
            kill_group(pgid);
        }
    }
}

impl Isolator for PosixIsolator {
    fn name(&self) -> String {
        self.inner.names.clone()
    }

    fn prepare(&self, container_id: &str, limits: &Limits) -> Result<Prepared, IsolationError> {
        let mut limits = *limits;
        if !self.inner.enforce_mem {
            limits.mem_bytes = None;
        }
        self.inner.registry.insert(container_id, limits);
        Ok(Prepared::none())
    }

    fn isolate(&self, container_id: &str, pid: u32) -> Result<(), IsolationError> {
        if self.inner.registry.set_pid(container_id, pid) {
            Ok(())
        } else {
            Err(IsolationError::UnknownContainer(container_id.to_string()))
        }
    }

    fn watch(&self, container_id: &str) -> tokio::sync::oneshot::Receiver<Limitation> {
        self.inner.registry.watch(container_id)
    }

    fn limitation(&self, container_id: &str) -> Option<Limitation> {
        self.inner.registry.limitation(container_id)
    }

    fn usage(&self, container_id: &str) -> Result<Usage, IsolationError> {
        self.usages(&[container_id.to_string()])
            .pop()
            .map(|(_, usage)| usage)
            .ok_or_else(|| IsolationError::UnknownContainer(container_id.to_string()))
    }

    fn usages(&self, container_ids: &[String]) -> Vec<(String, Usage)> {
        let known: Vec<(String, Limits, Option<u32>)> = container_ids
            .iter()
            .filter_map(|id| {
                let limits = self.inner.registry.limits(id)?;
                Some((id.clone(), limits, self.inner.registry.pid(id)))
            })
            .collect();
        // One pass over /proc for all of them.
        let pgids: HashSet<u32> = known.iter().filter_map(|(_, _, pid)| *pid).collect();
        let groups = scan_groups(&self.inner.proc_root, &pgids, true);
        let timestamp = super::wall_now();
        known
            .into_iter()
            .map(|(id, limits, pid)| {
                let mut usage = Usage {
                    timestamp,
                    cpus_limit: limits.cpus,
                    mem_limit_bytes: limits.mem_bytes,
                    ..Usage::default()
                };
                if let Some(pid) = pid {
                    let group = groups.get(&pid).cloned().unwrap_or_default();
                    usage.processes = Some(group.processes);
                    usage.threads = Some(group.threads);
                    usage.cpus_user_time_secs = Some(group.user_secs);
                    usage.cpus_system_time_secs = Some(group.system_secs);
                    usage.mem_rss_bytes = Some(group.rss_bytes);
                    usage.mem_anon_bytes = Some(group.anon_bytes);
                }
                (id, usage)
            })
            .collect()
    }

    fn cleanup(&self, container_id: &str) -> Result<(), IsolationError> {
        // The spawner kills the process group when its leader exits; signalling the group again
        // here could hit an unrelated group that reused the number.
        self.inner.registry.remove(container_id);
        Ok(())
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
        self.prepare(container_id, limits)?;
        if let Some(pid) = pid {
            self.isolate(container_id, pid)?;
        }
        Ok(())
    }

    fn leftover_containers(&self) -> Vec<String> {
        Vec::new() // nothing of a posix container outlives its processes
    }
}

#[cfg(test)]
pub(crate) fn check_now(isolator: &PosixIsolator) {
    check(&isolator.inner);
}
