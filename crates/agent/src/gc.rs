//! Sandbox garbage collection: `--gc_delay` and `--gc_disk_headroom` (Mesos semantics).
//!
//! What: the sandbox of a completed executor (here: a command task's run) is deleted once it has
//! been completed for `max_age`, where, as in Mesos,
//! `max_age = gc_delay × max(0, 1 − gc_disk_headroom − disk usage)` and disk usage (0..1) is that
//! of the file system holding the work directory, re-read every `DISK_WATCH_INTERVAL`. Until then
//! `/files/*` serves it as before; afterwards its paths answer 404 (the sandbox no longer exists).
//!
//! Persistence: the completion time is the sandbox directory's mtime, set when the task's process
//! ends (`mark_completed`). Nothing writes into a sandbox after its task ended, so at start
//! `recover` rebuilds the whole schedule from the directories on disk and a restart loses nothing.
//! A sandbox whose task still runs (a task recovered by a launcher that outlives the agent) is
//! never deleted: the caller's `is_live` check runs right before each deletion, and such a
//! sandbox is taken off the schedule until it completes.
//!
//! Shape: `Schedule` is the pure part (what is due when, `now` passed in); the functions below it
//! do the file system work; `Gc` ties them together for the driver, which ticks it and runs the
//! deletions on the blocking pool.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// `--gc_delay` default (Mesos: `1weeks`).
pub const DEFAULT_GC_DELAY: &str = "1weeks";
/// `--gc_disk_headroom` default (Mesos: 0.1).
pub const DEFAULT_GC_DISK_HEADROOM: f64 = 0.1;
/// How often disk usage is re-read (Mesos' `--disk_watch_interval` default).
pub const DISK_WATCH_INTERVAL: Duration = Duration::from_secs(60);

/// The checked GC flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcPolicy {
    pub delay: Duration,
    /// Fraction of the disk to keep free, 0..=1.
    pub disk_headroom: f64,
}

impl GcPolicy {
    /// How long a completed sandbox is kept at this disk usage (0..1; unknown counts as 0).
    pub fn max_age(&self, disk_usage: Option<f64>) -> Duration {
        let usage = disk_usage
            .filter(|u| u.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        let factor = (1.0 - self.disk_headroom - usage).clamp(0.0, 1.0);
        self.delay.mul_f64(factor)
    }
}

/// Completed sandboxes and when they completed. No clock, no file system.
#[derive(Debug, Default)]
pub struct Schedule {
    by_path: HashMap<PathBuf, SystemTime>,
    by_time: BTreeSet<(SystemTime, PathBuf)>,
}

impl Schedule {
    /// Schedules `path` as completed at `completed_at` (a later call for the same path replaces
    /// the earlier one).
    pub fn schedule(&mut self, path: PathBuf, completed_at: SystemTime) {
        if let Some(old) = self.by_path.insert(path.clone(), completed_at) {
            self.by_time.remove(&(old, path.clone()));
        }
        self.by_time.insert((completed_at, path));
    }

