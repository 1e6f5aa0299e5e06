//! File-system steps of checkpointing: directories created mode 0700 (noting which parents gained
//! an entry), files replaced through a temp file and a rename, lines appended, trees removed, and
//! fsyncs run a few at a time.

use super::layout;
use std::collections::BTreeSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing ancestors (mode 0700); the parent of each one created goes into
/// `dirty`, to be fsync'd so the new entry is durable.
pub fn create_dirs(dir: &Path, dirty: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor {
        if path.is_dir() {
            break;
        }
        missing.push(path);
        cursor = path.parent();
    }
    for path in missing.into_iter().rev() {
        match DirBuilder::new().mode(DIR_MODE).create(path) {
            Ok(()) => {
                if let Some(parent) = path.parent() {
                    dirty.insert(parent.to_path_buf());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(layout::TMP_SUFFIX);
    path.with_file_name(name)
}

fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Replaces `path` atomically with `bytes` (write a temp file, rename it over). With `durable`, the
/// temp file is fsync'd before the rename and the directory after it, so the new content survives a
/// crash of the machine; without, it survives only a crash of the process.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut file = create_file(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_data()?;
    }
    drop(file);
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            fsync_dir(dir)?;
        }
    }
    Ok(())
}

/// Writes `bytes` as the content of `path` in place (no temp file: every write is in the
/// checkpoint log until synced, so a torn one is rewritten by the log's replay), creating the
/// directory first; what needs an fsync later goes into `files` and `dirty` (directories).
pub fn replace(
    path: &Path,
    bytes: &[u8],
    files: &mut BTreeSet<PathBuf>,
    dirty: &mut BTreeSet<PathBuf>,
) -> io::Result<()> {
    let mut file = match create_file(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_dirs(dir, dirty)?;
            }
            create_file(path)?
        }
        Err(e) => return Err(e),
    };
    file.write_all(bytes)?;
    if let Some(dir) = path.parent() {
        dirty.insert(dir.to_path_buf());
    }
    files.insert(path.to_path_buf());
    Ok(())
}

/// Cuts what follows the last newline (a record torn by a crash); returns the length kept.
pub fn cut_torn_tail(path: &Path, bytes: &[u8]) -> io::Result<usize> {
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(whole as u64)?;
        file.sync_data()?;
    }
    Ok(whole)
}

/// Appends `line` (and a newline) to `path`, creating it (and its directory) if needed.
pub fn append_line(
    path: &Path,
    line: &[u8],
    files: &mut BTreeSet<PathBuf>,
    dirty: &mut BTreeSet<PathBuf>,
) -> io::Result<()> {
    let open = |create_new: bool| {
        let mut options = OpenOptions::new();
        options.append(true).mode(FILE_MODE);
        if create_new {
            options.create_new(true);
        }
        options.open(path)
    };
    let mut file = match open(false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_dirs(dir, dirty)?;
                dirty.insert(dir.to_path_buf());
            }
            open(true)?
        }
        Err(e) => return Err(e),
    };
    let mut record = Vec::with_capacity(line.len() + 1);
    record.extend_from_slice(line);
    record.push(b'\n');
    file.write_all(&record)?;
    files.insert(path.to_path_buf());
    Ok(())
}

/// Removes the tree at `dir` (gone already is fine); nothing under it needs syncing any more.
pub fn remove_tree(
    dir: &Path,
    files: &mut BTreeSet<PathBuf>,
    dirty: &mut BTreeSet<PathBuf>,
) -> io::Result<()> {
    forget_under(files, dir);
    forget_under(dirty, dir);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes `dir` and every path under it from `set`. Paths order component by component, so a
/// subtree is one contiguous range: this costs its size, not the set's.
fn forget_under(set: &mut BTreeSet<PathBuf>, dir: &Path) {
    let doomed: Vec<PathBuf> = set
        .range(dir.to_path_buf()..)
        .take_while(|p| p.starts_with(dir))
        .cloned()
        .collect();
    for path in doomed {
        set.remove(&path);
    }
}

/// Points the symlink `path` at `target`, replacing it atomically.
pub fn link(path: &Path, target: &str, dirty: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_dirs(dir, dirty)?;
        dirty.insert(dir.to_path_buf());
    }
    let tmp = tmp_path(path);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, path)
}

/// Threads that fsync at once. Concurrent fsyncs share journal commits and device flushes (ext4 and
/// xfs group them), so many files cost about a couple of flushes rather than one each.
const SYNC_THREADS: usize = 8;
/// Below this many paths the calling thread syncs them.
const SYNC_PARALLEL_MIN: usize = 4;

/// Runs `sync` over `items` on up to `SYNC_THREADS` threads; the errors.
pub fn in_parallel<T: Sync>(
    items: &[T],
    sync: impl Fn(&T) -> Result<(), String> + Sync,
) -> Vec<String> {
    if items.len() < SYNC_PARALLEL_MIN {
        return items.iter().filter_map(|item| sync(item).err()).collect();
    }
    let threads = SYNC_THREADS.min(items.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sync = &sync;
                scope.spawn(move || {
                    items
                        .iter()
                        .skip(t)
                        .step_by(threads)
                        .filter_map(|item| sync(item).err())
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a checkpoint sync thread panicked".to_string()])
            })
            .collect()
    })
}

/// Fsyncs files then directories (those since removed are skipped); the errors.
pub fn sync_paths(files: &BTreeSet<PathBuf>, dirs: &BTreeSet<PathBuf>) -> Vec<String> {
    let sync = |path: &PathBuf| match File::open(path).and_then(|f| f.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("fsync {}: {e}", path.display())),
    };
    let files: Vec<PathBuf> = files.iter().cloned().collect();
    let dirs: Vec<PathBuf> = dirs.iter().cloned().collect();
    let mut errors = in_parallel(&files, sync);
    errors.extend(in_parallel(&dirs, sync));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_is_forgotten_and_only_it() {
        let mut set: BTreeSet<PathBuf> = [
            "a/b", "a/b/x", "a/b/x/y", "a/b/z", "a/b-c", "a/ba", "a/a", "b",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        forget_under(&mut set, Path::new("a/b"));
        let left: Vec<&str> = set.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(left, vec!["a/a", "a/b-c", "a/ba", "b"]);
    }
}
