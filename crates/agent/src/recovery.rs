//! Agent recovery on start (replicated-log.md section 8, `--recover`).
//!
//! What: `prepare` replays the checkpoint log, reads the checkpoints and asks the launcher what it
//! runs; then either
//! - `reconnect` (default): `Prepared::apply` rebuilds the core (tasks, unacknowledged update
//!   queues) and settles every task that was not terminal with the launcher: still running there
//!   -> re-attached; its exit recorded (by the daemon in memory, or in `exit_status`) -> its
//!   terminal update is produced now; unknown (the daemon is gone, the host rebooted: `boot_id`
//!   differs) -> TASK_GONE or TASK_LOST, and if its process provably still runs (same pid, same
//!   start time: its daemon was killed) that process group is killed. A process the launcher runs
//!   that no task claims is killed. The agent then reregisters under the
//!   same id (the master link does, since the core has the id) and resends what was not
//!   acknowledged, same uuids.
//! - `cleanup`: kills every process the launcher runs (and any stray one still known by pid and
//!   start time), waits for them to end, removes the agent's checkpoints and starts as a new agent.
//!
//! `settle` is also what the driver runs after reconnecting to a daemon that went away.
//!
//! Why a pure `decide`: the rules (which evidence wins, what counts as the same process) are the
//! part worth testing exhaustively, without processes.

use crate::checkpoint::{self, layout, records};
use crate::core::{forked_of, Core, Effect, Exit, Forked, Now, RecoveredTask};
use crate::launcher::signal_group;
use crate::launcher_client::{Launcher, Snapshot};
use crate::launcher_protocol::decode_wait_status;
use proto::agent_protocol::AgentInfo;
use proto::{FrameworkId, TaskId};
use records::ExitRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// How long `cleanup` waits for killed processes to be gone.
const CLEANUP_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    Reconnect,
    Cleanup,
}

impl std::str::FromStr for RecoverMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reconnect" => Ok(RecoverMode::Reconnect),
            "cleanup" => Ok(RecoverMode::Cleanup),
            other => Err(format!("'{other}' is neither 'reconnect' nor 'cleanup'")),
        }
    }
}

/// What became of one task's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The launcher runs it.
    Reattach { pid: u32 },
    /// Its exit was recorded.
    Exited { wait_status: i32 },
    /// Nobody parents it. `stray`: a process still alive that is provably the task's (same pid and
    /// start time), orphaned by a launcher that died; it is killed.
    Lost { stray: Option<u32> },
}

/// What is known about one task's process.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Pid, if the launcher lists it running.
    pub running: Option<u32>,
    /// Wait status, if the launcher holds an unacknowledged exit.
    pub exited: Option<i32>,
    /// Wait status from the run's `exit_status` file.
    pub exit_file: Option<i32>,
    /// The process the launcher started, as recorded.
    pub forked: Option<Forked>,
    /// The host rebooted since the agent last started.
    pub rebooted: bool,
}

/// The rules, in order: what the launcher runs is re-attached (unless the host rebooted since:
/// then nothing survived); a recorded exit is reported (even across a reboot: the file was
/// fsync'd); else the task is lost, and its process, if provably still there, killed.
/// `start_time_of` reads a live process's start time.
pub fn decide(evidence: &Evidence, start_time_of: impl Fn(u32) -> Option<u64>) -> Decision {
    if let (Some(pid), false) = (evidence.running, evidence.rebooted) {
        return Decision::Reattach { pid };
    }
    if let Some(wait_status) = evidence.exited.or(evidence.exit_file) {
        return Decision::Exited { wait_status };
    }
    if evidence.rebooted {
        return Decision::Lost { stray: None };
    }
    let stray = evidence.forked.as_ref().and_then(|forked| {
        let recorded = forked.start_time?;
        (start_time_of(forked.pid) == Some(recorded)).then_some(forked.pid)
    });
    Decision::Lost { stray }
}

/// Turns a recorded exit into the core's terminal update. The driver's reporter first asks the
/// isolator whether the container was stopped at a limit while the agent was down (its cgroup still
/// holds the OOM counter), so such a task is reported with the limitation, not as a plain signal.
pub type ExitReporter<'a> =
    &'a dyn Fn(&mut Core, Now, &FrameworkId, &TaskId, &str, Exit) -> Vec<Effect>;

/// The reporter without isolation: the exit as the process ended (tests drive recovery with it).
#[cfg(test)]
pub fn plain_exit(
    core: &mut Core,
    now: Now,
    framework_id: &FrameworkId,
    task_id: &TaskId,
    _container_id: &str,
    exit: Exit,
) -> Vec<Effect> {
    core.exited(now, framework_id, task_id, exit)
}

/// What settling asks the driver to do once the core's checkpoints are durable.
#[derive(Debug, Default)]
pub struct Settled {
    pub effects: Vec<Effect>,
    /// Exits to acknowledge to the launcher.
    pub ack_exits: Vec<String>,
    pub reattached: usize,
    pub exited: usize,
    pub lost: usize,
    /// Processes killed because no task claims them.
    pub orphans: usize,
}

