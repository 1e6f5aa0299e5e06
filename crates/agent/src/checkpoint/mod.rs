//! Checkpoints under `<work_dir>/meta`: what a restarted agent needs to find its tasks again
//! (replicated-log.md section 8). `layout` says where, `records` what, `read` reads it all back.
//!
//! What: `Writer::commit` makes a batch of the core's `CheckpointOp`s durable at once: each op
//! becomes file operations (`wal::FileOp`: replace an info file, append an update record, remove a
//! completed run) logged to the checkpoint log with one fdatasync (`wal`). A background thread then
//! applies them, in order, to the files of the Mesos layout (info files through a temp file and a
//! rename) and, when a log segment fills, fsyncs what it touched and deletes the segment. At start
//! the log is replayed before anything is read (`replay_log`), so the files are complete whether
//! the process or the machine crashed. The driver performs the effects of a step only after its
//! batch committed, so nothing is sent or launched on the strength of a decision a crash could
//! undo.
//!
//! Why a log and not an fsync per file (temp, fsync, rename, fsync dir): that is seven or eight
//! fsyncs per launched task (two files, five or six new directories). Measured on the 2-core
//! CI-class disk with builds running beside it, one fsync takes 0.2-4 ms, more when it commits the
//! file system's journal: launching fell to a third of its rate. The log gives the same guarantee,
//! nothing acted upon is lost by a crash of the process or of the machine, for one fdatasync of a
//! preallocated file per batch.
//!
//! Directories are created mode 0700: `task.info` holds the task's environment, which may hold
//! secrets.

mod files;
pub mod layout;
mod read;
pub mod records;
mod wal;

pub use files::{create_dirs, sync_paths, write_atomic};
pub use read::{read, read_boot_id, Recovered};

use crate::core::CheckpointOp;
use proto::agent_protocol::AgentInfo;
use records::{
    AgentRecord, ExecutorRecord, ExecutorRunRecord, ForkedRecord, FrameworkRecord, TaskRecord,
    UpdateLine, CHECKPOINT_VERSION,
};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use wal::{Dirty, FileOp, Segment};

/// How long no batch must come before the files are brought up to date.
const QUIET: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest wait for such a lull.
const DEFER_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Work for the materializer thread, in commit order.
enum Job {
    /// Apply a committed batch to the checkpoint files.
    Apply(Vec<FileOp>),
    /// Every op of this segment is applied: sync what they touched, then delete it.
    Close(Segment),
    /// Answer once everything before is applied.
    Flush(std::sync::mpsc::Sender<()>),
}

struct WriterState {
    segment: Option<Segment>,
    next_sequence: u64,
}

/// Writes the core's checkpoints for one agent (see the module doc).
pub struct Writer {
    meta: PathBuf,
    /// This agent's description (without id) for `slave.info`.
    agent_info: AgentInfo,
    state: Mutex<WriterState>,
    materializer: Arc<Queue>,
    #[cfg_attr(not(test), allow(dead_code))]
    errors: Arc<AtomicU64>,
}

fn relative(meta: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(meta)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The materializer's queue: jobs in commit order, and a condvar rung on each (commits are batches:
/// a few per burst).
#[derive(Default)]
struct Queue {
    jobs: Mutex<QueueState>,
    rung: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// The writer is gone: finish what is queued and stop.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, job: Job) {
        let mut state = self.lock();
        state.jobs.push_back(job);
        // The materializer sleeps until rung: on the first job, and (so that it can tell a lull)
        // on every later one.
        self.rung.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.rung.notify_one();
    }
}

