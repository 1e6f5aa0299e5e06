//! `ZkStore`: the store on ZooKeeper, and `connect`, which opens the session the store, the view
//! and the election share (digest auth and ACLs from the `zk://` URL, as the `election` crate does).
//!
//! A commit is one multi: `check(epoch, remembered)` first, then the writes `plan` derives from
//! the batch and from what exists (read just before). If a newer leader bumped the epoch, the
//! check fails and nothing is written (`Fenced`). If the multi fails on a record (this leader raced
//! itself), the read and plan are redone, a few times at most.

use crate::layout::{decode_name, Key, Layout};
use crate::ops::{decode_record, plan, prepare, touched, Existing, Prepared, Write};
use crate::{Snapshot, StateStore, StoreError, StoreFuture, StoreOp};
use election::ZkUrl;
use futures::future::join_all;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use zookeeper_client as zk;

/// Attempts of one commit when it races with another commit of the same leader.
const COMMIT_ATTEMPTS: usize = 3;

/// An open ZooKeeper session for Marathon: the client, the ACLs new nodes get, the root path.
#[derive(Clone)]
pub struct ZkConnection {
    pub client: zk::Client,
    pub acls: Vec<zk::Acl>,
    pub layout: Layout,
}

impl ZkConnection {
    pub(crate) fn options(&self, mode: zk::CreateMode) -> zk::CreateOptions<'_> {
        mode.with_acls(zk::Acls::new(&self.acls))
    }

    /// Whether the session is over for good (expired, closed, auth failed).
    pub fn session_lost(&self) -> bool {
        is_terminal(self.client.state())
    }
}

pub(crate) fn is_terminal(state: zk::SessionState) -> bool {
    matches!(
        state,
        zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
    )
}

/// Opens a session to `url` (`zk://[user:pass@]hosts/root`). With credentials, the session
/// authenticates with `digest` and new nodes get `[world:anyone READ, auth ALL]`.
pub async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<ZkConnection, StoreError> {
    let acls = if url.credentials.is_some() {
        vec![
            zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
            zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed()),
        ]
    } else {
        vec![zk::Acl::new(zk::Permission::ALL, zk::AuthId::anyone())]
    };
    let mut connector = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(session_timeout);
    if let Some((user, password)) = &url.credentials {
        connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
    }
    let client = tokio::time::timeout(session_timeout * 2, connector.connect(&url.servers))
        .await
        .map_err(|_| StoreError::ConnectionLoss)?
        .map_err(|e| StoreError::from_zk(e, &url.servers))?;
    tracing::info!(url = %url, session_id = ?client.session_id(), "ZooKeeper session opened for Marathon");
    let connection = ZkConnection {
        client,
        acls,
        layout: Layout::new(&url.path),
    };
    ensure_dirs(&connection).await?;
    Ok(connection)
}

/// Creates the state directories and the election directory (idempotent).
pub(crate) async fn ensure_dirs(connection: &ZkConnection) -> Result<(), StoreError> {
    let options = connection.options(zk::CreateMode::Persistent);
    let layout = &connection.layout;
    for dir in layout.dirs().into_iter().chain([layout.leader_dir()]) {
        connection
            .client
            .mkdir(&dir, &options)
            .await
            .map_err(|e| StoreError::from_zk(e, &dir))?;
    }
    Ok(())
}

/// The ZooKeeper `StateStore`.
pub struct ZkStore {
    connection: ZkConnection,
    max_versions: usize,
    /// The epoch znode's version after our `fence()`.
    epoch: Mutex<Option<i32>>,
}

impl ZkStore {
    pub fn new(connection: ZkConnection, max_versions: usize) -> ZkStore {
        ZkStore {
            connection,
            max_versions,
            epoch: Mutex::new(None),
        }
    }

    pub fn connection(&self) -> &ZkConnection {
        &self.connection
    }