fn read_quietly<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    records::parse(&bytes).ok()
}

/// Settles `tasks` with the launcher's `snapshot`, applying each decision to the core. Processes
/// the launcher runs for no task are killed; every exit it holds is to be acknowledged.
pub fn settle(
    core: &mut Core,
    now: Now,
    tasks: Vec<RecoveredTask>,
    snapshot: &Snapshot,
    rebooted: bool,
    launcher: &dyn Launcher,
    report_exit: ExitReporter,
) -> Settled {
    let running: BTreeMap<&str, u32> = snapshot
        .running
        .iter()
        .map(|r| (r.container_id.as_str(), r.pid))
        .collect();
    let exited: BTreeMap<&str, i32> = snapshot
        .exited
        .iter()
        .map(|e| (e.container_id.as_str(), e.wait_status))
        .collect();
    let mut settled = Settled::default();
    let mut claimed = BTreeSet::new();
    for task in tasks {
        let evidence = Evidence {
            running: running.get(task.container_id.value.as_str()).copied(),
            exited: exited.get(task.container_id.value.as_str()).copied(),
            exit_file: read_quietly::<ExitRecord>(&layout::exit_status(&task.run_dir))
                .map(|r| r.wait_status),
            forked: task.forked,
            rebooted,
        };
        let decision = decide(&evidence, records::process_start_time);
        tracing::info!(framework = %task.framework_id, task = %task.task_id, container = %task.container_id, ?decision, "recovered task");
        let (framework_id, task_id) = (&task.framework_id, &task.task_id);
        let effects = match decision {
            Decision::Reattach { pid } => {
                claimed.insert(task.container_id.value.clone());
                settled.reattached += 1;
                core.reattached(now, framework_id, task_id, pid)
            }
            Decision::Exited { wait_status } => {
                settled.exited += 1;
                report_exit(
                    core,
                    now,
                    framework_id,
                    task_id,
                    &task.container_id.value,
                    decode_wait_status(wait_status),
                )
            }
            Decision::Lost { stray } => {
                settled.lost += 1;
                let why = if rebooted {
                    "the host rebooted"
                } else {
                    "its launcher does not know it (the launcher was restarted or killed)"
                };
                if let Some(pid) = stray {
                    tracing::warn!(task = %task_id, pid, "killing the task's orphaned process group");
                    signal_group(pid, libc::SIGKILL);
                }
                core.lost(now, framework_id, task_id, why)
            }
        };
        settled.effects.extend(effects);
    }
    // Custom executors: settled by the same rules (`executor_recovery`).
    let executors = crate::executor_recovery::settle(core, now, snapshot, rebooted);
    claimed.extend(executors.claimed);
    settled.effects.extend(executors.effects);
    settled.reattached += executors.reattached;
    settled.exited += executors.exited;
    settled.lost += executors.lost;
    for orphan in snapshot
        .running
        .iter()
        .filter(|r| !claimed.contains(&r.container_id))
    {
        tracing::warn!(container = %orphan.container_id, pid = orphan.pid, "the launcher runs a process no task claims; killing it");
        launcher.kill(&orphan.container_id, libc::SIGKILL, None);
        settled.orphans += 1;
    }
    settled.ack_exits = snapshot
        .exited
        .iter()
        .map(|e| e.container_id.clone())
        .collect();
    settled
}

/// Whether the host rebooted since the boot id in `meta` was written.
pub fn rebooted(meta: &Path) -> bool {
    match (checkpoint::read_boot_id(meta), records::host_boot_id()) {
        (Some(recorded), Some(current)) => recorded != current,
        _ => false,
    }
}

/// Records the current boot id (durably); a failure is logged and counted.
pub fn record_boot_id(meta: &Path) -> usize {
    let Some(boot_id) = records::host_boot_id() else {
        return 0;
    };
    match checkpoint::write_boot_id(meta, &boot_id) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "cannot checkpoint the boot id");
            1
        }
    }
}

/// The result of `recover`.
#[derive(Debug, Default)]
pub struct Recovery {
    pub settled: Settled,
    /// Checkpoint files that could not be used (each logged).
    pub errors: usize,
    /// Checkpointed tasks killed by `cleanup`.
    pub cleaned: usize,
}

/// What `prepare` gathered, to `apply` to the core.
pub struct Prepared {
    /// The checkpoints (`None` after a cleanup: start fresh).
    read: Option<checkpoint::Recovered>,
    snapshot: Snapshot,
    rebooted: bool,
    errors: usize,
    cleaned: usize,
    /// The next checkpoint log segment (`checkpoint::Writer::new`).
    pub next_sequence: u64,
}

