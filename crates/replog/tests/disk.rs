//! `DiskStorage`: durability across reopen, torn-tail repair, corruption detection, format
//! versioning and crash-safe compaction. Every test compares against `MemoryStorage` fed the same
//! operations (the reference semantics of the `Storage` trait).

use replog::disk::{self, DiskOptions, COMPACT_FILE, LOG_FILE};
use replog::{
    Action, DiskStorage, MemoryStorage, Metadata, ReplicaStatus, State, Storage, StorageError,
    Value,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const HEADER_LEN: usize = 24;

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("replog-disk-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
    /// The storage directory (`<work_dir>/replicated_log`), not created yet.
    fn log_dir(&self) -> PathBuf {
        self.0.join("replicated_log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn action(position: u64, promised: u64, value: Option<Value>) -> Action {
    let performed = value.as_ref().map(|_| promised);
    Action {
        position,
        promised,
        performed,
        learned: value.is_some(),
        value,
    }
}

fn append(position: u64, promised: u64, bytes: &[u8]) -> Action {
    action(
        position,
        promised,
        Some(Value::Append {
            bytes: bytes.to_vec(),
        }),
    )
}

#[derive(Clone)]
enum Op {
    Meta(Metadata),
    Act(Action),
    Trunc(u64),
}

fn apply(storage: &mut dyn Storage, op: &Op) {
    match op {
        Op::Meta(m) => storage.persist_metadata(m),
        Op::Act(a) => storage.persist_action(a),
        Op::Trunc(to) => storage.truncate(*to),
    }
    .expect("persist");
}

fn model(ops: &[Op]) -> State {
    let mut memory = MemoryStorage::default();
    ops.iter().for_each(|op| apply(&mut memory, op));
    memory.state
}

/// A mix of every record kind, overwrites and a truncation; the last op is a plain append.
fn sample_ops() -> Vec<Op> {
    vec![
        Op::Meta(Metadata {
            status: ReplicaStatus::Starting,
            promised: 0,
        }),
        Op::Meta(Metadata {
            status: ReplicaStatus::Voting,
            promised: 3,
        }),
        Op::Act(action(0, 3, None)),
        Op::Act(append(0, 3, b"zero")),
        Op::Act(append(1, 3, b"one")),
        Op::Act(action(2, 3, Some(Value::Nop { tombstone: true }))),
        Op::Act(action(3, 3, Some(Value::Truncate { to: 1 }))),
        Op::Trunc(1),
        Op::Act(append(0, 4, b"below begin: ignored")),
        Op::Act(append(4, 4, b"four")),
        Op::Act(append(5, 4, b"five, the last record")),
    ]
}

/// Opens a storage in `dir`, applies `ops`, and returns the file length before the last op.
fn write_ops(dir: &Path, ops: &[Op]) -> u64 {
    let mut storage = DiskStorage::open(dir).expect("open");
    let (last, init) = ops.split_last().expect("ops");
    init.iter().for_each(|op| apply(&mut storage, op));
    let before = storage.file_len();
    apply(&mut storage, last);
    before
}

fn restore(dir: &Path) -> Result<(State, Option<u64>), StorageError> {
    let mut storage = DiskStorage::open(dir)?;
    let repaired = storage.repaired_tail().map(|r| r.offset);
    Ok((storage.restore()?, repaired))
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn disk_crc32c_matches_the_standard_check_value() {
    assert_eq!(disk::crc32c(0, b"123456789"), 0xE306_9283);
    assert_eq!(
        disk::crc32c(disk::crc32c(0, b"1234"), b"56789"),
        0xE306_9283
    );
}

#[test]
fn disk_empty_dir_restores_default_state() {
    let tmp = TempDir::new("empty");
    let dir = tmp.log_dir();
    let (state, repaired) = restore(&dir).expect("open");
    assert_eq!(state, State::default());
    assert_eq!(state.metadata.status, ReplicaStatus::Empty);
    assert_eq!(repaired, None);
    assert!(log_path(&dir).is_file(), "the log file is created at open");
    assert_eq!(restore(&dir).expect("reopen").0, State::default());
}

#[test]
fn disk_round_trip_across_reopen() {
    let tmp = TempDir::new("roundtrip");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    {
        let mut storage = DiskStorage::open(&dir).expect("open");
        ops.iter().for_each(|op| apply(&mut storage, op));
        assert_eq!(storage.restore().expect("restore"), model(&ops));
    }
    let (state, repaired) = restore(&dir).expect("reopen");
    assert_eq!(state, model(&ops));
    assert_eq!(state.begin, 1);
    assert!(!state.actions.contains_key(&0));
    assert_eq!(repaired, None);

    // Appends continue after a reopen, and a no-op truncate writes nothing.
    let more = [
        Op::Act(append(6, 5, b"six")),
        Op::Trunc(4),
        Op::Meta(Metadata {
            status: ReplicaStatus::Voting,
            promised: 9,
        }),
    ];
    let mut storage = DiskStorage::open(&dir).expect("open");
    more.iter().for_each(|op| apply(&mut storage, op));
    let len = storage.file_len();
    storage.truncate(2).expect("no-op truncate");
    assert_eq!(storage.file_len(), len);
    drop(storage);
    let all: Vec<Op> = ops.iter().chain(more.iter()).cloned().collect();
    assert_eq!(restore(&dir).expect("reopen").0, model(&all));
}

#[test]
fn disk_torn_tail_at_every_offset_is_repaired() {
    let tmp = TempDir::new("torn");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    let good = write_ops(&dir, &ops) as usize;
    let full = read(&log_path(&dir));
    let before_last = model(&ops[..ops.len() - 1]);
    assert!(full.len() > good + 17);
    for cut in good..full.len() {
        write(&log_path(&dir), &full[..cut]);
        let (state, repaired) = restore(&dir).expect("a torn tail is not an error");
        assert_eq!(state, before_last, "cut at {cut}");
        assert_eq!(
            repaired,
            (cut > good).then_some(good as u64),
            "cut at {cut}"
        );
        assert_eq!(
            read(&log_path(&dir)),
            full[..good],
            "file repaired to the last good record (cut {cut})"
        );
    }
    // After a repair, new writes land after the last good record and survive.
    write(&log_path(&dir), &full[..full.len() - 3]);
    let mut storage = DiskStorage::open(&dir).expect("open");
    let new = append(5, 4, b"rewritten");
    storage.persist_action(&new).expect("persist");
    drop(storage);
    let (state, repaired) = restore(&dir).expect("reopen");
    assert_eq!(repaired, None);
    assert_eq!(state.actions.get(&5), Some(&new));
}

#[test]
fn disk_garbage_after_last_record_is_repaired() {
    let tmp = TempDir::new("garbage");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    write_ops(&dir, &ops);
    let full = read(&log_path(&dir));
    let garbage: [&[u8]; 3] = [&[0u8; 4096], b"\xff\xfeRL not a record", &[0xA5; 3]];
    for tail in garbage {
        write(&log_path(&dir), &[&full[..], tail].concat());
        let (state, repaired) = restore(&dir).expect("garbage tail is not an error");
        assert_eq!(state, model(&ops));
        assert_eq!(repaired, Some(full.len() as u64));
        assert_eq!(read(&log_path(&dir)), full);
    }
}

#[test]
fn disk_flipped_byte_in_last_record_is_repaired() {
    let tmp = TempDir::new("fliplast");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    let good = write_ops(&dir, &ops) as usize;
    let full = read(&log_path(&dir));
    let before_last = model(&ops[..ops.len() - 1]);
    for at in good..full.len() {
        let mut bytes = full.clone();
        bytes[at] ^= 0x5A;
        write(&log_path(&dir), &bytes);
        let (state, repaired) = restore(&dir).expect("a bad last record is not an error");
        assert_eq!(state, before_last, "flip at {at}");
        assert_eq!(repaired, Some(good as u64), "flip at {at}");
        assert_eq!(read(&log_path(&dir)), full[..good]);
    }
}

#[test]
fn disk_flipped_byte_in_middle_record_is_corrupt() {
    let tmp = TempDir::new("flipmid");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    // Record boundaries: the file length after each op.
    let mut ends = vec![];
    {
        let mut storage = DiskStorage::open(&dir).expect("open");
        ends.push(storage.file_len());
        for op in &ops {
            apply(&mut storage, op);
            ends.push(storage.file_len());
        }
    }
    let full = read(&log_path(&dir));
    let (start, end) = (ends[4] as usize, ends[5] as usize); // the append at position 1
    for at in start..end {
        let mut bytes = full.clone();
        bytes[at] ^= 0x01;
        write(&log_path(&dir), &bytes);
        match restore(&dir) {
            Err(StorageError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(offset, start as u64, "flip at {at}: {reason}");
                assert!(path.ends_with(LOG_FILE), "{path}");
            }
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            read(&log_path(&dir)),
            bytes,
            "a corrupt file is left untouched"
        );
    }
    // A damaged file header is corrupt too, never "empty".
    let mut bytes = full.clone();
    bytes[14] ^= 0x01;
    write(&log_path(&dir), &bytes);
    assert!(matches!(
        restore(&dir),
        Err(StorageError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn disk_newer_format_version_is_unsupported() {
    let tmp = TempDir::new("version");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    let good = write_ops(&dir, &ops) as usize;
    let full = read(&log_path(&dir));
    let salt = u64::from_le_bytes(full[12..20].try_into().expect("salt"));

    // The last record, re-stamped with a newer version and a valid checksum.
    let mut bytes = full.clone();
    bytes[good + 12..good + 16].copy_from_slice(&(replog::FORMAT_VERSION + 1).to_le_bytes());
    let crc = disk::crc32c(disk::crc32c(0, &salt.to_le_bytes()), &bytes[good + 8..]);
    bytes[good + 4..good + 8].copy_from_slice(&crc.to_le_bytes());
    write(&log_path(&dir), &bytes);
    match restore(&dir) {
        Err(
            e @ StorageError::UnsupportedFormat {
                found, supported, ..
            },
        ) => {
            assert_eq!(
                (found, supported),
                (replog::FORMAT_VERSION + 1, replog::FORMAT_VERSION)
            );
            assert!(e.to_string().contains("this release reads"), "{e}");
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    assert_eq!(read(&log_path(&dir)), bytes, "never repaired away");

    // A newer file header.
    let mut bytes = full.clone();
    bytes[8..12].copy_from_slice(&(replog::FORMAT_VERSION + 1).to_le_bytes());
    write(&log_path(&dir), &bytes);
    assert!(matches!(
        restore(&dir),
        Err(StorageError::UnsupportedFormat { .. })
    ));
}

#[test]
fn disk_compaction_preserves_state() {
    let tmp = TempDir::new("compact");
    let dir = tmp.log_dir();
    let options = DiskOptions {
        compact_at_bytes: 8 << 10,
        compact_after_truncated: 1 << 20,
    };
    let mut storage = DiskStorage::open_with(&dir, options).expect("open");
    let mut ops = vec![];
    let mut max_len = 0;
    for round in 0..400u64 {
        // Overwrite a small window of positions over and over: lots of dead records.
        let op = match round % 7 {
            0 => Op::Meta(Metadata {
                status: ReplicaStatus::Voting,
                promised: round,
            }),
            6 if round > 100 => Op::Trunc(round / 10),
            _ => Op::Act(append(round / 10 + round % 5, round, &[round as u8; 100])),
        };
        apply(&mut storage, &op);
        ops.push(op);
        max_len = max_len.max(storage.file_len());
    }
    assert!(
        max_len < 2 * (8 << 10) + 200,
        "compaction bounds the file: {max_len}"
    );
    assert_eq!(storage.restore().expect("restore"), model(&ops));
    drop(storage);
    assert_eq!(restore(&dir).expect("reopen"), (model(&ops), None));

    // A truncate that drops many positions compacts at once.
    let options = DiskOptions {
        compact_at_bytes: u64::MAX,
        compact_after_truncated: 10,
    };
    let mut storage = DiskStorage::open_with(&dir, options).expect("open");
    let start = storage.restore().expect("restore").begin + 100;
    for p in start..start + 30 {
        let op = Op::Act(append(p, 1000, &[7; 200]));
        apply(&mut storage, &op);
        ops.push(op);
    }
    let len = storage.file_len();
    apply(&mut storage, &Op::Trunc(start + 25));
    ops.push(Op::Trunc(start + 25));
    assert!(
        storage.file_len() < len / 2,
        "{} vs {len}",
        storage.file_len()
    );
    drop(storage);
    assert_eq!(restore(&dir).expect("reopen").0, model(&ops));
}

#[test]
fn disk_crash_mid_compaction_restores() {
    let tmp = TempDir::new("crashcompact");
    let dir = tmp.log_dir();
    let ops = sample_ops();
    write_ops(&dir, &ops);
    let expected = model(&ops);
    let old = read(&log_path(&dir));
    let mut storage = DiskStorage::open(&dir).expect("open");
    storage.compact().expect("compact");
    drop(storage);
    let new = read(&log_path(&dir));
    assert!(new.len() < old.len(), "the snapshot drops dead records");
    assert!(!dir.join(COMPACT_FILE).exists());

    // Crash before the rename: the old log plus any prefix of the snapshot under the temp name.
    let mut cuts: Vec<usize> = (0..new.len()).step_by(7).collect();
    cuts.push(new.len());
    for cut in cuts {
        write(&log_path(&dir), &old);
        write(&dir.join(COMPACT_FILE), &new[..cut]);
        let (state, repaired) = restore(&dir).expect("restore");
        assert_eq!(
            (state, repaired),
            (expected.clone(), None),
            "temp cut at {cut}"
        );
        assert!(
            !dir.join(COMPACT_FILE).exists(),
            "leftover temp file removed"
        );
    }
    // Crash after the rename (before or after the directory fsync): only the snapshot.
    write(&log_path(&dir), &new);
    assert_eq!(restore(&dir).expect("restore"), (expected.clone(), None));

    // Records of the replaced file showing through after the snapshot (stale blocks) are another
    // file's (another salt): a garbage tail, never replayed.
    write(&log_path(&dir), &[&new[..], &old[HEADER_LEN..]].concat());
    assert_eq!(
        restore(&dir).expect("restore"),
        (expected.clone(), Some(new.len() as u64))
    );
    assert_eq!(read(&log_path(&dir)), new);
}

#[test]
fn disk_measure_fsync_cleans_up() {
    let tmp = TempDir::new("fsync");
    std::fs::create_dir_all(&tmp.0).expect("mkdir");
    let samples = disk::measure_fsync(&tmp.0, 5, 4096);
    assert_eq!(samples.len(), 5);
    assert_eq!(
        std::fs::read_dir(&tmp.0).expect("ls").count(),
        0,
        "scratch file removed"
    );
}
