//! What a commit means, independent of where it is stored: the operations, the snapshot they
//! build, the record envelope, the limits, and `plan`, the pure function that turns a batch of
//! operations plus "what exists now" into znode writes. `ZkStore` and `InMemoryStore` both run
//! `plan`, so their semantics (pruning to `max_versions`, deleting an emptied app together with its
//! task failure record) are the same.

use crate::layout::{check_id, Key};
use crate::StoreError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

/// Largest encoded record (envelope included). Marathon's single root-group record grew past
/// ZooKeeper's 1 MB limit; one record per app version keeps each small.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Largest commit (records plus paths): under ZooKeeper's default `jute.maxbuffer` (1 MB) for the
/// whole multi request, with room for headers.
pub const COMMIT_BYTES_MAX: usize = 900 * 1024;
/// Versions kept per app (`--zk_max_versions`).
pub const MAX_VERSIONS_DEFAULT: usize = 50;
/// The record envelope's format; a newer one is refused, never misread.
pub const FORMAT_VERSION: u64 = 1;

/// One change to the store. A `Vec<StoreOp>` is committed atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// Creates or replaces one version of an app (the newest version is the current definition).
    PutApp {
        app_id: String,
        version: String,
        value: Value,
    },
    /// Removes one version; removing the last one removes the app.
    DeleteAppVersion {
        app_id: String,
        version: String,
    },
    /// Removes an app and all its versions.
    DeleteApp {
        app_id: String,
    },
    PutInstance {
        id: String,
        value: Value,
    },
    DeleteInstance {
        id: String,
    },
    PutDeployment {
        id: String,
        value: Value,
    },
    DeleteDeployment {
        id: String,
    },
    /// Creates or replaces an app's last task failure. Dropped if the app does not exist once the
    /// batch is applied: the record never outlives its app.
    PutTaskFailure {
        app_id: String,
        value: Value,
    },
    /// Removes an app's last task failure (removing the app removes it too).
    DeleteTaskFailure {
        app_id: String,
    },
    /// Keeps the last definition of an app a deployment removes, for a rollback of that deployment
    /// (independent of the app's own records).
    PutRetiredApp {
        app_id: String,
        value: Value,
    },
    DeleteRetiredApp {
        app_id: String,
    },
    PutFrameworkId(String),
}

/// Everything in the store. Deletes of absent records are no-ops, so the snapshot is all there is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// app id -> version -> definition; versions sort oldest first.
    pub apps: BTreeMap<String, BTreeMap<String, Value>>,
    pub instances: BTreeMap<String, Value>,
    pub deployments: BTreeMap<String, Value>,
    /// app id -> its last task failure (absent in state written before these records existed).
    pub task_failures: BTreeMap<String, Value>,
    /// app id -> the definition kept for a rollback (absent in older state too).
    pub retired_apps: BTreeMap<String, Value>,
    pub framework_id: Option<String>,
}

impl Snapshot {
    /// The current definition of an app: its newest version.
    pub fn current_app(&self, app_id: &str) -> Option<(&str, &Value)> {
        self.apps
            .get(app_id)?
            .iter()
            .next_back()
            .map(|(v, value)| (v.as_str(), value))
    }

    /// Records a decoded value under `key` (loading from a backend).
    pub(crate) fn insert(&mut self, key: Key, value: Value, path: &str) -> Result<(), StoreError> {
        match key {
            Key::App(_) => {}
            Key::AppVersion(app, version) => {
                self.apps.entry(app).or_default().insert(version, value);
            }
            Key::Instance(id) => {
                self.instances.insert(id, value);
            }
            Key::Deployment(id) => {
                self.deployments.insert(id, value);
            }
            Key::TaskFailure(app) => {
                self.task_failures.insert(app, value);
            }
            Key::RetiredApp(app) => {
                self.retired_apps.insert(app, value);
            }
            Key::FrameworkId => match value {
                Value::String(id) => self.framework_id = Some(id),
                _ => {
                    return Err(StoreError::Corrupt {
                        key: path.to_string(),
                        reason: "framework id is not a string".into(),
                    })
                }
            },
        }
        Ok(())
    }

    /// Forgets the record under `key` (an app key forgets all its versions).
    pub(crate) fn remove(&mut self, key: &Key) {
        match key {
            Key::App(app) => {
                self.apps.remove(app);
            }
            Key::AppVersion(app, version) => {
                if let Some(versions) = self.apps.get_mut(app) {
                    versions.remove(version);
                    if versions.is_empty() {
                        self.apps.remove(app);
                    }
                }
            }
            Key::Instance(id) => {
                self.instances.remove(id);
            }
            Key::Deployment(id) => {
                self.deployments.remove(id);
            }
            Key::TaskFailure(app) => {
                self.task_failures.remove(app);
            }
            Key::RetiredApp(app) => {
                self.retired_apps.remove(app);
            }
            Key::FrameworkId => self.framework_id = None,
        }
    }
}

