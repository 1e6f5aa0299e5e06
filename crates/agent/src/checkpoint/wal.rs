//! The checkpoint log: what makes a batch of checkpoints durable with one fdatasync.
//!
//! Every commit applies its file operations (`FileOp`: replace a file, append a line, remove a
//! tree, point a link) to the checkpoint files right away, without syncing them, and appends the
//! same operations to the log segment `meta/checkpoint.<n>.wal`, then fdatasyncs that one file.
//! The files themselves are synced later, in the background, when a segment fills up
//! (`SEGMENT_BYTES_MAX`): the writer moves on to a new segment, syncs every file and directory the
//! old one touched, and deletes it.
//!
//! A process crash loses nothing (the files were written before anything acted on them). A crash
//! of the machine may lose unsynced file content; at the next start `replay` re-applies every
//! logged operation in order (idempotently: a line already in its file is not appended twice),
//! syncs what it touched and deletes the segments, so the files are whole before anyone reads them.
//! A torn last line of a segment (the machine died mid-append) is a batch that never committed:
//! nothing acted on it, and it is ignored.
//!
//! Why segments are written full of zeros when created: an append then overwrites blocks that
//! are already allocated and written, so its fdatasync flushes data only. An append that grows a
//! file changes metadata, and on ext4 that fdatasync commits the journal, which waits for every
//! other process's dirty data in it: under a concurrent build, 60-120 ms instead of well under one.
//! The log's content ends at its first zero byte.
//!
//! Paths are relative to `meta`; replay refuses any other (absolute, `..`).

use super::files;
use super::records::{self, CHECKPOINT_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Size of a segment, written with zeros when created.
pub const SEGMENT_BYTES: u64 = 4 << 20;
const SEGMENT_PREFIX: &str = "checkpoint.";
const SEGMENT_SUFFIX: &str = ".wal";

/// One change to the checkpoint files; paths relative to `meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileOp {
    Replace { path: PathBuf, content: String },
    Append { path: PathBuf, line: String },
    Remove { path: PathBuf },
    Link { path: PathBuf, target: String },
}

#[derive(Serialize, Deserialize)]
struct WalLine {
    version: u32,
    #[serde(flatten)]
    op: FileOp,
}

/// What needs an fsync before a segment may go.
#[derive(Debug, Default)]
pub struct Dirty {
    pub files: BTreeSet<PathBuf>,
    pub dirs: BTreeSet<PathBuf>,
}

