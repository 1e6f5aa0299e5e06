//! A replica's state on disk: one append-only, checksummed record file under
//! `<work_dir>/replicated_log` (replicated-log.md 1, where Mesos uses LevelDB).
//!
//! Why: "Every accepted promise/write is persisted **before** replying" (replicated-log.md 1). A
//! replica that acknowledged a promise or a write and then forgot it after a crash could let two
//! values be chosen at one position, so every `persist_*` and `truncate` here returns only after the
//! record is written and `fdatasync`ed; creating or replacing the file also fsyncs the directory.
//!
//! Layout of the directory:
//! - `log`: a 24-byte file header, then records. Replaying them in order gives the state: the last
//!   metadata record wins, the last action record per position wins, a truncate record drops the
//!   positions below it (the same rules as [`MemoryStorage`], which this module uses as its mirror).
//!   The live state is also kept in memory (that mirror), so restore and compaction re-read nothing.
//! - `log.compact`: a snapshot being written; it only ever replaces `log` by an atomic rename after
//!   it was fsynced, so a leftover one is an interrupted compaction and is deleted at open.
//!
//! File header (little-endian): magic `TEPUIRLG` (8) | file format version u32 | salt u64 | CRC32C
//! of the first 20 bytes (4). The salt is random per file and seeds every record checksum, so
//! records of an older file that a crash leaves visible in reused blocks never validate here.
//!
//! Record: magic `FF FE 52 4C` (4) | CRC32C (4) of salt ‖ bytes 8.. | payload length u32 (4) |
//! format version u32 (4, [`FORMAT_VERSION`]) | kind u8 (1: metadata, 2: action, 3: truncate) |
//! payload (compact binary, see `encode_payload`).
//!
//! Reading: an invalid record (bad magic, bad checksum, short) followed by nothing valid is a torn
//! or garbage tail, i.e. a write that was never acknowledged: it is cut off (with a warning naming
//! the byte offset) and the file is fsynced. An invalid record followed by a valid one is damage to
//! acknowledged data and fails with [`StorageError::Corrupt`]; a valid record of a newer format
//! fails with [`StorageError::UnsupportedFormat`]. Nothing read from disk is trusted unchecked.
//!
//! Compaction: when the file passes `compact_at_bytes` (and twice its size after the previous
//! compaction), or after a truncate that dropped `compact_after_truncated` positions, the live
//! state is written to `log.compact`, fsynced, renamed over `log`, the directory fsynced, and
//! appends continue in the new file. A crash at any step leaves either the old or the new complete
//! file in place.
//!
//! The checksum is CRC32C (Castagnoli), table-driven and written here: ten lines instead of a
//! dependency, and at several hundred MB/s it costs far less than the fdatasync after every record.

use crate::storage::{MemoryStorage, State, Storage, StorageError};
use crate::types::{Action, Metadata, Position, ReplicaStatus, Value, FORMAT_VERSION};
use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The record file's name inside the storage directory.
pub const LOG_FILE: &str = "log";
/// The temporary name a compaction snapshot is written under before it is renamed over [`LOG_FILE`].
pub const COMPACT_FILE: &str = "log.compact";
/// Compact once the file passes this size (64 MiB) and twice its size after the last compaction.
pub const COMPACT_AT_BYTES: u64 = 64 << 20;
/// Compact after a truncate that dropped at least this many positions.
pub const COMPACT_AFTER_TRUNCATED: u64 = 4096;
/// Largest payload a record may carry (1 GiB); a larger length field is corruption.
pub const MAX_PAYLOAD: usize = 1 << 30;

const FILE_MAGIC: [u8; 8] = *b"TEPUIRLG";
const FILE_HEADER_LEN: usize = 24;
const RECORD_MAGIC: [u8; 4] = [0xFF, 0xFE, b'R', b'L'];
const RECORD_HEADER_LEN: usize = 17;
const KIND_METADATA: u8 = 1;
const KIND_ACTION: u8 = 2;
const KIND_TRUNCATE: u8 = 3;

/// When to compact; [`Default`] uses [`COMPACT_AT_BYTES`] and [`COMPACT_AFTER_TRUNCATED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    pub compact_at_bytes: u64,
    pub compact_after_truncated: u64,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            compact_at_bytes: COMPACT_AT_BYTES,
            compact_after_truncated: COMPACT_AFTER_TRUNCATED,
        }
    }
}