/// Applies committed batches to the files, and compacts closed segments, in order. Failures are
/// logged and counted in `errors`.
///
/// It waits for a lull: the log already made every batch durable, so bringing the files up to
/// date may wait while tasks are being launched (each task's files are five new inodes, and on a
/// busy ext4 allocating an inode costs more than spawning a process; on two cores that work would
/// be taken from the launches). Once work arrives it waits until no batch came for `QUIET` (at
/// most `DEFER_MAX`, and not at all when someone waits on it), then applies everything queued at
/// once, skipping what a later removal makes moot (a run that completed meanwhile is never written
/// at all).
fn materialize(meta: PathBuf, queue: Arc<Queue>, errors: Arc<AtomicU64>) {
    let mut dirty = Dirty::default();
    let report = |failures: Vec<String>| {
        for failure in &failures {
            tracing::error!(error = %failure, "checkpoint file not written");
        }
        errors.fetch_add(failures.len() as u64, Ordering::Relaxed);
    };
    loop {
        let jobs: Vec<Job> = {
            let mut state = queue.lock();
            while state.jobs.is_empty() && !state.closed {
                state = queue.rung.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.jobs.is_empty() {
                return;
            }
            // Wait for a lull: no new batch for `QUIET` (at most `DEFER_MAX` in all), unless
            // someone waits on the files.
            let urgent =
                |s: &QueueState| s.closed || s.jobs.iter().any(|j| !matches!(j, Job::Apply(_)));
            let deferred_since = std::time::Instant::now();
            loop {
                if urgent(&state) || deferred_since.elapsed() >= DEFER_MAX {
                    break;
                }
                let queued = state.jobs.len();
                let (next, waited) = queue
                    .rung
                    .wait_timeout_while(state, QUIET, |s| !urgent(s) && s.jobs.len() == queued)
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                if waited.timed_out() {
                    break;
                }
            }
            state.jobs.drain(..).collect()
        };
        let mut ops = Vec::new();
        for job in jobs {
            match job {
                Job::Apply(more) => ops.extend(more),
                other => {
                    report(apply(&meta, &mut dirty, std::mem::take(&mut ops)));
                    match other {
                        Job::Close(segment) => {
                            report(compact(&meta, segment, std::mem::take(&mut dirty)))
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                        Job::Apply(_) => {}
                    }
                }
            }
        }
        report(apply(&meta, &mut dirty, ops));
    }
}

/// Applies `ops` (less what a later removal among them undoes); the failures.
fn apply(meta: &Path, dirty: &mut Dirty, ops: Vec<FileOp>) -> Vec<String> {
    coalesce(ops)
        .iter()
        .filter_map(|op| {
            op.apply(meta, dirty, false)
                .err()
                .map(|e| format!("{}: {e}", op.path().display()))
        })
        .collect()
}

/// `ops` without those a later removal undoes (writes into a tree removed afterwards).
fn coalesce(ops: Vec<FileOp>) -> Vec<FileOp> {
    // Each removed tree, with the position of its (last) removal.
    let removed: std::collections::HashMap<PathBuf, usize> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            FileOp::Remove { path } => Some((path.clone(), i)),
            _ => None,
        })
        .collect();
    if removed.is_empty() {
        return ops;
    }
    ops.into_iter()
        .enumerate()
        .filter(|(i, op)| {
            // Moot when the op's path or one of its ancestors is removed later.
            let moot = op
                .path()
                .ancestors()
                .any(|a| removed.get(a).is_some_and(|at| at > i));
            !moot
        })
        .map(|(_, op)| op)
        .collect()
}