fn is_relative_inside(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

impl FileOp {
    pub fn path(&self) -> &Path {
        match self {
            FileOp::Replace { path, .. }
            | FileOp::Append { path, .. }
            | FileOp::Remove { path }
            | FileOp::Link { path, .. } => path,
        }
    }

    /// Applies the op under `meta` without syncing; what must be synced goes into `dirty`. With
    /// `replaying`, a line already in its file is not appended again.
    pub fn apply(&self, meta: &Path, dirty: &mut Dirty, replaying: bool) -> io::Result<()> {
        if !is_relative_inside(self.path()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a path inside meta", self.path().display()),
            ));
        }
        let path = meta.join(self.path());
        match self {
            FileOp::Replace { content, .. } => {
                files::replace(&path, content.as_bytes(), &mut dirty.files, &mut dirty.dirs)
            }
            FileOp::Append { line, .. } => {
                if replaying {
                    match std::fs::read(&path) {
                        Ok(bytes) => {
                            let whole = files::cut_torn_tail(&path, &bytes)?;
                            if bytes[..whole]
                                .split(|b| *b == b'\n')
                                .any(|l| l == line.as_bytes())
                            {
                                return Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                files::append_line(&path, line.as_bytes(), &mut dirty.files, &mut dirty.dirs)
            }
            FileOp::Remove { .. } => files::remove_tree(&path, &mut dirty.files, &mut dirty.dirs),
            FileOp::Link { target, .. } => files::link(&path, target, &mut dirty.dirs),
        }
    }
}

fn segment_name(sequence: u64) -> String {
    format!("{SEGMENT_PREFIX}{sequence:010}{SEGMENT_SUFFIX}")
}

/// The segments in `meta`, oldest first.
fn segments(meta: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(meta)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let sequence = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(sequence) = sequence {
            found.push((sequence, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The segment being appended to.
pub struct Segment {
    path: PathBuf,
    file: File,
    /// Where the next append goes (the log's end).
    len: u64,
    capacity: u64,
}

/// The lines logging `ops`.
pub fn encode(ops: &[FileOp]) -> Vec<u8> {
    let mut buffer = Vec::new();
    for op in ops {
        let line = WalLine {
            version: CHECKPOINT_VERSION,
            op: op.clone(),
        };
        buffer.extend_from_slice(&records::to_bytes(&line));
        buffer.push(b'\n');
    }
    buffer
}

impl Segment {
    /// Creates segment `sequence`, `capacity` bytes of zeros, durably.
    pub fn create(meta: &Path, sequence: u64, capacity: u64) -> io::Result<Segment> {
        let path = meta.join(segment_name(sequence));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let zeros = vec![0u8; 1 << 16];
        let mut written = 0;
        while written < capacity {
            let n = zeros.len().min((capacity - written) as usize);
            file.write_all(&zeros[..n])?;
            written += n as u64;
        }
        file.sync_all()?;
        files::fsync_dir(meta)?;
        Ok(Segment {
            path,
            file,
            len: 0,
            capacity,
        })
    }

    /// Whether `bytes` more fit.
    pub fn fits(&self, bytes: usize) -> bool {
        self.len + bytes as u64 <= self.capacity
    }

    /// Writes `encoded` (from `encode`) at the log's end and fdatasyncs: durable when this returns
    /// `Ok`.
    pub fn append(&mut self, encoded: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(encoded, self.len)?;
        self.file.sync_data()?;
        self.len += encoded.len() as u64;
        Ok(())
    }

    /// Deletes the segment once everything it logged is synced in place.
    pub fn delete(self, meta: &Path) -> io::Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path)?;
        files::fsync_dir(meta)
    }
}

/// Deletes every segment (durably): what they logged is forgotten.
pub fn remove_segments(meta: &Path) -> io::Result<()> {
    let found = match segments(meta) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for (_, path) in &found {
        std::fs::remove_file(path)?;
    }
    if !found.is_empty() {
        files::fsync_dir(meta)?;
    }
    Ok(())
}

/// After a start: re-applies every logged operation, syncs what they touched, deletes the
/// segments. Returns the next sequence number, how many operations were re-applied, and what
/// could not be.
pub fn replay(meta: &Path) -> (u64, usize, Vec<String>) {
    let mut errors = Vec::new();
    let found = match segments(meta) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (1, 0, errors),
        Err(e) => {
            errors.push(format!("cannot list {}: {e}", meta.display()));
            return (1, 0, errors);
        }
    };
    let next = found.last().map_or(1, |(sequence, _)| sequence + 1);
    let mut dirty = Dirty::default();
    let mut applied = 0;
    for (_, path) in &found {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", path.display()));
                continue;
            }
        };
        // The log ends at its first zero byte; a torn last line is a batch that never committed.
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        let whole = bytes[..end]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        for (number, line) in bytes[..whole].split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let op = match records::parse::<WalLine>(line) {
                Ok(line) => line.op,
                Err(e) => {
                    errors.push(format!("{} line {}: {e}", path.display(), number + 1));
                    continue;
                }
            };
            match op.apply(meta, &mut dirty, true) {
                Ok(()) => applied += 1,
                Err(e) => errors.push(format!("{} line {}: {e}", path.display(), number + 1)),
            }
        }
    }
    errors.extend(files::sync_paths(&dirty.files, &dirty.dirs));
    if errors.is_empty() {
        for (_, path) in &found {
            if let Err(e) = std::fs::remove_file(path) {
                errors.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
        if !found.is_empty() {
            if let Err(e) = files::fsync_dir(meta) {
                errors.push(format!("fsync {}: {e}", meta.display()));
            }
        }
    }
    (next, applied, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_meta() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tepui-wal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replay_restores_what_the_machine_lost_and_appends_nothing_twice() {
        let meta = temp_meta();
        let ops = vec![
            FileOp::Replace {
                path: "a/info".into(),
                content: "{\"v\":1}".into(),
            },
            FileOp::Append {
                path: "a/updates".into(),
                line: "one".into(),
            },
            FileOp::Append {
                path: "a/updates".into(),
                line: "two".into(),
            },
            FileOp::Link {
                path: "latest".into(),
                target: "a".into(),
            },
            FileOp::Replace {
                path: "gone/x".into(),
                content: "x".into(),
            },
            FileOp::Remove {
                path: "gone".into(),
            },
        ];
        let mut segment = Segment::create(&meta, 7, 1 << 16).unwrap();
        let mut dirty = Dirty::default();
        for op in &ops {
            op.apply(&meta, &mut dirty, false).unwrap();
        }
        segment.append(&encode(&ops[..2])).unwrap();
        segment.append(&encode(&ops[2..])).unwrap();
        assert_eq!(
            std::fs::metadata(meta.join(segment_name(7))).unwrap().len(),
            1 << 16,
            "appends overwrite"
        );
        // A machine crash kept the first line only, torn in the middle of the second.
        std::fs::write(meta.join("a/updates"), b"one\ntw").unwrap();
        std::fs::remove_file(meta.join("a/info")).unwrap();
        // And the log's last batch was torn: never committed, never applied.
        segment
            .append(b"{\"version\":1,\"type\":\"APPEND\",\"path\":\"a/updates\",\"li")
            .unwrap();

        let (next, applied, errors) = replay(&meta);
        assert_eq!((next, applied), (8, ops.len()));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            std::fs::read_to_string(meta.join("a/updates")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(
            std::fs::read_to_string(meta.join("a/info")).unwrap(),
            "{\"v\":1}"
        );
        assert_eq!(
            std::fs::read_link(meta.join("latest")).unwrap(),
            PathBuf::from("a")
        );
        assert!(!meta.join("gone").exists());
        assert!(
            segments(&meta).unwrap().is_empty(),
            "replayed segments are deleted"
        );
        let _ = std::fs::remove_dir_all(&meta);
    }

    #[test]
    fn paths_outside_meta_are_refused() {
        let meta = temp_meta();
        for path in ["/etc/passwd", "../x", "a/../../x", ""] {
            let op = FileOp::Remove { path: path.into() };
            assert!(
                op.apply(&meta, &mut Dirty::default(), true).is_err(),
                "{path}"
            );
        }
        let _ = std::fs::remove_dir_all(&meta);
    }
}
