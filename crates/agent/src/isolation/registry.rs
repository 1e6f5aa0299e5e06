//! Containers an isolator knows: their limits, leader pid, limitation and watchers.

use super::{Limitation, Limits};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

#[derive(Debug)]
pub(crate) struct Entry {
    pub limits: Limits,
    pub pid: Option<u32>,
    pub limitation: Option<Limitation>,
    watchers: Vec<oneshot::Sender<Limitation>>,
}

/// A container as the pollers see it.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub container_id: String,
    pub limits: Limits,
    pub pid: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Entries stay consistent even if a holder panicked: every update is one assignment.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, container_id: &str, limits: Limits) {
        self.lock().insert(
            container_id.to_string(),
            Entry {
                limits,
                pid: None,
                limitation: None,
                watchers: Vec::new(),
            },
        );
    }

    pub fn set_pid(&self, container_id: &str, pid: u32) -> bool {
        match self.lock().get_mut(container_id) {
            Some(entry) => {
                entry.pid = Some(pid);
                true
            }
            None => false,
        }
    }

    pub fn limits(&self, container_id: &str) -> Option<Limits> {
        self.lock().get(container_id).map(|e| e.limits)
    }

    pub fn pid(&self, container_id: &str) -> Option<u32> {
        self.lock().get(container_id).and_then(|e| e.pid)
    }

    pub fn limitation(&self, container_id: &str) -> Option<Limitation> {
        self.lock()
            .get(container_id)
            .and_then(|e| e.limitation.clone())
    }

    /// A receiver that fires with the container's limitation (at once if already recorded). For an
    /// unknown container the sender is dropped right away.
    pub fn watch(&self, container_id: &str) -> oneshot::Receiver<Limitation> {
        let (tx, rx) = oneshot::channel();
        if let Some(entry) = self.lock().get_mut(container_id) {
            match &entry.limitation {
                Some(limitation) => {
                    let _ = tx.send(limitation.clone());
                }
                None => entry.watchers.push(tx),
            }
        }
        rx
    }

    /// Records the first limitation of a container and tells its watchers; false when the
    /// container is unknown or already had one.
    pub fn record(&self, container_id: &str, limitation: Limitation) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(container_id) else {
            return false;
        };
        if entry.limitation.is_some() {
            return false;
        }
        for watcher in entry.watchers.drain(..) {
            let _ = watcher.send(limitation.clone());
        }
        entry.limitation = Some(limitation);
        true
    }

    /// Containers without a limitation yet, for the pollers.
    pub fn unlimited(&self) -> Vec<Watched> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.limitation.is_none())
            .map(|(id, e)| Watched {
                container_id: id.clone(),
                limits: e.limits,
                pid: e.pid,
            })
            .collect()
    }

    pub fn remove(&self, container_id: &str) {
        // Dropping the entry drops its watchers' senders: they learn there was no limitation.
        self.lock().remove(container_id);
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }
}