    fn layout(&self) -> &Layout {
        &self.connection.layout
    }

    fn client(&self) -> &zk::Client {
        &self.connection.client
    }

    async fn fence_now(&self) -> Result<u64, StoreError> {
        ensure_dirs(&self.connection).await?;
        let path = self.layout().epoch();
        match self
            .client()
            .create(
                &path,
                &[],
                &self.connection.options(zk::CreateMode::Persistent),
            )
            .await
        {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(StoreError::from_zk(e, &path)),
        }
        let stat = self
            .client()
            .set_data(&path, &[], None)
            .await
            .map_err(|e| StoreError::from_zk(e, &path))?;
        *self.epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(stat.version);
        tracing::info!(epoch = stat.version, "fenced the Marathon store");
        Ok(stat.version as u64)
    }

    /// Reads what exists of what a batch touches (requests are pipelined).
    async fn existing(&self, touched: &crate::ops::Touched) -> Result<Existing, StoreError> {
        let client = self.client();
        let app_paths: Vec<(String, String)> = touched
            .apps
            .iter()
            .map(|a| (a.clone(), self.layout().path(&Key::App(a.clone()))))
            .collect();
        let app_reads = join_all(app_paths.iter().map(|(_, p)| client.list_children(p)));
        let record_paths: Vec<String> = touched
            .records
            .iter()
            .map(|k| self.layout().path(k))
            .collect();
        let record_reads = join_all(record_paths.iter().map(|p| client.check_stat(p)));
        let (apps, records) = futures::join!(app_reads, record_reads);
        let mut existing = Existing::default();
        for ((app, path), result) in app_paths.into_iter().zip(apps) {
            let versions = match result {
                Ok(children) => Some(
                    children
                        .iter()
                        .filter_map(|c| decode_name(c))
                        .collect::<BTreeSet<_>>(),
                ),
                Err(zk::Error::NoNode) => None,
                Err(e) => return Err(StoreError::from_zk(e, &path)),
            };
            existing.apps.insert(app, versions);
        }
        for ((key, path), result) in touched.records.iter().zip(&record_paths).zip(records) {
            match result {
                Ok(Some(_)) => {
                    existing.records.insert(key.clone());
                }
                Ok(None) => {}
                Err(e) => return Err(StoreError::from_zk(e, path)),
            }
        }
        Ok(existing)
    }