/// A torn or garbage tail that [`DiskStorage::open`] cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRepair {
    /// Byte offset of the first invalid record: the file's new length.
    pub offset: u64,
    /// How many bytes were cut.
    pub dropped_bytes: u64,
    pub reason: String,
}

/// [`Storage`] on a local directory; see the module docs.
#[derive(Debug)]
pub struct DiskStorage {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    salt: u64,
    /// Length of the valid data: where the next record goes.
    len: u64,
    /// Length right after the last compaction (0 when none ran since open).
    compacted_len: u64,
    mirror: MemoryStorage,
    options: DiskOptions,
    repaired: Option<TailRepair>,
    /// Set once a write or fsync failed: the page cache no longer tells what is on disk, so every
    /// later operation fails until the storage is reopened (and the file re-read).
    failed: bool,
}

/// A decoded record (`A = Action`) or one about to be written (`A = &Action`, no copy).
#[derive(Debug, Clone, PartialEq)]
enum Record<A = Action> {
    Metadata(Metadata),
    Action(A),
    Truncate(Position),
}

impl Record {
    fn borrowed(&self) -> Record<&Action> {
        match self {
            Record::Metadata(m) => Record::Metadata(*m),
            Record::Action(a) => Record::Action(a),
            Record::Truncate(to) => Record::Truncate(*to),
        }
    }
}

impl DiskStorage {
    /// Opens (creating if missing) the storage in `dir`, normally `<work_dir>/replicated_log`, reads
    /// the whole file and repairs a torn tail. [`Storage::restore`] then returns what was read.
    pub fn open(dir: &Path) -> Result<DiskStorage, StorageError> {
        DiskStorage::open_with(dir, DiskOptions::default())
    }

    pub fn open_with(dir: &Path, options: DiskOptions) -> Result<DiskStorage, StorageError> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        let tmp = dir.join(COMPACT_FILE);
        if tmp.exists() {
            // An interrupted compaction: `log` was not replaced yet, or already was (the rename
            // consumed the temp name), so this file is never the only copy of anything.
            std::fs::remove_file(&tmp).map_err(|e| io_err(&tmp, e))?;
            fsync_dir(dir)?;
        }
        let path = dir.join(LOG_FILE);
        let (file, salt, len, mirror, repaired) =
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => {
                    let (salt, len, mirror, repaired) = load(&file, &path)?;
                    (file, salt, len, mirror, repaired)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let salt = new_salt();
                    let (file, len) = write_snapshot(dir, salt, &State::default())?;
                    (file, salt, len, MemoryStorage::default(), None)
                }
                Err(e) => return Err(io_err(&path, e)),
            };
        let dir = dir.to_path_buf();
        let compacted_len = 0;
        Ok(DiskStorage {
            dir,
            path,
            file,
            salt,
            len,
            compacted_len,
            mirror,
            options,
            repaired,
            failed: false,
        })
    }

    /// The tail cut off at open, if any.
    pub fn repaired_tail(&self) -> Option<&TailRepair> {
        self.repaired.as_ref()
    }

    /// Path of the record file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current length of the record file in bytes.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Rewrites the file as a snapshot of the live state (normally triggered by the thresholds).
    pub fn compact(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let salt = new_salt();
        match write_snapshot(&self.dir, salt, &self.mirror.state) {
            Ok((file, len)) => {
                self.file = file;
                self.salt = salt;
                self.len = len;
                self.compacted_len = len;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.failed {
            let msg = "an earlier write or fsync failed; reopen the storage to recover";
            return Err(io_err(&self.path, io::Error::other(msg)));
        }
        Ok(())
    }

    /// Appends one record and fdatasyncs it.
    fn append(&mut self, record: Record<&Action>) -> Result<(), StorageError> {
        self.check_usable()?;
        let bytes = encode_record(self.salt, &record).map_err(|e| io_err(&self.path, e))?;
        debug_assert_eq!(
            parse_at(&bytes, 0, self.salt)
                .ok()
                .and_then(|(v, k, p, _)| decode_payload(v, k, p).ok())
                .as_ref()
                .map(Record::borrowed),
            Some(record),
            "record does not round-trip"
        );
        let offset = self.len;
        let written = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(&bytes))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.failed = true;
            let _ = self.file.set_len(offset); // best effort: a reopen cuts a torn tail anyway
            return Err(io_err(&self.path, e));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn maybe_compact(&mut self, truncated: u64) -> Result<(), StorageError> {
        let big = self.len
            >= self
                .options
                .compact_at_bytes
                .max(self.compacted_len.saturating_mul(2));
        if big || (truncated > 0 && truncated >= self.options.compact_after_truncated) {
            self.compact()?;
        }
        Ok(())
    }
}

impl Storage for DiskStorage {
    fn restore(&mut self) -> Result<State, StorageError> {
        self.check_usable()?;
        Ok(self.mirror.state.clone())
    }

    fn persist_metadata(&mut self, metadata: &Metadata) -> Result<(), StorageError> {
        self.append(Record::Metadata(*metadata))?;
        let _ = self.mirror.persist_metadata(metadata);
        self.maybe_compact(0)
    }

    fn persist_action(&mut self, action: &Action) -> Result<(), StorageError> {
        if action.position < self.mirror.state.begin {
            return self.check_usable(); // truncated away: kept as nothing, like MemoryStorage
        }
        self.append(Record::Action(action))?;
        let _ = self.mirror.persist_action(action);
        self.maybe_compact(0)
    }

    fn truncate(&mut self, to: Position) -> Result<(), StorageError> {
        if to <= self.mirror.state.begin {
            return self.check_usable(); // nothing changes
        }
        self.append(Record::Truncate(to))?;
        let before = self.mirror.state.actions.len();
        let _ = self.mirror.truncate(to);
        self.maybe_compact((before - self.mirror.state.actions.len()) as u64)
    }
}

/// Appends `bytes` and fdatasyncs, `samples` times, in a scratch file under `dir` that it removes;
/// returns each append+fdatasync latency (empty, with a warning, on an I/O error: see
/// [`try_measure_fsync`]).
pub fn measure_fsync(dir: &Path, samples: usize, bytes: usize) -> Vec<Duration> {
    try_measure_fsync(dir, samples, bytes).unwrap_or_else(|e| {
        tracing::warn!(dir = %dir.display(), "fsync measurement failed: {e}");
        Vec::new()
    })
}

/// [`measure_fsync`], failing on the first I/O error.
pub fn try_measure_fsync(dir: &Path, samples: usize, bytes: usize) -> io::Result<Vec<Duration>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        ".fsync-probe-{}-{:x}",
        std::process::id(),
        new_salt()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let block = vec![0xA5u8; bytes];
    let measured: io::Result<Vec<Duration>> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&block)
                .and_then(|()| file.sync_data())
                .map(|()| start.elapsed())
        })
        .collect();
    drop(file);
    let removed = std::fs::remove_file(&path);
    measured.and_then(|m| removed.map(|()| m))
}