    #[cfg(test)]
    pub fn unschedule(&mut self, path: &Path) -> bool {
        match self.by_path.remove(path) {
            Some(at) => {
                self.by_time.remove(&(at, path.to_path_buf()));
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    pub fn contains(&self, path: &Path) -> bool {
        self.by_path.contains_key(path)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// When the oldest entry becomes due at `max_age`.
    pub fn next_due(&self, max_age: Duration) -> Option<SystemTime> {
        self.by_time.first().map(|(at, _)| *at + max_age)
    }

    /// Whether anything is due at `now`.
    pub fn any_due(&self, now: SystemTime, max_age: Duration) -> bool {
        self.next_due(max_age).is_some_and(|due| due <= now)
    }

    /// Removes and returns every path completed at least `max_age` before `now`, oldest first.
    /// A completion time in the future (clock stepped back) waits until the clock passes it.
    pub fn take_due(&mut self, now: SystemTime, max_age: Duration) -> Vec<PathBuf> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at + max_age > now {
                break;
            }
            if let Some((_, path)) = self.by_time.pop_first() {
                self.by_path.remove(&path);
                due.push(path);
            }
        }
        due
    }
}

// ---- file system work ----

/// Records the completion time on disk: the sandbox directory's mtime becomes `at`.
pub fn mark_completed(sandbox: &Path, at: SystemTime) -> io::Result<()> {
    let dir = std::fs::File::open(sandbox)?;
    dir.set_times(std::fs::FileTimes::new().set_modified(at))
}

/// Every run directory under `<work_dir>/slaves/*/frameworks/*/executors/*/runs/` (not the
/// `latest` links) with its mtime. Unreadable parts are skipped.
pub fn scan_sandboxes(work_dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    fn dirs(path: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }
    let mut found = Vec::new();
    for agent in dirs(&work_dir.join("slaves")) {
        for framework in dirs(&agent.join("frameworks")) {
            for executor in dirs(&framework.join("executors")) {
                for run in dirs(&executor.join("runs")) {
                    if run.file_name().is_some_and(|n| n == crate::sandbox::LATEST) {
                        continue;
                    }
                    if let Ok(modified) = std::fs::symlink_metadata(&run).and_then(|m| m.modified())
                    {
                        found.push((run, modified));
                    }
                }
            }
        }
    }
    found
}

/// Deletes one sandbox, the `runs/latest` link when it pointed at it, and the directories above
/// it up to the framework's that are left empty. Refuses any path not strictly inside
/// `<work_dir>/slaves`.
pub fn remove_sandbox(work_dir: &Path, sandbox: &Path) -> io::Result<()> {
    let slaves = work_dir.join("slaves");
    let inside = sandbox.starts_with(&slaves)
        && sandbox != slaves
        && sandbox
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::RootDir));
    if !inside {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a sandbox under {}",
                sandbox.display(),
                slaves.display()
            ),
        ));
    }
    match std::fs::remove_dir_all(sandbox) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let (Some(runs), Some(name)) = (sandbox.parent(), sandbox.file_name()) else {
        return Ok(());
    };
    let latest = runs.join(crate::sandbox::LATEST);
    if std::fs::read_link(&latest).is_ok_and(|target| target.as_os_str() == name) {
        let _ = std::fs::remove_file(&latest);
    }
    // runs → <executor> → executors → <framework>: each only if empty (rmdir refuses otherwise,
    // so a run created meanwhile is never touched).
    let mut dir = runs.to_path_buf();
    for _ in 0..4 {
        if std::fs::remove_dir(&dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => break,
        }
    }
    Ok(())
}

/// Used fraction (0..1) of the file system holding `path`.
pub fn disk_usage(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; `c` is a valid NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 || stat.f_blocks == 0 {
        return None;
    }
    let blocks = stat.f_blocks as f64;
    Some(((blocks - stat.f_bfree as f64) / blocks).clamp(0.0, 1.0))
}

// ---- the driver's handle ----

/// The schedule plus what the driver needs around it (disk usage, the work directory).
#[derive(Debug)]
pub struct Gc {
    policy: GcPolicy,
    work_dir: PathBuf,
    schedule: Schedule,
    disk_usage: Option<f64>,
    disk_checked: Option<Instant>,
}

impl Gc {
    pub fn new(work_dir: PathBuf, policy: GcPolicy) -> Gc {
        Gc {
            policy,
            work_dir,
            schedule: Schedule::default(),
            disk_usage: None,
            disk_checked: None,
        }
    }

    #[cfg(test)]
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Schedules what `scan_sandboxes` found (at start, before the first tick). `known` holds
    /// completion times the agent knows better than the directory does (a task whose exit was
    /// only learned during recovery: its sandbox was never marked); the later time wins.
    pub fn recover(
        &mut self,
        found: Vec<(PathBuf, SystemTime)>,
        known: &HashMap<PathBuf, SystemTime>,
    ) -> usize {
        let count = found.len();
        for (path, mtime) in found {
            let completed_at = known.get(&path).map_or(mtime, |k| (*k).max(mtime));
            self.schedule.schedule(path, completed_at);
        }
        count
    }

    /// A task's process ended at `at`: its sandbox is scheduled (the caller persists the time with
    /// `mark_completed`).
    pub fn completed(&mut self, sandbox: PathBuf, at: SystemTime) {
        self.schedule.schedule(sandbox, at);
    }

    /// The current keep time (re-reads disk usage every `DISK_WATCH_INTERVAL` of `mono`).
    pub fn max_age(&mut self, mono: Instant) -> Duration {
        let stale = self
            .disk_checked
            .is_none_or(|at| mono.saturating_duration_since(at) >= DISK_WATCH_INTERVAL);
        if stale {
            self.disk_checked = Some(mono);
            if self.policy.disk_headroom > 0.0 {
                self.disk_usage = disk_usage(&self.work_dir);
            }
        }
        self.policy.max_age(self.disk_usage)
    }