impl Writer {
    /// A writer appending to log segments numbered from `next_sequence` (what `replay_log`
    /// returned); failures of its background work are counted in `errors`.
    pub fn new(
        meta: PathBuf,
        agent_info: AgentInfo,
        next_sequence: u64,
        errors: Arc<AtomicU64>,
    ) -> Self {
        let materializer = Arc::new(Queue::default());
        let queue = materializer.clone();
        let thread_meta = meta.clone();
        let thread_errors = errors.clone();
        let spawned = std::thread::Builder::new()
            .name("checkpoint-files".into())
            .spawn(move || materialize(thread_meta, queue, thread_errors));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the checkpoint file writer; checkpoints live in the log only until the next start");
            errors.fetch_add(1, Ordering::Relaxed);
        }
        Writer {
            meta,
            agent_info,
            state: Mutex::new(WriterState {
                segment: None,
                next_sequence,
            }),
            materializer,
            errors,
        }
    }

    /// The file operations of one checkpoint op.
    fn file_ops(&self, op: &CheckpointOp) -> Vec<FileOp> {
        let rel = |path: PathBuf| relative(&self.meta, &path);
        match op {
            CheckpointOp::Agent { agent_id } => {
                let mut info = self.agent_info.clone();
                info.id = Some(agent_id.clone());
                let record = AgentRecord {
                    version: CHECKPOINT_VERSION,
                    info,
                };
                vec![
                    FileOp::Replace {
                        path: rel(
                            layout::agent_dir(&self.meta, &agent_id.value).join(layout::SLAVE_INFO)
                        ),
                        content: text(records::to_bytes(&record)),
                    },
                    FileOp::Link {
                        path: rel(layout::slaves_dir(&self.meta).join(layout::LATEST)),
                        target: agent_id.value.clone(),
                    },
                ]
            }
            CheckpointOp::Framework {
                agent_id,
                framework_id,
                info,
            } => {
                let record = FrameworkRecord {
                    version: CHECKPOINT_VERSION,
                    info: info.clone(),
                };
                let dir = layout::framework_dir(&self.meta, &agent_id.value, &framework_id.value);
                vec![FileOp::Replace {
                    path: rel(dir.join(layout::FRAMEWORK_INFO)),
                    content: text(records::to_bytes(&record)),
                }]
            }
            CheckpointOp::Task {
                run_dir,
                framework_id,
                task,
                container_id,
                sandbox,
            } => {
                let record = TaskRecord {
                    version: CHECKPOINT_VERSION,
                    framework_id: framework_id.clone(),
                    task: task.clone(),
                    container_id: container_id.clone(),
                    sandbox: sandbox.clone(),
                };
                vec![FileOp::Replace {
                    path: rel(run_dir.join(layout::TASK_INFO)),
                    content: text(records::to_bytes(&record)),
                }]
            }
            CheckpointOp::Update {
                run_dir, record, ..
            } => {
                let line = UpdateLine {
                    version: CHECKPOINT_VERSION,
                    record: record.clone(),
                };
                vec![FileOp::Append {
                    path: rel(run_dir.join(layout::TASK_UPDATES)),
                    line: text(records::to_bytes(&line)),
                }]
            }
            CheckpointOp::RemoveRun { run_dir } => vec![FileOp::Remove {
                path: rel(run_dir.clone()),
            }],
            CheckpointOp::Executor {
                executor_dir,
                run_dir,
                framework_id,
                info,
                container_id,
                sandbox,
            } => {
                let executor = ExecutorRecord {
                    version: CHECKPOINT_VERSION,
                    framework_id: framework_id.clone(),
                    info: info.clone(),
                };
                let run = ExecutorRunRecord {
                    version: CHECKPOINT_VERSION,
                    container_id: container_id.clone(),
                    sandbox: sandbox.clone(),
                };
                vec![
                    FileOp::Replace {
                        path: rel(executor_dir.join(layout::EXECUTOR_INFO)),
                        content: text(records::to_bytes(&executor)),
                    },
                    FileOp::Replace {
                        path: rel(run_dir.join(layout::EXECUTOR_RUN)),
                        content: text(records::to_bytes(&run)),
                    },
                ]
            }
            CheckpointOp::ExecutorForked { run_dir, forked } => {
                let record = ForkedRecord {
                    version: CHECKPOINT_VERSION,
                    pid: forked.pid,
                    start_time: forked.start_time,
                };
                vec![FileOp::Replace {
                    path: rel(run_dir.join(layout::FORKED_PID)),
                    content: text(records::to_bytes(&record)),
                }]
            }
            CheckpointOp::RemoveExecutor { executor_dir } => vec![FileOp::Remove {
                path: rel(executor_dir.clone()),
            }],
            CheckpointOp::RemoveFramework {
                agent_id,
                framework_id,
            } => vec![FileOp::Remove {
                path: rel(layout::framework_dir(
                    &self.meta,
                    &agent_id.value,
                    &framework_id.value,
                )),
            }],
        }
    }

    /// Logs every op with one fdatasync: durable when this returns without errors (returned, not
    /// yet logged). The checkpoint files are brought up to date in the background, in order.
    pub fn commit(&self, ops: &[CheckpointOp]) -> Vec<String> {
        let file_ops: Vec<FileOp> = ops.iter().flat_map(|op| self.file_ops(op)).collect();
        if file_ops.is_empty() {
            return Vec::new();
        }
        let encoded = wal::encode(&file_ops);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut errors = self.make_room(&mut state, encoded.len());
        match state
            .segment
            .as_mut()
            .map(|segment| segment.append(&encoded))
        {
            Some(Ok(())) => {
                self.materializer.push(Job::Apply(file_ops));
            }
            Some(Err(e)) => errors.push(format!("cannot append to the checkpoint log: {e}")),
            // No log: write the files themselves durably, here.
            None => {
                let mut dirty = Dirty::default();
                for op in &file_ops {
                    if let Err(e) = op.apply(&self.meta, &mut dirty, false) {
                        errors.push(format!("{}: {e}", op.path().display()));
                    }
                }
                errors.extend(files::sync_paths(&dirty.files, &dirty.dirs));
            }
        }
        errors
    }

    /// Waits until every committed batch is applied to the files.
    pub fn flush(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        self.materializer.push(Job::Flush(done));
        let _ = wait.recv();
    }

    /// Failures so far (commits report theirs too; the background work only here).
    #[cfg(test)]
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Creates `meta` if needed, durably.
    fn create_meta(&self) -> io::Result<()> {
        let mut created = std::collections::BTreeSet::new();
        files::create_dirs(&self.meta, &mut created)?;
        created.iter().try_for_each(|dir| files::fsync_dir(dir))
    }

    /// Makes sure the current segment has room for `bytes`: a full one is handed to the
    /// materializer to close (once its ops are applied: sync them in place, delete it) and a new
    /// one created.
    fn make_room(&self, state: &mut WriterState, bytes: usize) -> Vec<String> {
        let mut errors = Vec::new();
        if state.segment.as_ref().is_some_and(|s| s.fits(bytes)) {
            return errors;
        }
        if let Some(old) = state.segment.take() {
            self.materializer.push(Job::Close(old));
        }
        let capacity = wal::SEGMENT_BYTES.max(bytes as u64);
        let segment = self
            .create_meta()
            .and_then(|()| Segment::create(&self.meta, state.next_sequence, capacity));
        match segment {
            Ok(segment) => {
                state.next_sequence += 1;
                state.segment = Some(segment);
            }
            Err(e) => errors.push(format!("cannot create a checkpoint log segment: {e}")),
        }
        errors
    }
}

