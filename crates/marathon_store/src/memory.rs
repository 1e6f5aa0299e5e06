//! `InMemoryStore`: the store's semantics without ZooKeeper, for the service's unit tests.
//!
//! It keeps encoded records by key, the way znodes hold them, and runs the same `prepare` and
//! `plan` as `ZkStore`: the same size limits, pruning, fencing (an epoch counter stands for the
//! epoch znode's version) and all-or-nothing commits. Handles made with `handle()` share the data
//! but each remembers its own fenced epoch, like two Marathon instances.

use crate::layout::{Key, Layout};
use crate::ops::{decode_record, plan, prepare, touched, Existing, Write};
use crate::{Snapshot, StateStore, StoreError, StoreFuture, StoreOp, MAX_VERSIONS_DEFAULT};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Shared {
    epoch: u64,
    nodes: BTreeMap<Key, Vec<u8>>,
}

/// An in-memory `StateStore`.
pub struct InMemoryStore {
    shared: Arc<Mutex<Shared>>,
    fenced_at: Mutex<Option<u64>>,
    max_versions: usize,
    layout: Layout,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        InMemoryStore::new(MAX_VERSIONS_DEFAULT)
    }
}

impl InMemoryStore {
    pub fn new(max_versions: usize) -> InMemoryStore {
        InMemoryStore {
            shared: Arc::default(),
            fenced_at: Mutex::new(None),
            max_versions,
            layout: Layout::new("/marathon"),
        }
    }

    /// Another handle on the same data, not fenced (another Marathon instance).
    pub fn handle(&self) -> InMemoryStore {
        InMemoryStore {
            shared: self.shared.clone(),
            fenced_at: Mutex::new(None),
            max_versions: self.max_versions,
            layout: self.layout.clone(),
        }
    }

    /// Stores raw bytes under `key`, bypassing every check (tests of corrupt records).
    pub fn put_raw(&self, key: Key, bytes: Vec<u8>) {
        let mut shared = lock(&self.shared);
        if let Key::AppVersion(app, _) = &key {
            shared.nodes.insert(Key::App(app.clone()), Vec::new());
        }
        shared.nodes.insert(key, bytes);
    }

