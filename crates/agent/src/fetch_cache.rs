//! The fetcher's cache (Mesos' `--fetcher_cache_size`, `--fetcher_cache_dir`): a URI fetched
//! with `cache: true` is downloaded once per agent and copied into every sandbox that asks for it,
//! so the 100 instances of an app do not download its artifact 100 times.
//!
//! What: entries are files in the cache directory named by a hash of the URI; [`CacheIndex`]
//! (pure) keeps their sizes and recency and says which to evict, least recently used first, to
//! admit a new one within the capacity; a download bigger than the capacity is not cached. Tasks
//! fetching the same URI at once wait for one download (a lock per URI). Like Mesos, the cache
//! starts empty when the agent starts (its directory is emptied), so nothing stale or partly
//! written survives a crash.
//!
//! Copies, not links, go to sandboxes: a task that changes its file must not change the cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `--fetcher_cache_size` default (Mesos').
pub const DEFAULT_CACHE_SIZE: &str = "2GB";

/// Which cached URIs exist, their sizes and recency (pure bookkeeping, no I/O).
#[derive(Debug, Default)]
pub(crate) struct CacheIndex {
    capacity: u64,
    total: u64,
    clock: u64,
    /// key → (URI, size in bytes, last use)
    entries: BTreeMap<String, (String, u64, u64)>,
}

impl CacheIndex {
    pub(crate) fn new(capacity: u64) -> Self {
        CacheIndex {
            capacity,
            ..CacheIndex::default()
        }
    }

    /// Whether `uri` is cached under `key`; marks it used.
    pub(crate) fn hit(&mut self, key: &str, uri: &str) -> bool {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(key) {
            Some((cached, _, used)) if cached == uri => {
                *used = clock;
                true
            }
            _ => false,
        }
    }

    /// Admits `uri` of `size` bytes under `key`: `None` when it cannot fit at all, else the keys
    /// to evict first (least recently used first) so that it fits.
    pub(crate) fn admit(&mut self, key: &str, uri: &str, size: u64) -> Option<Vec<String>> {
        if size > self.capacity {
            return None;
        }
        let mut evicted = Vec::new();
        if let Some((_, old_size, _)) = self.entries.remove(key) {
            self.total -= old_size;
            evicted.push(key.to_string());
        }
        while self.total + size > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(k, _)| k.clone())?;
            if let Some((_, old_size, _)) = self.entries.remove(&oldest) {
                self.total -= old_size;
            }
            evicted.push(oldest);
        }
        self.clock += 1;
        self.entries
            .insert(key.to_string(), (uri.to_string(), size, self.clock));
        self.total += size;
        Some(evicted)
    }

    /// Forgets `key` (its file could not be written).
    pub(crate) fn forget(&mut self, key: &str) {
        if let Some((_, size, _)) = self.entries.remove(key) {
            self.total -= size;
        }
    }
}

/// The cache of one agent.
pub struct FetchCache {
    dir: PathBuf,
    index: Mutex<CacheIndex>,
    downloads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How a cached fetch was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    FromCache,
    Downloaded,
}

impl FetchCache {
    /// A cache in `dir` (emptied now) holding at most `capacity` bytes.
    pub fn start(dir: PathBuf, capacity: u64) -> std::io::Result<Arc<FetchCache>> {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(FetchCache {
            dir,
            index: Mutex::new(CacheIndex::new(capacity)),
            downloads: Mutex::new(HashMap::new()),
        }))
    }

    /// Puts `uri` at `target`: copied from the cache, or downloaded by `download` (into the path
    /// it is given) and cached when it fits.
    pub async fn fetch<F, Fut>(
        &self,
        uri: &str,
        target: &Path,
        download: F,
    ) -> Result<Served, String>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let key = cache_key(uri);
        let entry = self.dir.join(&key);
        let lock = {
            let mut downloads = self.downloads.lock().unwrap_or_else(|e| e.into_inner());
            downloads.retain(|_, l| Arc::strong_count(l) > 1);
            downloads.entry(key.clone()).or_default().clone()
        };
        let _one_download = lock.lock().await;
        let cached = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit(&key, uri);
        if cached && tokio::fs::metadata(&entry).await.is_ok() {
            copy(&entry, target).await?;
            return Ok(Served::FromCache);
        }
        let partial = self.dir.join(format!("{key}.partial"));
        let downloaded = download(partial.clone()).await;
        if let Err(e) = downloaded {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        let size = tokio::fs::metadata(&partial)
            .await
            .map_err(|e| format!("cannot read {}: {e}", partial.display()))?
            .len();
        let admitted = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(&key, uri, size);
        let Some(evicted) = admitted else {
            // Bigger than the whole cache: the download goes to the sandbox only.
            return tokio::fs::rename(&partial, target)
                .await
                .map(|()| Served::Downloaded)
                .map_err(|e| format!("cannot move the download to {}: {e}", target.display()));
        };
        for key in evicted {
            let _ = tokio::fs::remove_file(self.dir.join(key)).await;
        }
        if let Err(e) = tokio::fs::rename(&partial, &entry).await {
            self.index
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(&key);
            return Err(format!(
                "cannot keep the download in the cache {}: {e}",
                entry.display()
            ));
        }
        copy(&entry, target).await?;
        Ok(Served::Downloaded)
    }
}

async fn copy(from: &Path, to: &Path) -> Result<(), String> {
    tokio::fs::copy(from, to)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// The entry's file name: a hash of the URI (the index keeps the URI itself to tell collisions).
fn cache_key(uri: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and builds (std's hasher is not guaranteed to be).
    let hash = uri.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Parses a Mesos byte size: a number with `B`, `KB`, `MB`, `GB` or `TB` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 2GB or 512MB"))?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "B" | "" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => {
            return Err(format!(
                "'{text}' is not a size like 2GB or 512MB (units B, KB, MB, GB, TB)"
            ))
        }
    };
    Ok((number * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entries_make_room() {
        let mut index = CacheIndex::new(100);
        assert_eq!(index.admit("a", "u-a", 40), Some(vec![]));
        assert_eq!(index.admit("b", "u-b", 40), Some(vec![]));
        assert!(index.hit("a", "u-a")); // b is now the least recently used
        assert_eq!(index.admit("c", "u-c", 40), Some(vec!["b".to_string()]));
        assert!(!index.hit("b", "u-b"));
        assert!(index.hit("a", "u-a") && index.hit("c", "u-c"));
        // Bigger than the whole cache: not admitted, nothing evicted.
        assert_eq!(index.admit("d", "u-d", 101), None);
        assert!(index.hit("a", "u-a"));
        // A hash collision is a miss, and admitting replaces the other URI's entry.
        assert!(!index.hit("a", "another-uri"));
        assert_eq!(
            index.admit("a", "another-uri", 10),
            Some(vec!["a".to_string()])
        );
        assert_eq!(index.total, 50);
    }

    #[test]
    fn sizes_parse_as_mesos_writes_them() {
        assert_eq!(parse_bytes("2GB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5KB"), Ok(1536));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("2PB").unwrap_err().contains("units"));
    }

    #[test]
    fn keys_are_stable_and_differ_by_uri() {
        assert_eq!(cache_key("http://h/a"), cache_key("http://h/a"));
        assert_ne!(cache_key("http://h/a"), cache_key("http://h/b"));
        assert_eq!(cache_key("").len(), 16);
    }
}
