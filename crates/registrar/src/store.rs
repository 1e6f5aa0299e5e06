//! The registry kept in the replicated log (replicated-log.md 7): every store appends one full
//! snapshot (the master uses no diffs), then truncates the log below it; a fetch replays to the
//! newest snapshot. A store is acknowledged only after a quorum has it on disk.

use crate::runtime::{Input, LogHandle};
use registry::{Registry, RegistryStore, StoreError, StoreFuture, REGISTRY_FORMAT_VERSION};
use replog::{Value, WriteError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One log entry: a full registry snapshot with its format version.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    format_version: u32,
    registry: Registry,
}

pub struct LogStore {
    log: LogHandle,
    fetch_timeout: Duration,
    store_timeout: Duration,
}

impl LogStore {
    pub fn new(log: LogHandle, fetch_timeout: Duration, store_timeout: Duration) -> Self {
        LogStore {
            log,
            fetch_timeout,
            store_timeout,
        }
    }

    /// The newest snapshot among learned entries.
    pub fn decode(entries: &[(u64, Value)]) -> Result<Registry, StoreError> {
        let newest = entries.iter().rev().find_map(|(_, value)| match value {
            Value::Append { bytes } => Some(bytes),
            _ => None,
        });
        let Some(bytes) = newest else {
            return Ok(Registry::default());
        };
        let probe: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let found = probe
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        if found > REGISTRY_FORMAT_VERSION {
            return Err(StoreError::UnsupportedFormat {
                found,
                supported: REGISTRY_FORMAT_VERSION,
            });
        }
        let snapshot: Snapshot =
            serde_json::from_value(probe).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(snapshot.registry)
    }
}

impl RegistryStore for LogStore {
    /// Becomes the log's writer (implicit promise, fill) and reads what it then holds learned.
    fn fetch(&self) -> StoreFuture<'_, Registry> {
        Box::pin(async move {
            let _ = self.log.inbox.send(Input::StartWriter);
            let mut stats = self.log.stats.clone();
            // The watch guard is not Send: reduce it to a bool inside the future.
            let elected = tokio::time::timeout(self.fetch_timeout, async {
                stats
                    .wait_for(|s| s.writer_elected || s.writer_demoted)
                    .await
                    .map(|s| s.writer_demoted)
            })
            .await;
            match elected {
                Err(_) => return Err(StoreError::Timeout(self.fetch_timeout)),
                Ok(Err(_)) => {
                    return Err(StoreError::Unavailable("the replicated log stopped".into()))
                }
                Ok(Ok(true)) => return Err(StoreError::Fenced),
                Ok(Ok(false)) => {}
            }
            let entries = self.log.read().await;
            LogStore::decode(&entries)
        })
    }

    fn store(&self, registry: &Registry) -> StoreFuture<'_, ()> {
        let snapshot = Snapshot {
            format_version: REGISTRY_FORMAT_VERSION,
            registry: registry.clone(),
        };
        let bytes = serde_json::to_vec(&snapshot);
        Box::pin(async move {
            let bytes = bytes.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let appended = tokio::time::timeout(self.store_timeout, self.log.append(bytes)).await;
            match appended {
                Err(_) => Err(StoreError::Timeout(self.store_timeout)),
                Ok(Err(WriteError::Demoted)) => Err(StoreError::Fenced),
                Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
                Ok(Ok(position)) => {
                    // Older snapshots are no longer needed (replicated-log.md 7).
                    let _ = self.log.inbox.send(Input::Truncate(position));
                    Ok(())
                }
            }
        })
    }
}