/// Reads an existing log: returns its salt, the length of its valid prefix, the state, and the tail
/// cut off (the file is then already cut and fsynced).
fn load(
    file: &File,
    path: &Path,
) -> Result<(u64, u64, MemoryStorage, Option<TailRepair>), StorageError> {
    let mut buf = Vec::new();
    (&*file)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    let salt = read_file_header(&buf, path)?;
    let (mirror, good_len, tail) = replay(&buf, salt, path)?;
    let Some(reason) = tail else {
        return Ok((salt, good_len as u64, mirror, None));
    };
    let repair = TailRepair {
        offset: good_len as u64,
        dropped_bytes: (buf.len() - good_len) as u64,
        reason,
    };
    tracing::warn!(
        path = %path.display(),
        offset = repair.offset,
        dropped_bytes = repair.dropped_bytes,
        "replicated log: cutting a torn or corrupt tail at byte {} ({}); it held no acknowledged write",
        repair.offset,
        repair.reason
    );
    file.set_len(repair.offset)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(path, e))?;
    Ok((salt, repair.offset, mirror, Some(repair)))
}

/// Writes `state` as a fresh file under [`COMPACT_FILE`], fsyncs it, renames it over [`LOG_FILE`]
/// and fsyncs the directory. Returns the file (positioned for appends) and its length.
fn write_snapshot(dir: &Path, salt: u64, state: &State) -> Result<(File, u64), StorageError> {
    let tmp = dir.join(COMPACT_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, &file);
    let mut len = FILE_HEADER_LEN as u64;
    let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(|e| io_err(&tmp, e));
    write(&file_header(salt))?;
    let head = [
        Record::Metadata(state.metadata),
        Record::Truncate(state.begin),
    ];
    let records = head.into_iter().filter(|r| *r != Record::Truncate(0));
    for record in records.chain(state.actions.values().map(Record::Action)) {
        let bytes = encode_record(salt, &record).map_err(|e| io_err(&tmp, e))?;
        write(&bytes)?;
        len += bytes.len() as u64;
    }
    out.flush().map_err(|e| io_err(&tmp, e))?;
    drop(out);
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    let path = dir.join(LOG_FILE);
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    fsync_dir(dir)?;
    Ok((file, len))
}

