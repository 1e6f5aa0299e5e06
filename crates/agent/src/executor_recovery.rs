//! Settling custom executors with the launcher after a restart (or after reconnecting to a new
//! launcher daemon), by the same evidence and rules as tasks (`recovery::decide`,
//! replicated-log.md 8): what the launcher runs is re-attached and must re-subscribe within
//! `--executor_reregistration_timeout`; a recorded exit is reported (its tasks fail); anything
//! else is lost (its tasks TASK_LOST / TASK_GONE), and a provably orphaned process is killed.

use crate::checkpoint::{layout, records};
use crate::core::{Core, Effect, Now};
use crate::launcher::signal_group;
use crate::launcher_client::Snapshot;
use crate::launcher_protocol::decode_wait_status;
use crate::recovery::{decide, Decision, Evidence};
use std::collections::BTreeSet;

/// What settling the executors did.
#[derive(Debug, Default)]
pub struct SettledExecutors {
    pub effects: Vec<Effect>,
    /// Containers of re-attached executors (not orphans).
    pub claimed: BTreeSet<String>,
    pub reattached: usize,
    pub exited: usize,
    pub lost: usize,
}

/// Settles every executor of `core` whose process was not seen to end.
pub fn settle(core: &mut Core, now: Now, snapshot: &Snapshot, rebooted: bool) -> SettledExecutors {
    let mut settled = SettledExecutors::default();
    for executor in core.unsettled_executors() {
        let container = executor.container_id.value.as_str();
        let exit_file = std::fs::read(layout::exit_status(&executor.run_dir))
            .ok()
            .and_then(|bytes| records::parse::<records::ExitRecord>(&bytes).ok())
            .map(|r| r.wait_status);
        let evidence = Evidence {
            running: snapshot
                .running
                .iter()
                .find(|r| r.container_id == container)
                .map(|r| r.pid),
            exited: snapshot
                .exited
                .iter()
                .find(|e| e.container_id == container)
                .map(|e| e.wait_status),
            exit_file,
            forked: executor.forked,
            rebooted,
        };
        let decision = decide(&evidence, records::process_start_time);
        let (framework_id, executor_id) = (&executor.framework_id, &executor.executor_id);
        tracing::info!(framework = %framework_id, executor = %executor_id, container, ?decision, "recovered executor");
        match decision {
            Decision::Reattach { pid } => {
                settled.claimed.insert(container.to_string());
                settled.reattached += 1;
                core.executor_reattached(now, framework_id, executor_id, pid);
            }
            Decision::Exited { wait_status } => {
                settled.exited += 1;
                let effects = core.recovered_executor_exited(
                    now,
                    framework_id,
                    executor_id,
                    decode_wait_status(wait_status),
                );
                settled.effects.extend(effects);
            }
            Decision::Lost { stray } => {
                settled.lost += 1;
                if let Some(pid) = stray {
                    tracing::warn!(executor = %executor_id, pid, "killing the executor's orphaned process group");
                    signal_group(pid, libc::SIGKILL);
                }
                let why = if rebooted {
                    "the host rebooted"
                } else {
                    "its launcher does not know it (the launcher was restarted or killed)"
                };
                settled
                    .effects
                    .extend(core.executor_lost(now, framework_id, executor_id, why));
            }
        }
    }
    settled
}
