//! Where checkpoints live under `<work_dir>/meta` (replicated-log.md section 8). Pure path
//! arithmetic, usable from the core.
//!
//! ```text
//! meta/boot_id                                   host boot id when the agent last started
//! meta/checkpoint.<n>.wal                        the checkpoint log (see `wal`)
//! meta/launcher.{sock,lock,pid,log}              the launcher daemon
//! meta/slaves/latest -> <agent-id>               the agent id to reregister with
//! meta/slaves/<agent-id>/slave.info              AgentInfo
//!   frameworks/<fw>/framework.info               FrameworkInfo
//!   frameworks/<fw>/executors/<ex>/runs/<container>/
//!     task.info                                  TaskInfo, container id, sandbox
//!     task.updates                               status updates, acknowledgements, kills, the pid
//!     exit_status                                the wait status (written by the daemon, fsync'd)
//!   frameworks/<fw>/executors/<ex>/executor.info  a custom executor's ExecutorInfo
//!     runs/<container>/executor.run              its container id and sandbox
//!     runs/<container>/forked.pid                its process (pid and start time)
//!     runs/<container>/exit_status               its wait status (written by the daemon)
//!     runs/<container>/tasks/<task>/task.info, task.updates   each task it runs
//! ```
//!
//! Adapted from Mesos for command tasks, whose executor is the task (executor id = task id, one
//! task per run): `task.info` and `task.updates` sit in the run directory (Mesos:
//! `runs/<c>/tasks/<task>/`), and the pid is a record of `task.updates` (Mesos: `pids/forked.pid`).
//! Each directory is an inode to allocate on the launch path; these three fewer per task are a
//! measurable share of the launch rate on a busy ext4.

use std::path::{Path, PathBuf};

pub const META: &str = "meta";
pub const BOOT_ID: &str = "boot_id";
pub const SLAVES: &str = "slaves";
pub const LATEST: &str = "latest";
pub const SLAVE_INFO: &str = "slave.info";
pub const FRAMEWORK_INFO: &str = "framework.info";
pub const TASK_INFO: &str = "task.info";
pub const TASK_UPDATES: &str = "task.updates";
pub const EXIT_STATUS: &str = "exit_status";
pub const EXECUTOR_INFO: &str = "executor.info";
pub const EXECUTOR_RUN: &str = "executor.run";
pub const FORKED_PID: &str = "forked.pid";
/// Directory of a custom executor's tasks inside its run.
pub const TASKS: &str = "tasks";
pub const LAUNCHER_SOCKET: &str = "launcher.sock";
pub const LAUNCHER_LOCK: &str = "launcher.lock";
pub const LAUNCHER_PID: &str = "launcher.pid";
pub const LAUNCHER_LOG: &str = "launcher.log";
/// Suffix of a file being written; never read back.
pub const TMP_SUFFIX: &str = ".tmp";

pub fn meta_dir(work_dir: &Path) -> PathBuf {
    work_dir.join(META)
}

pub fn slaves_dir(meta: &Path) -> PathBuf {
    meta.join(SLAVES)
}

pub fn agent_dir(meta: &Path, agent_id: &str) -> PathBuf {
    slaves_dir(meta).join(agent_id)
}

pub fn framework_dir(meta: &Path, agent_id: &str, framework_id: &str) -> PathBuf {
    agent_dir(meta, agent_id)
        .join("frameworks")
        .join(framework_id)
}

pub fn run_dir(
    meta: &Path,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> PathBuf {
    framework_dir(meta, agent_id, framework_id)
        .join("executors")
        .join(executor_id)
        .join("runs")
        .join(container_id)
}

/// `frameworks/<fw>/executors/<ex>`: a custom executor's directory (holds `executor.info`).
pub fn executor_dir(meta: &Path, agent_id: &str, framework_id: &str, executor_id: &str) -> PathBuf {
    framework_dir(meta, agent_id, framework_id)
        .join("executors")
        .join(executor_id)
}

pub fn exit_status(run_dir: &Path) -> PathBuf {
    run_dir.join(EXIT_STATUS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_the_mesos_tree() {
        let meta = meta_dir(Path::new("/w"));
        let run = run_dir(&meta, "S1", "F1", "t1", "c1");
        assert_eq!(
            run,
            PathBuf::from("/w/meta/slaves/S1/frameworks/F1/executors/t1/runs/c1")
        );
        assert_eq!(exit_status(&run), run.join("exit_status"));
    }
}