fn file_header(salt: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32c(0, &h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the file header and returns the salt.
fn read_file_header(buf: &[u8], path: &Path) -> Result<u64, StorageError> {
    let corrupt = |reason: &str| StorageError::Corrupt {
        path: display(path),
        offset: 0,
        reason: reason.to_string(),
    };
    // The file is created whole by a rename, so a short or damaged header is never a torn write.
    let h = buf
        .get(..FILE_HEADER_LEN)
        .ok_or_else(|| corrupt("file shorter than its header"))?;
    if h[0..8] != FILE_MAGIC {
        return Err(corrupt("not a replicated log file (bad magic)"));
    }
    let version = le_u32(&h[8..12]);
    if version > FORMAT_VERSION {
        return Err(StorageError::UnsupportedFormat {
            path: display(path),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if crc32c(0, &h[0..20]) != le_u32(&h[20..24]) {
        return Err(corrupt("file header checksum mismatch"));
    }
    if version != FORMAT_VERSION {
        return Err(corrupt(&format!("unknown file format version {version}")));
    }
    Ok(le_u64(&h[12..20]))
}

/// Replays the records after the header. Returns the state, the length of the valid prefix and,
/// when an invalid tail follows it, why it is invalid.
fn replay(
    buf: &[u8],
    salt: u64,
    path: &Path,
) -> Result<(MemoryStorage, usize, Option<String>), StorageError> {
    let mut mirror = MemoryStorage::default();
    let mut offset = FILE_HEADER_LEN;
    while offset < buf.len() {
        let (version, kind, payload, next) = match parse_at(buf, offset, salt) {
            Ok(parsed) => parsed,
            Err(reason) => {
                if let Some(later) = find_valid_record(buf, offset + 1, salt) {
                    let reason = format!("{reason}; a valid record follows at byte {later}, so this is not a torn tail");
                    return Err(StorageError::Corrupt {
                        path: display(path),
                        offset: offset as u64,
                        reason,
                    });
                }
                return Ok((mirror, offset, Some(reason)));
            }
        };
        if version > FORMAT_VERSION {
            return Err(StorageError::UnsupportedFormat {
                path: display(path),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let record =
            decode_payload(version, kind, payload).map_err(|reason| StorageError::Corrupt {
                path: display(path),
                offset: offset as u64,
                reason: format!("checksum is valid but the record does not decode: {reason}"),
            })?;
        let _ = match record {
            Record::Metadata(m) => mirror.persist_metadata(&m),
            Record::Action(a) => mirror.persist_action(&a),
            Record::Truncate(to) => mirror.truncate(to),
        };
        offset = next;
    }
    Ok((mirror, offset, None))
}

/// Checks the record framing at `offset`: returns (version, kind, payload, next offset), or why
/// there is no valid record there.
fn parse_at(buf: &[u8], offset: usize, salt: u64) -> Result<(u32, u8, &[u8], usize), String> {
    let rest = buf.get(offset..).unwrap_or_default();
    if rest.len() < RECORD_HEADER_LEN {
        return Err(format!(
            "{} bytes left, less than a record header",
            rest.len()
        ));
    }
    if rest[0..4] != RECORD_MAGIC {
        return Err("bad record magic".to_string());
    }
    let len = le_u32(&rest[8..12]) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!(
            "payload length {len} exceeds the maximum {MAX_PAYLOAD}"
        ));
    }
    let end = RECORD_HEADER_LEN + len;
    if rest.len() < end {
        return Err(format!(
            "record of {end} bytes but only {} left",
            rest.len()
        ));
    }
    let expected = le_u32(&rest[4..8]);
    let actual = crc32c(crc32c(0, &salt.to_le_bytes()), &rest[8..end]);
    if actual != expected {
        return Err(format!(
            "checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
        ));
    }
    Ok((
        le_u32(&rest[12..16]),
        rest[16],
        &rest[RECORD_HEADER_LEN..end],
        offset + end,
    ))
}

fn find_valid_record(buf: &[u8], from: usize, salt: u64) -> Option<usize> {
    let last = buf.len().checked_sub(RECORD_HEADER_LEN)?;
    (from..=last).find(|&i| buf[i..i + 4] == RECORD_MAGIC && parse_at(buf, i, salt).is_ok())
}

fn encode_record(salt: u64, record: &Record<&Action>) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&[0; 8]); // checksum and length, filled below
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let kind = encode_payload(record, &mut out);
    out.insert(RECORD_HEADER_LEN - 1, kind);
    let len = out.len() - RECORD_HEADER_LEN;
    if len > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("record of {len} bytes is too large"),
        ));
    }
    out[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = crc32c(crc32c(0, &salt.to_le_bytes()), &out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Payload, all integers little-endian. Metadata: status u8, promised u64. Truncate: to u64.
/// Action: position u64, promised u64, performed (u8 0 | u8 1 + u64), learned u8, value tag u8
/// (0 none, 1 NOP + tombstone u8, 2 APPEND + length u64 + bytes, 3 TRUNCATE + to u64).
fn encode_payload(record: &Record<&Action>, out: &mut Vec<u8>) -> u8 {
    match record {
        Record::Metadata(Metadata { status, promised }) => {
            out.push(match status {
                ReplicaStatus::Empty => 0,
                ReplicaStatus::Starting => 1,
                ReplicaStatus::Recovering => 2,
                ReplicaStatus::Voting => 3,
            });
            out.extend_from_slice(&promised.to_le_bytes());
            KIND_METADATA
        }
        Record::Truncate(to) => {
            out.extend_from_slice(&to.to_le_bytes());
            KIND_TRUNCATE
        }
        Record::Action(Action {
            position,
            promised,
            performed,
            learned,
            value,
        }) => {
            out.extend_from_slice(&position.to_le_bytes());
            out.extend_from_slice(&promised.to_le_bytes());
            match performed {
                None => out.push(0),
                Some(p) => {
                    out.push(1);
                    out.extend_from_slice(&p.to_le_bytes());
                }
            }
            out.push(u8::from(*learned));
            match value {
                None => out.push(0),
                Some(Value::Nop { tombstone }) => out.extend_from_slice(&[1, u8::from(*tombstone)]),
                Some(Value::Append { bytes }) => {
                    out.push(2);
                    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    out.extend_from_slice(bytes);
                }
                Some(Value::Truncate { to }) => {
                    out.push(3);
                    out.extend_from_slice(&to.to_le_bytes());
                }
            }
            KIND_ACTION
        }
    }
}

fn decode_payload(version: u32, kind: u8, payload: &[u8]) -> Result<Record, String> {
    if version != FORMAT_VERSION {
        return Err(format!("unknown format version {version}"));
    }
    let mut r = Reader { buf: payload };
    let record = match kind {
        KIND_METADATA => {
            let status = match r.u8()? {
                0 => ReplicaStatus::Empty,
                1 => ReplicaStatus::Starting,
                2 => ReplicaStatus::Recovering,
                3 => ReplicaStatus::Voting,
                other => return Err(format!("unknown replica status {other}")),
            };
            Record::Metadata(Metadata {
                status,
                promised: r.u64()?,
            })
        }
        KIND_TRUNCATE => Record::Truncate(r.u64()?),
        KIND_ACTION => {
            let position = r.u64()?;
            let promised = r.u64()?;
            let performed = if r.bool()? { Some(r.u64()?) } else { None };
            let learned = r.bool()?;
            let value = match r.u8()? {
                0 => None,
                1 => Some(Value::Nop {
                    tombstone: r.bool()?,
                }),
                2 => {
                    let len = usize::try_from(r.u64()?).map_err(|_| "append length overflows")?;
                    Some(Value::Append {
                        bytes: r.take(len)?.to_vec(),
                    })
                }
                3 => Some(Value::Truncate { to: r.u64()? }),
                other => return Err(format!("unknown value tag {other}")),
            };
            Record::Action(Action {
                position,
                promised,
                performed,
                learned,
                value,
            })
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    if !r.buf.is_empty() {
        return Err(format!("{} trailing bytes after the payload", r.buf.len()));
    }
    Ok(record)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "payload ends early: wanted {n} bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("bad boolean {other}")),
        }
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(le_u64(self.take(8)?))
    }
}

/// `bytes` must be 4 long (callers slice exactly).
fn le_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    u32::from_le_bytes(a)
}

/// `bytes` must be 8 long (callers slice exactly).
fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    u64::from_le_bytes(a)
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78); `crc32c(crc32c(0, a), b)` is the
/// checksum of `a ‖ b`.
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn new_salt() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn io_err(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: display(path),
        source,
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