/// A boxed future, so `StateStore` can be a trait object (`Arc<dyn StateStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Marathon's durable state. A leader calls `fence()` once elected, then `load()`, then commits.
pub trait StateStore: Send + Sync {
    /// Claims the store for this handle: bumps the epoch so every handle fenced earlier can no
    /// longer commit. Returns the new epoch.
    fn fence(&self) -> StoreFuture<'_, u64>;
    /// Reads everything. Consistent when no one else writes (a fenced leader's case).
    fn load(&self) -> StoreFuture<'_, Snapshot>;
    /// Applies `ops` in order, all or nothing, if this handle's epoch is still current.
    fn commit(&self, ops: Vec<StoreOp>) -> StoreFuture<'_, ()>;
}

/// Encodes a record: `{"format":1,"data":<value>}`.
pub fn encode_record(value: &Value) -> Vec<u8> {
    let mut out = format!("{{\"format\":{FORMAT_VERSION},\"data\":").into_bytes();
    // Writing a `Value` to a Vec cannot fail (keys are strings, no I/O).
    let _ = serde_json::to_writer(&mut out, value);
    out.push(b'}');
    out
}

#[derive(serde::Deserialize)]
struct Envelope {
    format: u64,
    data: Value,
}

/// Decodes a record read from `path`.
pub fn decode_record(path: &str, bytes: &[u8]) -> Result<Value, StoreError> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: path.to_string(),
        reason: e.to_string(),
    })?;
    if envelope.format > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            key: path.to_string(),
            found: envelope.format,
        });
    }
    Ok(envelope.data)
}

/// A validated, encoded operation.
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    Put(Key, Vec<u8>),
    Delete(Key),
}

/// Validates ids and sizes and encodes records, before any backend is touched.
/// `path` names keys in errors.
pub(crate) fn prepare(
    ops: Vec<StoreOp>,
    path: impl Fn(&Key) -> String,
) -> Result<Vec<Prepared>, StoreError> {
    let mut prepared = Vec::with_capacity(ops.len());
    let mut total = 0usize;
    for op in ops {
        let (key, value) = match op {
            StoreOp::PutApp {
                app_id,
                version,
                value,
            } => {
                check_id(&version)?;
                (Key::AppVersion(app_id, version), Some(value))
            }
            StoreOp::DeleteAppVersion { app_id, version } => {
                (Key::AppVersion(app_id, version), None)
            }
            StoreOp::DeleteApp { app_id } => (Key::App(app_id), None),
            StoreOp::PutInstance { id, value } => (Key::Instance(id), Some(value)),
            StoreOp::DeleteInstance { id } => (Key::Instance(id), None),
            StoreOp::PutDeployment { id, value } => (Key::Deployment(id), Some(value)),
            StoreOp::DeleteDeployment { id } => (Key::Deployment(id), None),
            StoreOp::PutTaskFailure { app_id, value } => (Key::TaskFailure(app_id), Some(value)),
            StoreOp::DeleteTaskFailure { app_id } => (Key::TaskFailure(app_id), None),
            StoreOp::PutRetiredApp { app_id, value } => (Key::RetiredApp(app_id), Some(value)),
            StoreOp::DeleteRetiredApp { app_id } => (Key::RetiredApp(app_id), None),
            StoreOp::PutFrameworkId(id) => {
                check_id(&id)?;
                (Key::FrameworkId, Some(Value::String(id)))
            }
        };
        match &key {
            Key::App(id)
            | Key::AppVersion(id, _)
            | Key::Instance(id)
            | Key::Deployment(id)
            | Key::TaskFailure(id)
            | Key::RetiredApp(id) => check_id(id)?,
            Key::FrameworkId => {}
        }
        match value {
            Some(value) => {
                let bytes = encode_record(&value);
                let name = path(&key);
                if bytes.len() > RECORD_BYTES_MAX {
                    return Err(StoreError::TooLarge {
                        key: name,
                        bytes: bytes.len(),
                    });
                }
                total += bytes.len() + name.len();
                prepared.push(Prepared::Put(key, bytes));
            }
            None => {
                total += path(&key).len();
                prepared.push(Prepared::Delete(key));
            }
        }
    }
    if total > COMMIT_BYTES_MAX {
        return Err(StoreError::CommitTooLarge { bytes: total });
    }
    Ok(prepared)
}

/// What a batch touches, so a backend knows what to look up before planning.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub apps: BTreeSet<String>,
    /// Instance, deployment, task failure and framework id keys. Every touched app's task failure
    /// is here too (a removed app takes it along), and every task failure's app is in `apps` (a
    /// failure of an app that is gone is not written).
    pub records: BTreeSet<Key>,
}