    /// Sandboxes to delete now. `is_live` (called only when something is due) says whether a
    /// path belongs to a task whose process runs: those are dropped from the schedule instead.
    pub fn due<L: FnOnce() -> std::collections::HashSet<PathBuf>>(
        &mut self,
        now: SystemTime,
        mono: Instant,
        live: L,
    ) -> Vec<PathBuf> {
        let max_age = self.max_age(mono);
        if !self.schedule.any_due(now, max_age) {
            return Vec::new();
        }
        let live = live();
        self.schedule
            .take_due(now, max_age)
            .into_iter()
            .filter(|p| !live.contains(p))
            .collect()
    }
}

// ---- what the driver calls (each call site in driver.rs is marked `// gc:`) ----

impl Gc {
    /// At start, after recovery: every sandbox on disk joins the schedule, as of its directory's
    /// mtime or, for a task the core knows as ended, its terminal update's time if later (the scan
    /// runs on the blocking pool). Sandboxes of tasks that turn out to run are skipped at deletion.
    /// `known`: `known_completions` of the recovered core.
    pub async fn start(
        work_dir: PathBuf,
        policy: GcPolicy,
        known: HashMap<PathBuf, SystemTime>,
    ) -> Gc {
        let mut gc = Gc::new(work_dir.clone(), policy);
        let found = tokio::task::spawn_blocking(move || scan_sandboxes(&work_dir))
            .await
            .unwrap_or_default();
        let count = gc.recover(found, &known);
        tracing::info!(sandboxes = count, gc_delay = ?policy.delay, "sandbox GC scheduled what is on disk");
        gc
    }

    /// When each ended task the core knows ended: its terminal update's timestamp.
    pub fn known_completions(core: &crate::core::Core) -> HashMap<PathBuf, SystemTime> {
        core.runs()
            .filter(|t| t.state.is_terminal())
            .filter_map(|t| {
                let ended = t
                    .statuses
                    .iter()
                    .rev()
                    .find(|s| s.state.is_terminal())?
                    .timestamp?;
                let ended = Duration::try_from_secs_f64(ended).ok()?;
                Some((t.sandbox.clone(), SystemTime::UNIX_EPOCH + ended))
            })
            .collect()
    }

