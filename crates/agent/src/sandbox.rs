//! Sandbox layout and creation (mesos-http-api.md section 5).
//!
//! A task's sandbox is `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>`
//! and `runs/latest` is a symlink to the newest run. `stdout` and `stderr` in it are opened by the
//! launcher daemon as the child's output files, so task output never flows through the agent.
//!
//! Identifiers come from the master and frameworks; `is_safe_component` keeps them from naming a
//! path outside the work directory (`..`, `/`, NUL).

use std::io;
use std::path::{Path, PathBuf};

/// Name of the symlink to the newest run of an executor.
pub const LATEST: &str = "latest";

/// Whether `id` can be used as one path component.
pub fn is_safe_component(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains('/')
        && !id.contains('\0')
        && id != LATEST
}

/// `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs`.
pub fn runs_dir(work_dir: &Path, agent_id: &str, framework_id: &str, executor_id: &str) -> PathBuf {
    work_dir
        .join("slaves")
        .join(agent_id)
        .join("frameworks")
        .join(framework_id)
        .join("executors")
        .join(executor_id)
        .join("runs")
}

/// The sandbox of one run.
pub fn run_dir(
    work_dir: &Path,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> PathBuf {
    runs_dir(work_dir, agent_id, framework_id, executor_id).join(container_id)
}

/// Creates the sandbox directory and points `runs/latest` at it. The launcher creates `stdout` and
/// `stderr` in it when it starts the task.
pub fn prepare(sandbox: &Path) -> io::Result<()> {
    std::fs::create_dir_all(sandbox)?;
    if let (Some(runs), Some(name)) = (sandbox.parent(), sandbox.file_name()) {
        let latest = runs.join(LATEST);
        match std::fs::remove_file(&latest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Relative target: the link stays right if the work directory is moved.
        std::os::unix::fs::symlink(name, &latest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_latest_link() {
        let root = std::env::temp_dir().join(format!("tepui-sandbox-{}", uuid::Uuid::new_v4()));
        let first = run_dir(&root, "S1", "F1", "task-1", "c1");
        assert!(first.ends_with("slaves/S1/frameworks/F1/executors/task-1/runs/c1"));
        prepare(&first).unwrap();
        let second = run_dir(&root, "S1", "F1", "task-1", "c2");
        prepare(&second).unwrap();
        let latest = runs_dir(&root, "S1", "F1", "task-1").join(LATEST);
        assert_eq!(
            std::fs::canonicalize(&latest).unwrap(),
            std::fs::canonicalize(&second).unwrap()
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unsafe_ids_are_refused() {
        for bad in ["", ".", "..", "a/b", "latest", "x\0y"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component("web.1-2_3"));
    }
}