pub(crate) fn touched(ops: &[Prepared]) -> Touched {
    let mut touched = Touched::default();
    for op in ops {
        let key = match op {
            Prepared::Put(k, _) | Prepared::Delete(k) => k,
        };
        match key {
            Key::App(app) | Key::AppVersion(app, _) | Key::TaskFailure(app) => {
                touched.apps.insert(app.clone());
                touched.records.insert(Key::TaskFailure(app.clone()));
            }
            other => {
                touched.records.insert(other.clone());
            }
        }
    }
    touched
}

/// What exists now of what a batch touches.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    /// For each touched app: its versions, or `None` if it has no app node.
    pub apps: BTreeMap<String, Option<BTreeSet<String>>>,
    /// The touched records that exist.
    pub records: BTreeSet<Key>,
}

/// One znode write; a commit is a list of them, applied in order, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write {
    Create(Key, Vec<u8>),
    Set(Key, Vec<u8>),
    Delete(Key),
}

enum Slot {
    Unchanged,
    Put(Vec<u8>),
}

/// Turns a batch into znode writes: the final state of each touched key compared with what
/// exists. App versions beyond `max_versions` are dropped oldest first; an app left without
/// versions loses its node and its task failure record (and a task failure put for it is
/// dropped). Writes are ordered so parents are created before and deleted after their children.
pub(crate) fn plan(ops: &[Prepared], existing: &Existing, max_versions: usize) -> Vec<Write> {
    let mut apps: BTreeMap<&str, BTreeMap<String, Slot>> = BTreeMap::new();
    for (app, versions) in &existing.apps {
        let slots = versions
            .iter()
            .flatten()
            .map(|v| (v.clone(), Slot::Unchanged))
            .collect();
        apps.insert(app, slots);
    }
    let mut records: BTreeMap<Key, Option<Slot>> = BTreeMap::new();
    for op in ops {
        match op {
            Prepared::Put(Key::AppVersion(app, version), bytes) => {
                apps.entry(app)
                    .or_default()
                    .insert(version.clone(), Slot::Put(bytes.clone()));
            }
            Prepared::Delete(Key::AppVersion(app, version)) => {
                apps.entry(app).or_default().remove(version);
            }
            Prepared::Delete(Key::App(app)) => {
                apps.entry(app).or_default().clear();
            }
            Prepared::Put(Key::App(_), _) => {}
            Prepared::Put(key, bytes) => {
                records.insert(key.clone(), Some(Slot::Put(bytes.clone())));
            }
            Prepared::Delete(key) => {
                records.insert(key.clone(), None);
            }
        }
    }
    let mut writes = Vec::new();
    for (app, versions) in &mut apps {
        while versions.len() > max_versions.max(1) {
            versions.pop_first();
        }
        let before = existing.apps.get(*app).and_then(|v| v.as_ref());
        let had_node = before.is_some();
        let empty = BTreeSet::new();
        let before = before.unwrap_or(&empty);
        if !had_node && !versions.is_empty() {
            writes.push(Write::Create(Key::App(app.to_string()), Vec::new()));
        }
        for old in before.iter().filter(|v| !versions.contains_key(*v)) {
            writes.push(Write::Delete(Key::AppVersion(app.to_string(), old.clone())));
        }
        for (version, slot) in versions.iter() {
            if let Slot::Put(bytes) = slot {
                let key = Key::AppVersion(app.to_string(), version.clone());
                writes.push(if before.contains(version) {
                    Write::Set(key, bytes.clone())
                } else {
                    Write::Create(key, bytes.clone())
                });
            }
        }
        if had_node && versions.is_empty() {
            writes.push(Write::Delete(Key::App(app.to_string())));
        }
        if versions.is_empty() {
            records.insert(Key::TaskFailure(app.to_string()), None);
        }
    }
    for (key, slot) in records {
        let existed = existing.records.contains(&key);
        match slot {
            Some(Slot::Put(bytes)) if existed => writes.push(Write::Set(key, bytes)),
            Some(Slot::Put(bytes)) => writes.push(Write::Create(key, bytes)),
            Some(Slot::Unchanged) => {}
            None if existed => writes.push(Write::Delete(key)),
            None => {}
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(app: &str, v: &str) -> StoreOp {
        StoreOp::PutApp {
            app_id: app.into(),
            version: v.into(),
            value: json!({"id": app}),
        }
    }

    #[test]
    fn records_round_trip_and_refuse_newer_formats() {
        let bytes = encode_record(&json!({"a": [1, 2]}));
        assert_eq!(decode_record("/p", &bytes).unwrap(), json!({"a": [1, 2]}));
        assert!(matches!(
            decode_record("/p", b"{\"format\":2,\"data\":1}"),
            Err(StoreError::NewerFormat { found: 2, .. })
        ));
        assert!(
            matches!(decode_record("/p", b"nope"), Err(StoreError::Corrupt { key, .. }) if key == "/p")
        );
    }

    #[test]
    fn plan_creates_parents_first_and_prunes_oldest() {
        let ops = prepare(vec![put("/a", "3")], |k| format!("{k:?}")).unwrap();
        let mut existing = Existing::default();
        existing
            .apps
            .insert("/a".into(), Some(["1".to_string(), "2".to_string()].into()));
        let writes = plan(&ops, &existing, 2);
        assert!(matches!(&writes[0], Write::Delete(Key::AppVersion(_, v)) if v == "1"));
        assert!(matches!(&writes[1], Write::Create(Key::AppVersion(_, v), _) if v == "3"));
        assert_eq!(writes.len(), 2);

        let writes = plan(&ops, &Existing::default(), 2);
        assert!(matches!(&writes[0], Write::Create(Key::App(_), _)));
        assert!(matches!(&writes[1], Write::Create(Key::AppVersion(..), _)));
    }

    #[test]
    fn deleting_the_last_version_deletes_the_app_node() {
        let ops = prepare(
            vec![StoreOp::DeleteAppVersion {
                app_id: "/a".into(),
                version: "1".into(),
            }],
            |k| format!("{k:?}"),
        )
        .unwrap();
        let mut existing = Existing::default();
        existing
            .apps
            .insert("/a".into(), Some(["1".to_string()].into()));
        let writes = plan(&ops, &existing, 50);
        assert_eq!(
            writes,
            vec![
                Write::Delete(Key::AppVersion("/a".into(), "1".into())),
                Write::Delete(Key::App("/a".into()))
            ]
        );
    }

    #[test]
    fn a_task_failure_lives_only_as_long_as_its_app() {
        let failure = |app: &str| StoreOp::PutTaskFailure {
            app_id: app.into(),
            value: json!({"taskId": "t"}),
        };
        let failure_key = Key::TaskFailure("/a".into());
        // Removing the app removes its failure record in the same commit.
        let ops = prepare(
            vec![StoreOp::DeleteApp {
                app_id: "/a".into(),
            }],
            |k| format!("{k:?}"),
        )
        .unwrap();
        let touched = touched(&ops);
        assert!(
            touched.records.contains(&failure_key),
            "the failure's existence is looked up"
        );
        let mut existing = Existing::default();
        existing
            .apps
            .insert("/a".into(), Some(["1".to_string()].into()));
        existing.records.insert(failure_key.clone());
        let writes = plan(&ops, &existing, 50);
        assert_eq!(writes.last(), Some(&Write::Delete(failure_key.clone())));
        // A failure of an app that is gone (or goes in the same batch) is not written.
        let ops = prepare(
            vec![
                failure("/a"),
                StoreOp::DeleteApp {
                    app_id: "/a".into(),
                },
            ],
            |k| format!("{k:?}"),
        )
        .unwrap();
        existing.records.clear();
        assert!(!plan(&ops, &existing, 50)
            .iter()
            .any(|w| matches!(w, Write::Create(k, _) | Write::Set(k, _) if *k == failure_key)));
        let ops = prepare(vec![failure("/gone")], |k| format!("{k:?}")).unwrap();
        let mut existing = Existing::default();
        existing.apps.insert("/gone".into(), None);
        assert!(plan(&ops, &existing, 50).is_empty());
        // Of an existing app, it is created, then replaced; the app's versions are untouched.
        let ops = prepare(vec![failure("/a")], |k| format!("{k:?}")).unwrap();
        let mut existing = Existing::default();
        existing
            .apps
            .insert("/a".into(), Some(["1".to_string()].into()));
        assert!(
            matches!(plan(&ops, &existing, 50).as_slice(), [Write::Create(k, _)] if *k == failure_key)
        );
        existing.records.insert(failure_key.clone());
        assert!(
            matches!(plan(&ops, &existing, 50).as_slice(), [Write::Set(k, _)] if *k == failure_key)
        );
    }

    #[test]
    fn sizes_are_checked_before_anything() {
        let big = json!("x".repeat(RECORD_BYTES_MAX));
        let err = prepare(
            vec![StoreOp::PutInstance {
                id: "i".into(),
                value: big,
            }],
            |_| "k".into(),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }));
        let many = (0..20)
            .map(|i| StoreOp::PutInstance {
                id: format!("i{i}"),
                value: json!("x".repeat(60_000)),
            })
            .collect();
        assert!(matches!(
            prepare(many, |_| "k".into()),
            Err(StoreError::CommitTooLarge { .. })
        ));
        assert!(matches!(
            prepare(
                vec![StoreOp::DeleteApp {
                    app_id: String::new()
                }],
                |_| "k".into()
            ),
            Err(StoreError::InvalidKey(_))
        ));
    }
}
