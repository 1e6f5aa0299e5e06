//! Maps a `/files` path onto a host path that is guaranteed to lie inside a known sandbox.
//!
//! A sandbox is reachable under three names (mesos-http-api.md section 5): its host path
//! `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>`, the same with
//! `runs/latest`, and the virtual `/frameworks/<fw>/executors/<ex>/runs/latest`. Anything after
//! the sandbox part is a path inside it.
//!
//! The guard, in order: a `..` component is refused outright; the sandbox is looked up among the
//! agent's known runs (unknown paths, e.g. `/etc/passwd`, are "not found"); the path inside it is
//! canonicalized (symlinks resolved) and must stay under the canonical sandbox; finally the file is
//! opened and the path the kernel reports for the open descriptor (`/proc/self/fd/N`) is checked
//! again, so a symlink swapped in between the check and the open cannot lead outside either.

use crate::core::Core;
use crate::sandbox::LATEST;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
}

/// A requested path split into the sandbox it names and the components inside that sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub sandbox: PathBuf,
    pub inside: Vec<String>,
}

/// An opened file or directory proven to be inside its sandbox.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    /// Canonical host path of what was opened.
    pub real: PathBuf,
}

/// Splits `requested` into clean components, refusing `..`.
fn components(requested: &str) -> Result<Vec<String>, PathError> {
    if requested.contains('\0') {
        return Err(PathError::BadRequest("path contains a NUL byte".into()));
    }
    let mut out = Vec::new();
    for part in requested.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(PathError::Forbidden(format!(
                    "'{requested}': '..' is not allowed in paths"
                )))
            }
            other => out.push(other.to_string()),
        }
    }
    Ok(out)
}

/// Finds the sandbox `requested` names (no file system access; the caller holds the core).
pub fn locate(core: &Core, requested: &str) -> Result<Located, PathError> {
    let parts = components(requested)?;
    let not_found = || {
        PathError::NotFound(format!(
            "'{requested}' is not in a sandbox known to this agent"
        ))
    };
    if !requested.starts_with('/') {
        return Err(not_found());
    }
    // Host form: <work_dir>/slaves/<agent>/frameworks/...; otherwise the virtual /frameworks/...
    let work_dir: Vec<String> = core
        .work_dir()
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let (agent, rest): (Option<&str>, &[String]) = if parts.len() >= work_dir.len() + 2
        && parts[..work_dir.len()] == work_dir[..]
        && parts[work_dir.len()] == "slaves"
    {
        (
            Some(parts[work_dir.len() + 1].as_str()),
            &parts[work_dir.len() + 2..],
        )
    } else {
        (None, &parts[..])
    };
    let [frameworks, fw, executors, ex, runs, run, inside @ ..] = rest else {
        return Err(not_found());
    };
    if frameworks != "frameworks" || executors != "executors" || runs != "runs" {
        return Err(not_found());
    }
    if agent.is_none() && run != LATEST {
        // The virtual form exists only for `latest`.
        return Err(not_found());
    }
    let task = core.find_run(fw, ex, run).ok_or_else(not_found)?;
    if let Some(agent) = agent {
        let agent_root = core.work_dir().join("slaves").join(agent);
        if !task.sandbox.starts_with(&agent_root) {
            return Err(not_found());
        }
    }
    Ok(Located {
        sandbox: task.sandbox.clone(),
        inside: inside.to_vec(),
    })
}

/// Resolves and opens the located path, proving it stays inside the sandbox.
pub fn open(located: &Located) -> Result<Opened, PathError> {
    let root = std::fs::canonicalize(&located.sandbox)
        .map_err(|_| PathError::NotFound("the sandbox no longer exists".into()))?;
    let mut target = located.sandbox.clone();
    target.extend(&located.inside);
    let shown = located.inside.join("/");
    let canonical = std::fs::canonicalize(&target).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            PathError::NotFound(format!("'{shown}' does not exist in the sandbox"))
        }
        _ => PathError::Forbidden(format!("'{shown}' cannot be resolved: {e}")),
    })?;
    if !canonical.starts_with(&root) {
        return Err(PathError::Forbidden(format!(
            "'{shown}' leads outside the sandbox"
        )));
    }
    let file = File::open(&canonical).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            PathError::NotFound(format!("'{shown}' does not exist in the sandbox"))
        }
        _ => PathError::Forbidden(format!("'{shown}' cannot be opened: {e}")),
    })?;
    let real = opened_path(&file).unwrap_or_else(|| canonical.clone());
    if !real.starts_with(&root) {
        return Err(PathError::Forbidden(format!(
            "'{shown}' leads outside the sandbox"
        )));
    }
    Ok(Opened { file, real })
}

