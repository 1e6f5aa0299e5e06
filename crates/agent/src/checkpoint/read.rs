//! Reading checkpoints back when the agent starts.
//!
//! Everything found under `meta/slaves/latest` is read; what cannot be read is reported in
//! `Recovered::errors` (the agent logs and counts each in `slave/recovery_errors`) and left out,
//! never guessed at. Expected leftovers of a crash are not errors: `.tmp` files (a write that never
//! got renamed in), a run directory without `task.info` (its batch never committed, so its task was
//! never launched; it is removed), and a torn last line of `task.updates` (cut off, and the file
//! truncated after its last whole line so later appends start clean).
//!
//! A custom executor's directory holds `executor.info`; each of its runs an `executor.run` (a run
//! without one never committed its launch and is removed), maybe `forked.pid`, and its tasks under
//! `tasks/<task>/` (read like a command task's run).

use super::layout;
use super::records::{
    self, AgentRecord, ExecutorRecord, ExecutorRunRecord, ForkedRecord, FrameworkRecord,
    TaskRecord, UpdateLine,
};
use crate::core::{Forked, RecoveredExecutor, RecoveredRun};
use crate::sandbox::is_safe_component;
use proto::agent_protocol::AgentInfo;
use proto::{AgentId, FrameworkId, FrameworkInfo};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the checkpoints hold.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The id `slaves/latest` names: the agent reregisters with it.
    pub agent_id: Option<AgentId>,
    /// `slave.info` of that id.
    pub agent_info: Option<AgentInfo>,
    pub frameworks: BTreeMap<FrameworkId, FrameworkInfo>,
    pub runs: Vec<RecoveredRun>,
    /// Runs of custom executors (their tasks are in `runs`).
    pub executors: Vec<RecoveredExecutor>,
    /// Files that exist but could not be used.
    pub errors: Vec<String>,
}

fn subdirs(dir: &Path, errors: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(format!("cannot list {}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_dir && is_safe_component(&name) {
            found.push((name, entry.path()));
        }
    }
    found.sort();
    found
}

/// Reads one record file; `None` when absent, an error noted when unreadable.
fn read_record<T: serde::de::DeserializeOwned>(path: &Path, errors: &mut Vec<String>) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            errors.push(format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match records::parse(&bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            errors.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// The records of a `task.updates` file; a torn last line is cut off (and the file truncated).
fn read_updates(path: &Path, errors: &mut Vec<String>) -> Vec<crate::core::UpdateRecord> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(format!("cannot read {}: {e}", path.display()));
            return Vec::new();
        }
    };
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        tracing::warn!(path = %path.display(), bytes = bytes.len() - whole, "torn record at the end of task.updates; cut off");
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(whole as u64).and_then(|()| f.sync_data()));
        if let Err(e) = truncated {
            errors.push(format!(
                "cannot cut the torn end of {}: {e}",
                path.display()
            ));
        }
    }
    let mut out = Vec::new();
    for (number, line) in bytes[..whole].split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match records::parse::<UpdateLine>(line) {
            Ok(line) => out.push(line.record),
            Err(e) => errors.push(format!("{} line {}: {e}", path.display(), number + 1)),
        }
    }
    out
}

fn read_run(
    framework_id: &FrameworkId,
    executor_id: &str,
    container: &str,
    run_dir: &Path,
    errors: &mut Vec<String>,
) -> Option<RecoveredRun> {
    let info_path = run_dir.join(layout::TASK_INFO);
    if !info_path.exists() {
        tracing::info!(run = %run_dir.display(), "run without task.info (its launch never committed); removed");
        let _ = std::fs::remove_dir_all(run_dir);
        return None;
    }
    let record: TaskRecord = read_record(&info_path, errors)?;
    let consistent = record.framework_id == *framework_id
        && record.container_id.value == container
        && record.task.task_id.value == executor_id;
    if !consistent {
        errors.push(format!(
            "{}: names framework {}, task {}, container {}, which do not match its path",
            info_path.display(),
            record.framework_id,
            record.task.task_id,
            record.container_id
        ));
        return None;
    }
    Some(RecoveredRun {
        run_dir: run_dir.to_path_buf(),
        framework_id: record.framework_id,
        task: record.task,
        container_id: record.container_id,
        sandbox: record.sandbox,
        records: read_updates(&run_dir.join(layout::TASK_UPDATES), errors),
    })
}