    /// A task's process ended (or never started): its sandbox's keep time starts now, and the
    /// time is stored as the directory's mtime (on the blocking pool) so a restart keeps it.
    pub fn process_ended(&mut self, sandbox: &Path) {
        let now = SystemTime::now();
        self.completed(sandbox.to_path_buf(), now);
        let sandbox = sandbox.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = mark_completed(&sandbox, now) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(sandbox = %sandbox.display(), error = %e, "cannot record the sandbox's completion time");
                }
            }
        });
    }

    /// Deletes what is due, on the blocking pool. `core` says which sandboxes still have a process.
    pub fn tick(&mut self, core: &crate::core::Core) {
        let due = self.due(SystemTime::now(), Instant::now(), || {
            core.live_tasks()
                .filter(|t| !matches!(t.process, crate::core::Process::Exited))
                .map(|t| t.sandbox.clone())
                .collect()
        });
        if due.is_empty() {
            return;
        }
        let work_dir = self.work_dir.clone();
        tokio::task::spawn_blocking(move || {
            for sandbox in due {
                match remove_sandbox(&work_dir, &sandbox) {
                    Ok(()) => {
                        tracing::info!(sandbox = %sandbox.display(), "sandbox garbage collected")
                    }
                    Err(e) => {
                        tracing::warn!(sandbox = %sandbox.display(), error = %e, "cannot delete the sandbox")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn max_age_shrinks_with_disk_usage_like_mesos() {
        let policy = GcPolicy {
            delay: Duration::from_secs(1000),
            disk_headroom: 0.1,
        };
        assert_eq!(policy.max_age(None), Duration::from_secs(900));
        assert_eq!(policy.max_age(Some(0.4)), Duration::from_secs(500));
        assert_eq!(policy.max_age(Some(0.95)), Duration::ZERO);
        let no_headroom = GcPolicy {
            delay: Duration::from_secs(60),
            disk_headroom: 0.0,
        };
        assert_eq!(no_headroom.max_age(Some(0.0)), Duration::from_secs(60));
        assert_eq!(no_headroom.max_age(Some(f64::NAN)), Duration::from_secs(60));
    }

    #[test]
    fn schedule_hands_out_due_paths_oldest_first() {
        let mut s = Schedule::default();
        let age = Duration::from_secs(10);
        s.schedule("/w/b".into(), at(105));
        s.schedule("/w/a".into(), at(100));
        s.schedule("/w/c".into(), at(200));
        assert_eq!(s.next_due(age), Some(at(110)));
        assert!(!s.any_due(at(109), age));
        assert!(s.take_due(at(109), age).is_empty());
        assert_eq!(
            s.take_due(at(115), age),
            vec![PathBuf::from("/w/a"), PathBuf::from("/w/b")]
        );
        assert_eq!(s.len(), 1);
        // Rescheduling replaces; unscheduling removes.
        s.schedule("/w/c".into(), at(300));
        assert_eq!(s.len(), 1);
        assert!(s.take_due(at(250), age).is_empty());
        assert!(s.unschedule(Path::new("/w/c")));
        assert!(!s.unschedule(Path::new("/w/c")));
        assert!(s.is_empty());
        assert_eq!(s.next_due(age), None);
    }

    #[test]
    fn live_sandboxes_are_not_handed_out() {
        let mut gc = Gc::new(
            "/w".into(),
            GcPolicy {
                delay: Duration::from_secs(10),
                disk_headroom: 0.0,
            },
        );
        let mono = Instant::now();
        // "/w/late" looks old on disk, but the agent learned of its end at 190.
        let known = HashMap::from([
            (PathBuf::from("/w/late"), at(190)),
            (PathBuf::from("/w/old"), at(50)),
        ]);
        let found = vec![
            ("/w/old".into(), at(100)),
            ("/w/running".into(), at(100)),
            ("/w/late".into(), at(100)),
        ];
        assert_eq!(gc.recover(found, &known), 3);
        gc.completed("/w/new".into(), at(200));
        let mut asked = false;
        let due = gc.due(at(150), mono, || {
            asked = true;
            std::collections::HashSet::from([PathBuf::from("/w/running")])
        });
        assert!(asked);
        assert_eq!(due, vec![PathBuf::from("/w/old")]);
        assert!(!gc.schedule().contains(Path::new("/w/running")));
        // Nothing due: the live set is not even built.
        let due = gc.due(at(150), mono, || panic!("not needed"));
        assert!(due.is_empty());
        assert_eq!(
            gc.due(at(210), mono, Default::default),
            vec![PathBuf::from("/w/late"), PathBuf::from("/w/new")]
        );
    }

    #[test]
    fn completion_survives_on_disk_and_removal_stays_inside_the_work_dir() {
        let work = std::env::temp_dir().join(format!("tepui-gc-{}", uuid::Uuid::new_v4()));
        let old = crate::sandbox::run_dir(&work, "S1", "F1", "e1", "c1");
        let new = crate::sandbox::run_dir(&work, "S1", "F1", "e2", "c2");
        let newer = crate::sandbox::run_dir(&work, "S1", "F1", "e2", "c3");
        for dir in [&old, &new, &newer] {
            // As the launcher lays a run out: the directory, its files, `runs/latest` at it.
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("stdout"), "out").unwrap();
            let latest = dir.parent().unwrap().join(crate::sandbox::LATEST);
            let _ = std::fs::remove_file(&latest);
            std::os::unix::fs::symlink(dir.file_name().unwrap(), &latest).unwrap();
        }
        mark_completed(&old, at(1_000_000)).unwrap();
        mark_completed(&new, at(2_000_000)).unwrap();
        let mut found = scan_sandboxes(&work);
        found.sort();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0], (old.clone(), at(1_000_000)));
        assert_eq!(found[1], (new.clone(), at(2_000_000)));

        // The last run of e1: its executor directory goes too, the framework's stays (e2 is there).
        remove_sandbox(&work, &old).unwrap();
        assert!(!old.exists());
        assert!(!work.join("slaves/S1/frameworks/F1/executors/e1").exists());
        assert!(work.join("slaves/S1/frameworks/F1/executors/e2").is_dir());
        // c3 is e2's latest: removing c2 keeps the link and the runs directory.
        remove_sandbox(&work, &new).unwrap();
        assert!(!new.exists());
        let latest = work.join("slaves/S1/frameworks/F1/executors/e2/runs/latest");
        assert_eq!(std::fs::read_link(&latest).unwrap(), PathBuf::from("c3"));
        remove_sandbox(&work, &newer).unwrap();
        assert!(!work.join("slaves/S1/frameworks/F1").exists());
        assert!(work.join("slaves/S1/frameworks").is_dir());
        // Removing twice is fine; paths outside the work dir are refused.
        remove_sandbox(&work, &newer).unwrap();
        for bad in [
            PathBuf::from("/etc"),
            work.join("slaves"),
            work.join("slaves/S1/../../x"),
        ] {
            assert!(remove_sandbox(&work, &bad).is_err(), "{}", bad.display());
        }
        assert!(disk_usage(&work).is_some_and(|u| (0.0..=1.0).contains(&u)));
        std::fs::remove_dir_all(&work).unwrap();
    }
}