/// The path the kernel holds for an open descriptor.
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::unix::io::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// A path under which an opened directory's entries can be read without following the original
/// (possibly swapped) path again.
pub fn fd_path(file: &File) -> PathBuf {
    use std::os::unix::io::AsRawFd;
    Path::new("/proc/self/fd").join(file.as_raw_fd().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Now, Process};
    use proto::{AgentId, FrameworkInfo, MasterInfo, TaskInfo};
    use std::time::{Duration, Instant};

    /// A core with one launched task, its sandbox created on disk under a fresh work dir.
    fn setup() -> (Core, PathBuf, PathBuf) {
        let work_dir = std::env::temp_dir().join(format!("tepui-guard-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&work_dir).unwrap();
        let work_dir = std::fs::canonicalize(&work_dir).unwrap();
        let mut core = Core::new(
            work_dir.clone(),
            Duration::from_secs(5),
            Box::new(uuid::Uuid::new_v4),
        );
        let now = Now {
            at: Instant::now(),
            wall: 0.0,
        };
        let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m".into());
        core.registered(now, AgentId::new("S1"), master);
        let fw: FrameworkInfo =
            serde_json::from_value(serde_json::json!({"id": {"value": "F1"}})).unwrap();
        let task: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "S1"}, "command": {"value": "true"}
        }))
        .unwrap();
        core.run_task(now, fw, task);
        let task = core.live_tasks().next().unwrap();
        assert_eq!(task.process, Process::Launching);
        let sandbox = task.sandbox.clone();
        crate::sandbox::prepare(&sandbox).unwrap();
        std::fs::write(sandbox.join("stdout"), "hello\n").unwrap();
        (core, work_dir, sandbox)
    }

    fn read(core: &Core, requested: &str) -> Result<String, PathError> {
        let located = locate(core, requested)?;
        let opened = open(&located)?;
        Ok(std::io::read_to_string(opened.file).unwrap())
    }

    #[test]
    fn all_three_names_of_a_sandbox_resolve() {
        let (core, work_dir, sandbox) = setup();
        let host = format!("{}/stdout", sandbox.display());
        let latest = format!(
            "{}/slaves/S1/frameworks/F1/executors/t1/runs/latest/stdout",
            work_dir.display()
        );
        for path in [
            host.as_str(),
            latest.as_str(),
            "/frameworks/F1/executors/t1/runs/latest/stdout",
            "/frameworks/F1/executors/t1/runs/latest/./stdout",
        ] {
            assert_eq!(read(&core, path).unwrap(), "hello\n", "{path}");
        }
        std::fs::remove_dir_all(work_dir).unwrap();
    }

    #[test]
    fn escapes_are_refused() {
        let (core, work_dir, sandbox) = setup();
        // `..` anywhere.
        let dotdot = format!("{}/../../../../../../etc/passwd", sandbox.display());
        assert!(matches!(read(&core, &dotdot), Err(PathError::Forbidden(_))));
        assert!(matches!(
            read(
                &core,
                "/frameworks/F1/executors/t1/runs/latest/../latest/stdout"
            ),
            Err(PathError::Forbidden(_))
        ));
        // Absolute paths elsewhere, and the work dir itself, are not sandboxes.
        assert!(matches!(
            read(&core, "/etc/passwd"),
            Err(PathError::NotFound(_))
        ));
        assert!(matches!(
            read(&core, &work_dir.display().to_string()),
            Err(PathError::NotFound(_))
        ));
        assert!(matches!(
            read(&core, "frameworks/F1/executors/t1/runs/latest/stdout"),
            Err(PathError::NotFound(_))
        ));
        // Unknown framework, executor or run.
        assert!(matches!(
            read(&core, "/frameworks/F2/executors/t1/runs/latest/stdout"),
            Err(PathError::NotFound(_))
        ));
        let other_run = format!(
            "{}/slaves/S1/frameworks/F1/executors/t1/runs/nope/stdout",
            work_dir.display()
        );
        assert!(matches!(
            read(&core, &other_run),
            Err(PathError::NotFound(_))
        ));
        // Symlinks out of the sandbox, to a file and to a directory.
        std::os::unix::fs::symlink("/etc/passwd", sandbox.join("leak")).unwrap();
        std::os::unix::fs::symlink("/etc", sandbox.join("etc")).unwrap();
        std::os::unix::fs::symlink(work_dir.join("slaves"), sandbox.join("up")).unwrap();
        for inside in ["leak", "etc/passwd", "etc", "up"] {
            let path = format!("/frameworks/F1/executors/t1/runs/latest/{inside}");
            assert!(
                matches!(read(&core, &path), Err(PathError::Forbidden(_))),
                "{path}"
            );
        }
        // A symlink that stays inside is fine.
        std::os::unix::fs::symlink("stdout", sandbox.join("alias")).unwrap();
        assert_eq!(
            read(&core, "/frameworks/F1/executors/t1/runs/latest/alias").unwrap(),
            "hello\n"
        );
        assert!(matches!(
            read(&core, "/frameworks/F1/executors/t1/runs/latest/missing"),
            Err(PathError::NotFound(_))
        ));
        std::fs::remove_dir_all(work_dir).unwrap();
    }
}
