//! Checkpoints written by `Writer` from a real core's journal, read back, and fed to a new core.

use super::*;
use crate::core::{Core, Effect, Now, Process};
use proto::{AgentId, FrameworkId, MasterInfo, TaskId, TaskState};
use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tepui-ckpt-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now(secs: u64) -> Now {
    Now {
        at: Instant::now() + Duration::from_secs(secs),
        wall: 1_700_000_000.0 + secs as f64,
    }
}

fn core(work_dir: &Path) -> Core {
    Core::new(
        work_dir.to_path_buf(),
        Duration::from_secs(5),
        Box::new(uuid::Uuid::new_v4),
    )
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        id: None,
        hostname: "h".into(),
        port: 5051,
        resources: Vec::new(),
        attributes: Vec::new(),
    }
}

fn run_task(id: &str) -> (proto::FrameworkInfo, proto::TaskInfo) {
    let framework = serde_json::from_value(serde_json::json!({
        "user": "u", "name": "fw", "id": {"value": "F1"}, "capabilities": [{"type": "PARTITION_AWARE"}]
    }))
    .unwrap();
    let task = serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": "S1"},
        "command": {"value": "sleep 600", "environment": {"variables": [{"name": "SECRET", "value": "x"}]}}
    }))
    .unwrap();
    (framework, task)
}

fn sent_uuids(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(u) => u.status.uuid.clone(),
            _ => None,
        })
        .collect()
}

/// A core with three tasks in different states, its journal committed to `work_dir/meta`.
fn populate(work_dir: &Path) -> Core {
    let writer = Writer::new(
        layout::meta_dir(work_dir),
        agent_info(),
        1,
        Default::default(),
    );
    let mut c = core(work_dir);
    let master = MasterInfo::new("m".into(), "127.0.0.1".parse().unwrap(), 5050, "m".into());
    c.registered(now(0), AgentId::new("S1"), master);
    let fw = FrameworkId::new("F1");
    for id in ["acked", "unacked", "done"] {
        let (framework, task) = run_task(id);
        let effects = c.run_task(now(1), framework, task);
        let starting = sent_uuids(&effects);
        c.spawned(now(2), &fw, &TaskId::new(id), 4000);
        // STARTING acknowledged for every task; RUNNING only for "acked" and "done".
        let running = sent_uuids(&c.acknowledge(now(3), &fw, &TaskId::new(id), &starting[0]));
        if id != "unacked" {
            c.acknowledge(now(4), &fw, &TaskId::new(id), &running[0]);
        }
    }
    // "done" finishes and everything about it is acknowledged: nothing to recover.
    let finished = sent_uuids(&c.exited(
        now(5),
        &fw,
        &TaskId::new("done"),
        crate::core::Exit::Code(0),
    ));
    c.acknowledge(now(6), &fw, &TaskId::new("done"), &finished[0]);
    let errors = writer.commit(&c.drain_checkpoints());
    assert!(errors.is_empty(), "{errors:?}");
    writer.flush();
    assert_eq!(writer.errors(), 0);
    c
}