/// A custom executor's runs, and the runs of its tasks.
fn read_executor(
    framework_id: &FrameworkId,
    executor_dir: &Path,
    executors: &mut Vec<RecoveredExecutor>,
    runs: &mut Vec<RecoveredRun>,
    errors: &mut Vec<String>,
) {
    let Some(record) =
        read_record::<ExecutorRecord>(&executor_dir.join(layout::EXECUTOR_INFO), errors)
    else {
        return;
    };
    if record.framework_id != *framework_id {
        errors.push(format!(
            "{}: names framework {}, which does not match its path",
            executor_dir.display(),
            record.framework_id
        ));
        return;
    }
    for (container, run_dir) in subdirs(&executor_dir.join("runs"), errors) {
        let run_path = run_dir.join(layout::EXECUTOR_RUN);
        if !run_path.exists() {
            tracing::info!(run = %run_dir.display(), "executor run without executor.run (its launch never committed); removed");
            let _ = std::fs::remove_dir_all(&run_dir);
            continue;
        }
        let Some(run) = read_record::<ExecutorRunRecord>(&run_path, errors) else {
            continue;
        };
        if run.container_id.value != container {
            errors.push(format!(
                "{}: names container {}, not {container}",
                run_path.display(),
                run.container_id
            ));
            continue;
        }
        let forked =
            read_record::<ForkedRecord>(&run_dir.join(layout::FORKED_PID), errors).map(|f| {
                Forked {
                    pid: f.pid,
                    start_time: f.start_time,
                }
            });
        for (task, task_dir) in subdirs(&run_dir.join(layout::TASKS), errors) {
            if let Some(task_run) = read_run(framework_id, &task, &container, &task_dir, errors) {
                runs.push(task_run);
            }
        }
        executors.push(RecoveredExecutor {
            framework_id: framework_id.clone(),
            info: record.info.clone(),
            container_id: run.container_id,
            sandbox: run.sandbox,
            executor_dir: executor_dir.to_path_buf(),
            run_dir,
            forked,
        });
    }
}

/// Reads every checkpoint of the agent `slaves/latest` names (nothing when there is none).
pub fn read(meta: &Path) -> Recovered {
    let mut recovered = Recovered::default();
    let errors = &mut recovered.errors;
    // Half-removed trees of an earlier cleanup.
    if let Ok(entries) = std::fs::read_dir(meta) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("slaves.removing-")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let latest = layout::slaves_dir(meta).join(layout::LATEST);
    let target = match std::fs::read_link(&latest) {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return recovered,
        Err(e) => {
            errors.push(format!("cannot read {}: {e}", latest.display()));
            return recovered;
        }
    };
    let agent_id = target.to_string_lossy().into_owned();
    if !is_safe_component(&agent_id) {
        errors.push(format!(
            "{} points to {agent_id:?}, not an agent id",
            latest.display()
        ));
        return recovered;
    }
    let agent_dir = layout::agent_dir(meta, &agent_id);
    recovered.agent_info =
        read_record::<AgentRecord>(&agent_dir.join(layout::SLAVE_INFO), errors).map(|r| r.info);
    recovered.agent_id = Some(AgentId::new(agent_id.clone()));
    for (framework, framework_dir) in subdirs(&agent_dir.join("frameworks"), errors) {
        let framework_id = FrameworkId::new(framework.clone());
        if let Some(record) =
            read_record::<FrameworkRecord>(&framework_dir.join(layout::FRAMEWORK_INFO), errors)
        {
            recovered
                .frameworks
                .insert(framework_id.clone(), record.info);
        }
        for (executor, executor_dir) in subdirs(&framework_dir.join("executors"), errors) {
            if executor_dir.join(layout::EXECUTOR_INFO).exists() {
                read_executor(
                    &framework_id,
                    &executor_dir,
                    &mut recovered.executors,
                    &mut recovered.runs,
                    errors,
                );
                continue;
            }
            for (container, run_dir) in subdirs(&executor_dir.join("runs"), errors) {
                if let Some(run) = read_run(&framework_id, &executor, &container, &run_dir, errors)
                {
                    recovered.runs.push(run);
                }
            }
        }
    }
    recovered
}

/// The boot id recorded when the agent last started.
pub fn read_boot_id(meta: &Path) -> Option<String> {
    std::fs::read_to_string(meta.join(layout::BOOT_ID))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