impl Drop for Writer {
    /// The file writer finishes what is queued, then stops.
    fn drop(&mut self) {
        self.materializer.close();
    }
}

/// Syncs what a closed segment logged, in place, then deletes it.
fn compact(meta: &Path, segment: Segment, dirty: Dirty) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut errors = files::sync_paths(&dirty.files, &dirty.dirs);
    if errors.is_empty() {
        if let Err(e) = segment.delete(meta) {
            errors.push(format!(
                "cannot delete a compacted checkpoint log segment: {e}"
            ));
        }
    }
    tracing::debug!(files = dirty.files.len(), dirs = dirty.dirs.len(), took = ?started.elapsed(), "checkpoint log compacted");
    errors
}

/// Before reading checkpoints at start: re-applies what the log holds (see `wal`); returns the
/// next segment number and what failed.
pub fn replay_log(meta: &Path) -> (u64, Vec<String>) {
    let (next, applied, errors) = wal::replay(meta);
    if applied > 0 {
        tracing::info!(operations = applied, "checkpoint log replayed");
    }
    (next, errors)
}

/// Records the host's boot id (durably), for the next start to tell a reboot from a restart.
pub fn write_boot_id(meta: &Path, boot_id: &str) -> io::Result<()> {
    files::write_atomic(&meta.join(layout::BOOT_ID), boot_id.as_bytes(), true)
}

/// Removes every agent checkpoint (`meta/slaves`), as `--recover=cleanup` and a master's SHUTDOWN
/// do: the next start registers as a new agent. The launcher's files stay.
pub fn remove_agent_state(meta: &Path) -> io::Result<()> {
    // The log first: replayed, it would bring the agent back.
    wal::remove_segments(meta)?;
    let slaves = layout::slaves_dir(meta);
    // Renamed first, so a crash halfway never leaves a partial tree that looks recoverable.
    let doomed = meta.join(format!("slaves.removing-{}", uuid::Uuid::new_v4()));
    match std::fs::rename(&slaves, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    files::fsync_dir(meta)?;
    std::fs::remove_dir_all(&doomed)
}

#[cfg(test)]
mod tests;