/// Reads the checkpoints and asks the launcher what it runs; with `cleanup`, kills it all and
/// removes the checkpoints. Blocking file work runs on the blocking pool.
pub async fn prepare(
    mode: RecoverMode,
    work_dir: &Path,
    agent_info: &AgentInfo,
    launcher: &dyn Launcher,
) -> Result<Prepared, String> {
    let meta = layout::meta_dir(work_dir);
    let read_meta = meta.clone();
    let (next_sequence, replay_errors, read) = tokio::task::spawn_blocking(move || {
        // The log first: it completes what a crash of the machine may have cut short.
        let (next_sequence, replay_errors) = checkpoint::replay_log(&read_meta);
        (next_sequence, replay_errors, checkpoint::read(&read_meta))
    })
    .await
    .map_err(|e| format!("reading checkpoints failed: {e}"))?;
    for error in replay_errors.iter().chain(&read.errors) {
        tracing::error!(%error, "checkpoint not recovered");
    }
    let mut errors = replay_errors.len() + read.errors.len();
    let rebooted = rebooted(&meta);
    if rebooted {
        tracing::warn!("the host rebooted since the agent last ran: no task process survived");
    }
    let snapshot = launcher
        .list()
        .await
        .map_err(|_| "the launcher went away before listing its tasks".to_string())?;
    if mode == RecoverMode::Cleanup {
        let cleaned = cleanup(&meta, &read, &snapshot, rebooted, launcher).await?;
        errors += record_boot_id(&meta);
        return Ok(Prepared {
            read: None,
            snapshot: Snapshot::default(),
            rebooted,
            errors,
            cleaned,
            next_sequence,
        });
    }
    if let (Some(old), Some(id)) = (&read.agent_info, &read.agent_id) {
        let changed = old.hostname != agent_info.hostname
            || old.resources != agent_info.resources
            || old.attributes != agent_info.attributes;
        if changed {
            tracing::warn!(agent = %id, "hostname, resources or attributes changed since the last run; reregistering with the new ones");
        }
    }
    errors += record_boot_id(&meta);
    Ok(Prepared {
        read: Some(read),
        snapshot,
        rebooted,
        errors,
        cleaned: 0,
        next_sequence,
    })
}

impl Prepared {
    /// Rebuilds the core from the checkpoints and settles every task with the launcher. The
    /// core's journal then holds what must be checkpointed before `settled`'s actions run.
    pub fn apply(
        self,
        core: &mut Core,
        now: Now,
        launcher: &dyn Launcher,
        report_exit: ExitReporter,
    ) -> Recovery {
        let mut recovery = Recovery {
            errors: self.errors,
            cleaned: self.cleaned,
            ..Default::default()
        };
        let Some(read) = self.read else {
            return recovery;
        };
        let agent_id = read.agent_id.clone();
        let runs = read.runs;
        core.recover_executors(&read.frameworks, read.executors); // custom executors first
        let tasks = core.recover(agent_id.clone(), read.frameworks, runs);
        recovery.settled = settle(
            core,
            now,
            tasks,
            &self.snapshot,
            self.rebooted,
            launcher,
            report_exit,
        );
        if let Some(id) = agent_id {
            let s = &recovery.settled;
            tracing::info!(agent = %id, reattached = s.reattached, exited = s.exited, lost = s.lost,
                orphans = s.orphans, errors = recovery.errors, "recovered");
        }
        recovery
    }
}

/// `--recover=cleanup`: kill everything, wait for it to end, forget the agent.
async fn cleanup(
    meta: &Path,
    read: &checkpoint::Recovered,
    snapshot: &Snapshot,
    rebooted: bool,
    launcher: &dyn Launcher,
) -> Result<usize, String> {
    let running: BTreeSet<&str> = snapshot
        .running
        .iter()
        .map(|r| r.container_id.as_str())
        .collect();
    let mut killed = 0;
    for run in &snapshot.running {
        tracing::info!(container = %run.container_id, pid = run.pid, "cleanup: killing");
        launcher.kill(&run.container_id, libc::SIGKILL, None);
        killed += 1;
    }
    if !rebooted {
        for run in read
            .runs
            .iter()
            .filter(|r| !running.contains(r.container_id.value.as_str()))
        {
            let evidence = Evidence {
                forked: forked_of(&run.records),
                ..Default::default()
            };
            if let Decision::Lost { stray: Some(pid) } =
                decide(&evidence, records::process_start_time)
            {
                tracing::info!(container = %run.container_id, pid, "cleanup: killing an orphaned task process");
                signal_group(pid, libc::SIGKILL);
                killed += 1;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + CLEANUP_WAIT;
    loop {
        let now = launcher
            .list()
            .await
            .map_err(|e| format!("the launcher did not list its tasks: {e:?}"))?;
        if now.running.is_empty() {
            for exited in &now.exited {
                launcher.ack_exit(&exited.container_id);
            }
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{} task processes still run {CLEANUP_WAIT:?} after SIGKILL",
                now.running.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let meta = meta.to_path_buf();
    tokio::task::spawn_blocking(move || checkpoint::remove_agent_state(&meta))
        .await
        .map_err(|e| format!("removing checkpoints failed: {e}"))?
        .map_err(|e| format!("cannot remove the agent's checkpoints: {e}"))?;
    tracing::info!(
        killed,
        "cleanup done: checkpoints removed; registering as a new agent"
    );
    Ok(killed)
}

#[cfg(test)]
mod tests;