    fn commit_now(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let prepared = prepare(ops, |k| self.layout.path(k))?;
        let fenced_at = (*lock(&self.fenced_at)).ok_or(StoreError::NotFenced)?;
        let mut shared = lock(&self.shared);
        if shared.epoch != fenced_at {
            return Err(StoreError::Fenced);
        }
        let touched = touched(&prepared);
        let mut existing = Existing::default();
        for app in touched.apps {
            let versions = shared.nodes.contains_key(&Key::App(app.clone())).then(|| {
                shared
                    .nodes
                    .keys()
                    .filter_map(|k| match k {
                        Key::AppVersion(a, v) if *a == app => Some(v.clone()),
                        _ => None,
                    })
                    .collect()
            });
            existing.apps.insert(app, versions);
        }
        existing.records = touched
            .records
            .into_iter()
            .filter(|k| shared.nodes.contains_key(k))
            .collect();
        for write in plan(&prepared, &existing, self.max_versions) {
            match write {
                Write::Create(key, bytes) | Write::Set(key, bytes) => {
                    shared.nodes.insert(key, bytes);
                }
                Write::Delete(key) => {
                    shared.nodes.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn load_now(&self) -> Result<Snapshot, StoreError> {
        let shared = lock(&self.shared);
        let mut snapshot = Snapshot::default();
        for (key, bytes) in &shared.nodes {
            if matches!(key, Key::App(_)) {
                continue;
            }
            let path = self.layout.path(key);
            snapshot.insert(key.clone(), decode_record(&path, bytes)?, &path)?;
        }
        Ok(snapshot)
    }
}

/// A poisoned lock only means a test panicked while holding it; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StateStore for InMemoryStore {
    fn fence(&self) -> StoreFuture<'_, u64> {
        let mut shared = lock(&self.shared);
        shared.epoch += 1;
        let epoch = shared.epoch;
        *lock(&self.fenced_at) = Some(epoch);
        Box::pin(std::future::ready(Ok(epoch)))
    }

    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(std::future::ready(self.load_now()))
    }

    fn commit(&self, ops: Vec<StoreOp>) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(self.commit_now(ops)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put_app(app: &str, version: u64) -> StoreOp {
        StoreOp::PutApp {
            app_id: app.into(),
            version: crate::version_from_millis(version),
            value: json!({"id": app, "v": version}),
        }
    }

    fn block<T>(f: StoreFuture<'_, T>) -> Result<T, StoreError> {
        futures::executor::block_on(f)
    }

    #[test]
    fn commit_then_load_round_trips() {
        let store = InMemoryStore::default();
        assert_eq!(
            block(store.commit(vec![put_app("/a", 1)])),
            Err(StoreError::NotFenced)
        );
        block(store.fence()).unwrap();
        block(store.commit(vec![
            put_app("/a", 1),
            put_app("/a", 2),
            StoreOp::PutInstance {
                id: "i1".into(),
                value: json!({"state": "running"}),
            },
            StoreOp::PutDeployment {
                id: "d1".into(),
                value: json!([1]),
            },
            StoreOp::PutFrameworkId("fw-1".into()),
        ]))
        .unwrap();
        let snapshot = block(store.load()).unwrap();
        assert_eq!(snapshot.apps["/a"].len(), 2);
        assert_eq!(snapshot.current_app("/a").unwrap().1["v"], 2);
        assert_eq!(snapshot.instances["i1"]["state"], "running");
        assert_eq!(snapshot.deployments.len(), 1);
        assert_eq!(snapshot.framework_id.as_deref(), Some("fw-1"));

        block(store.commit(vec![
            StoreOp::DeleteApp {
                app_id: "/a".into(),
            },
            StoreOp::DeleteInstance { id: "i1".into() },
        ]))
        .unwrap();
        let snapshot = block(store.load()).unwrap();
        assert!(snapshot.apps.is_empty() && snapshot.instances.is_empty());
        assert!(
            !lock(&store.shared)
                .nodes
                .contains_key(&Key::App("/a".into())),
            "app node removed with its versions"
        );
    }

    #[test]
    fn task_failures_round_trip_and_go_with_their_app() {
        let store = InMemoryStore::default();
        block(store.fence()).unwrap();
        let failure = StoreOp::PutTaskFailure {
            app_id: "/a".into(),
            value: json!({"taskId": "t1"}),
        };
        block(store.commit(vec![put_app("/a", 1), failure])).unwrap();
        assert_eq!(
            block(store.load()).unwrap().task_failures["/a"]["taskId"],
            "t1"
        );
        block(store.commit(vec![StoreOp::DeleteApp {
            app_id: "/a".into(),
        }]))
        .unwrap();
        assert_eq!(
            block(store.load()).unwrap(),
            Snapshot::default(),
            "the failure went with the app"
        );
        // Recreating the app does not bring an old failure back.
        block(store.commit(vec![put_app("/a", 2)])).unwrap();
        assert!(block(store.load()).unwrap().task_failures.is_empty());
    }

    #[test]
    fn oversized_record_writes_nothing() {
        let store = InMemoryStore::default();
        block(store.fence()).unwrap();
        let big = StoreOp::PutInstance {
            id: "big".into(),
            value: json!("x".repeat(crate::RECORD_BYTES_MAX)),
        };
        let err = block(store.commit(vec![put_app("/a", 1), big])).unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { ref key, .. } if key.ends_with("/instances/big")),
            "{err:?}"
        );
        assert_eq!(block(store.load()).unwrap(), Snapshot::default());
    }

    #[test]
    fn keeps_at_most_max_versions() {
        let store = InMemoryStore::new(3);
        block(store.fence()).unwrap();
        for v in 1..=5 {
            block(store.commit(vec![put_app("/a", v)])).unwrap();
        }
        let versions: Vec<_> = block(store.load()).unwrap().apps["/a"]
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            versions,
            (3..=5).map(crate::version_from_millis).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_deposed_leader_is_fenced_and_writes_nothing() {
        let a = InMemoryStore::default();
        let b = a.handle();
        block(a.fence()).unwrap();
        block(b.fence()).unwrap();
        assert_eq!(
            block(a.commit(vec![put_app("/a", 1)])),
            Err(StoreError::Fenced)
        );
        assert_eq!(block(b.load()).unwrap(), Snapshot::default());
        block(b.commit(vec![put_app("/b", 1)])).unwrap();
        assert_eq!(block(a.load()).unwrap().apps.len(), 1);
    }

    #[test]
    fn corrupt_records_are_reported_with_their_path() {
        let store = InMemoryStore::default();
        store.put_raw(Key::Instance("i/1".into()), b"{oops".to_vec());
        match block(store.load()) {
            Err(StoreError::Corrupt { key, .. }) => {
                assert_eq!(key, "/marathon/state/instances/i%2F1")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