    async fn commit_now(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let prepared: Vec<Prepared> = prepare(ops, |k| self.layout().path(k))?;
        let epoch =
            (*self.epoch.lock().unwrap_or_else(|p| p.into_inner())).ok_or(StoreError::NotFenced)?;
        if prepared.is_empty() {
            return Ok(());
        }
        let touched = touched(&prepared);
        let epoch_path = self.layout().epoch();
        let persistent = self.connection.options(zk::CreateMode::Persistent);
        let mut last_conflict = String::new();
        for attempt in 0..COMMIT_ATTEMPTS {
            let existing = self.existing(&touched).await?;
            let writes = plan(&prepared, &existing, self.max_versions);
            let mut multi = self.client().new_multi_writer();
            let mut paths = vec![epoch_path.clone()];
            let add = |result: Result<(), zk::Error>, path: &str| {
                result.map_err(|e| StoreError::from_zk(e, path))
            };
            add(multi.add_check_version(&epoch_path, epoch), &epoch_path)?;
            for write in &writes {
                match write {
                    Write::Create(key, bytes) => {
                        let path = self.layout().path(key);
                        add(multi.add_create(&path, bytes, &persistent), &path)?;
                        paths.push(path);
                    }
                    Write::Set(key, bytes) => {
                        let path = self.layout().path(key);
                        add(multi.add_set_data(&path, bytes, None), &path)?;
                        paths.push(path);
                    }
                    Write::Delete(key) => {
                        let path = self.layout().path(key);
                        add(multi.add_delete(&path, None), &path)?;
                        paths.push(path);
                    }
                }
            }
            match multi.commit().await {
                Ok(_) => return Ok(()),
                Err(zk::MultiWriteError::OperationFailed {
                    index: 0,
                    source: zk::Error::BadVersion | zk::Error::NoNode,
                }) => {
                    tracing::warn!("commit refused: a newer leader fenced the store");
                    return Err(StoreError::Fenced);
                }
                Err(zk::MultiWriteError::OperationFailed {
                    index,
                    source:
                        source @ (zk::Error::NodeExists | zk::Error::NoNode | zk::Error::NotEmpty),
                }) => {
                    let path = paths.get(index).cloned().unwrap_or_default();
                    last_conflict = format!("{path}: {source}");
                    tracing::debug!(attempt, conflict = %last_conflict, "commit raced another change; planning again");
                }
                Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                    return Err(StoreError::from_zk(
                        source,
                        paths.get(index).map(String::as_str).unwrap_or(""),
                    ));
                }
                Err(zk::MultiWriteError::RequestFailed { source }) => {
                    return Err(StoreError::from_zk(source, "multi"))
                }
            }
        }
        Err(StoreError::Conflict(last_conflict))
    }

    async fn load_now(&self) -> Result<Snapshot, StoreError> {
        let client = self.client();
        let layout = self.layout();
        let mut keys: Vec<Key> = Vec::new();
        let apps = list(client, &layout.apps_dir()).await?;
        let app_ids: Vec<String> = apps.iter().filter_map(|c| decode_name(c)).collect();
        let app_paths: Vec<String> = app_ids
            .iter()
            .map(|a| layout.path(&Key::App(a.clone())))
            .collect();
        let versions = join_all(app_paths.iter().map(|p| client.list_children(p))).await;
        for ((app, path), result) in app_ids.iter().zip(&app_paths).zip(versions) {
            match result {
                Ok(children) => keys.extend(
                    children
                        .iter()
                        .filter_map(|c| decode_name(c))
                        .map(|v| Key::AppVersion(app.clone(), v)),
                ),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(StoreError::from_zk(e, path)),
            }
        }
        let record_dirs = [
            (layout.instances_dir(), Key::Instance as fn(String) -> Key),
            (layout.deployments_dir(), Key::Deployment),
            // These two are absent in state written before they existed: `list` reads them as empty.
            (layout.task_failures_dir(), Key::TaskFailure),
            (layout.retired_dir(), Key::RetiredApp),
        ];
        for (dir, make) in record_dirs {
            keys.extend(
                list(client, &dir)
                    .await?
                    .iter()
                    .filter_map(|c| decode_name(c))
                    .map(make),
            );
        }
        keys.push(Key::FrameworkId);
        let paths: Vec<String> = keys.iter().map(|k| layout.path(k)).collect();
        let reads = join_all(paths.iter().map(|p| client.get_data(p))).await;
        let mut snapshot = Snapshot::default();
        for ((key, path), result) in keys.into_iter().zip(&paths).zip(reads) {
            match result {
                Ok((bytes, _)) => snapshot.insert(key, decode_record(path, &bytes)?, path)?,
                // Deleted between listing and reading.
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(StoreError::from_zk(e, path)),
            }
        }
        Ok(snapshot)
    }
}

/// Children of a directory; an absent directory has none.
async fn list(client: &zk::Client, dir: &str) -> Result<Vec<String>, StoreError> {
    match client.list_children(dir).await {
        Ok(children) => Ok(children),
        Err(zk::Error::NoNode) => Ok(Vec::new()),
        Err(e) => Err(StoreError::from_zk(e, dir)),
    }
}

impl StateStore for ZkStore {
    fn fence(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.fence_now())
    }

    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(self.load_now())
    }

    fn commit(&self, ops: Vec<StoreOp>) -> StoreFuture<'_, ()> {
        Box::pin(self.commit_now(ops))
    }
}