#[test]
fn a_core_survives_a_round_trip_through_its_checkpoints() {
    let work_dir = temp_dir("round-trip");
    let before = populate(&work_dir);
    let meta = layout::meta_dir(&work_dir);

    let read = read(&meta);
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    assert_eq!(read.agent_id, Some(AgentId::new("S1")));
    assert_eq!(
        read.agent_info.as_ref().and_then(|i| i.id.clone()),
        Some(AgentId::new("S1"))
    );
    assert_eq!(read.frameworks.len(), 1);
    // The completed run's checkpoints were removed when it completed.
    let mut names: Vec<String> = read
        .runs
        .iter()
        .map(|r| r.task.task_id.value.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["acked", "unacked"]);
    // task.info holds the task's environment: owner-only.
    let run_dir = &read.runs[0].run_dir;
    let mode = std::fs::metadata(run_dir).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );

    let mut after = core(&work_dir);
    let runs = read.runs;
    let live = after.recover(read.agent_id, read.frameworks, runs);
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|t| t.state == TaskState::TaskRunning));
    let fw = FrameworkId::new("F1");
    for id in ["acked", "unacked"] {
        let (old, new) = (
            before.task(&fw, &TaskId::new(id)).unwrap(),
            after.task(&fw, &TaskId::new(id)).unwrap(),
        );
        assert_eq!(new.info, old.info);
        assert_eq!(new.container_id, old.container_id);
        assert_eq!(new.sandbox, old.sandbox);
        assert_eq!(
            new.statuses, old.statuses,
            "{id}: statuses, timestamps and uuids included"
        );
        assert_eq!(
            new.process,
            Process::Launching,
            "unknown until the launcher says"
        );
        assert_eq!(
            after.pending_updates(&fw, &TaskId::new(id)),
            before.pending_updates(&fw, &TaskId::new(id)),
            "{id}"
        );
    }
    assert_eq!(after.pending_updates(&fw, &TaskId::new("unacked")).len(), 1);
    assert!(after.task(&fw, &TaskId::new("done")).is_none());
    // Recovery itself journals nothing here (nothing was complete).
    assert!(after.drain_checkpoints().is_empty());
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[test]
fn torn_and_foreign_files_are_left_out_safely() {
    let work_dir = temp_dir("torn");
    populate(&work_dir);
    let meta = layout::meta_dir(&work_dir);
    let first = read(&meta);
    let unacked = first
        .runs
        .iter()
        .find(|r| r.task.task_id.value == "unacked")
        .unwrap()
        .clone();
    let updates = unacked.run_dir.join(layout::TASK_UPDATES);
    // A record written by a newer release.
    let mut file = OpenOptions::new().append(true).open(&updates).unwrap();
    file.write_all(b"{\"version\":7,\"type\":\"TELEPORT\"}\n")
        .unwrap();
    drop(file);
    let whole_len = std::fs::metadata(&updates).unwrap().len();

    // A record torn by a crash mid-append.
    let mut file = OpenOptions::new().append(true).open(&updates).unwrap();
    file.write_all(br#"{"version":1,"type":"ACK","uu"#).unwrap();
    drop(file);
    // A temp file of a write that never got renamed in.
    std::fs::write(unacked.run_dir.join("task.info.tmp"), b"{\"vers").unwrap();
    // A run whose batch never committed: a directory without task.info.
    let orphan = layout::run_dir(&meta, "S1", "F1", "unacked", "c-never");
    std::fs::create_dir_all(&orphan).unwrap();
    // A framework.info cut short.
    let framework_info = layout::framework_dir(&meta, "S1", "F1").join(layout::FRAMEWORK_INFO);
    std::fs::write(&framework_info, b"{\"version\":1,\"info\":{\"us").unwrap();

    let second = read(&meta);
    // The torn tail is cut, from the file too, and the records before it are intact.
    assert_eq!(std::fs::metadata(&updates).unwrap().len(), whole_len);
    let again = second
        .runs
        .iter()
        .find(|r| r.task.task_id.value == "unacked")
        .unwrap();
    assert_eq!(again.records, unacked.records);
    assert!(!orphan.exists(), "a run that never committed is removed");
    assert_eq!(second.runs.len(), 2);
    assert!(second.frameworks.is_empty());
    assert_eq!(second.errors.len(), 2, "{:?}", second.errors);
    assert!(second.errors.iter().any(|e| e.contains("framework.info")));
    assert!(second.errors.iter().any(|e| e.contains("newer tepui")));

    // The tasks still come back (under a placeholder FrameworkInfo).
    let mut c = core(&work_dir);
    let live = c.recover(second.agent_id, second.frameworks, second.runs);
    assert_eq!(live.len(), 2);
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[test]
fn removals_cancel_pending_writes_under_them_and_boot_ids_persist() {
    let work_dir = temp_dir("remove");
    let meta = layout::meta_dir(&work_dir);
    let writer = Writer::new(meta.clone(), agent_info(), 1, Default::default());
    let (framework, _) = run_task("x");
    let ops = vec![
        CheckpointOp::Framework {
            agent_id: AgentId::new("S1"),
            framework_id: FrameworkId::new("F1"),
            info: framework.clone(),
        },
        CheckpointOp::RemoveFramework {
            agent_id: AgentId::new("S1"),
            framework_id: FrameworkId::new("F1"),
        },
    ];
    assert_eq!(writer.commit(&ops), Vec::<String>::new());
    writer.flush();
    assert!(!layout::framework_dir(&meta, "S1", "F1").exists());

    assert_eq!(read_boot_id(&meta), None);
    write_boot_id(&meta, "b-1").unwrap();
    assert_eq!(read_boot_id(&meta).as_deref(), Some("b-1"));
    // A removed agent stays removed: its log goes too, or replaying it would bring it back.
    let agent = [CheckpointOp::Agent {
        agent_id: AgentId::new("S1"),
    }];
    assert_eq!(writer.commit(&agent), Vec::<String>::new());
    writer.flush();
    assert_eq!(read(&meta).agent_id, Some(AgentId::new("S1")));
    remove_agent_state(&meta).unwrap();
    assert_eq!(replay_log(&meta), (1, Vec::new()));
    assert_eq!(read(&meta).agent_id, None);
    assert_eq!(
        read_boot_id(&meta).as_deref(),
        Some("b-1"),
        "the boot id is not agent state"
    );
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[test]
fn files_a_machine_crash_lost_are_rebuilt_from_the_log() {
    let work_dir = temp_dir("lost");
    let before = populate(&work_dir);
    let meta = layout::meta_dir(&work_dir);
    let intact = read(&meta);
    // The machine died before the page cache reached the disk: the files are gone, the log is not.
    std::fs::remove_dir_all(layout::slaves_dir(&meta)).unwrap();
    assert!(read(&meta).agent_id.is_none());

    let (next, errors) = replay_log(&meta);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(next, 2, "one segment was written and replayed");
    let rebuilt = read(&meta);
    assert!(rebuilt.errors.is_empty(), "{:?}", rebuilt.errors);
    assert_eq!(rebuilt.agent_id, intact.agent_id);
    let records = |r: &Recovered| {
        let mut runs: Vec<_> = r
            .runs
            .iter()
            .map(|r| (r.task.task_id.value.clone(), r.records.clone()))
            .collect();
        runs.sort_by(|a, b| a.0.cmp(&b.0));
        runs
    };
    assert_eq!(
        records(&rebuilt),
        records(&intact),
        "every update and acknowledgement, once, in order"
    );
    let mut after = core(&work_dir);
    after.recover(rebuilt.agent_id, rebuilt.frameworks, rebuilt.runs);
    let fw = FrameworkId::new("F1");
    assert_eq!(
        after.pending_updates(&fw, &TaskId::new("unacked")),
        before.pending_updates(&fw, &TaskId::new("unacked"))
    );
    // Replaying again changes nothing (the log is gone once replayed).
    assert_eq!(replay_log(&meta), (1, Vec::new()));
    let _ = std::fs::remove_dir_all(&work_dir);
}

#[test]
fn writes_into_a_tree_removed_later_in_the_backlog_are_skipped() {
    let replace = |path: &str| FileOp::Replace {
        path: path.into(),
        content: "x".into(),
    };
    let ops = vec![
        replace("runs/a/task.info"),
        replace("runs/b/task.info"),
        FileOp::Remove {
            path: "runs/a".into(),
        },
        replace("runs/a2/task.info"),
    ];
    let kept: Vec<PathBuf> = coalesce(ops)
        .iter()
        .map(|op| op.path().to_path_buf())
        .collect();
    assert_eq!(
        kept,
        vec![
            PathBuf::from("runs/b/task.info"),
            PathBuf::from("runs/a"),
            PathBuf::from("runs/a2/task.info")
        ]
    );
}
