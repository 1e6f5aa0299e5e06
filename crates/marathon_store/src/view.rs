//! `StoreView`: a standby's copy of the store, kept current by ZooKeeper watches, so that a newly
//! elected leader serves at once instead of re-reading thousands of records (Marathon timed out).
//!
//! One background task owns the copy. It lists the five state directories and every app's
//! directory with a children watch, and reads every record with a data watch (the framework id
//! with an exists watch while absent). A fired watch re-reads only what it names: a directory's
//! new children, or one record. Readers get a cheap `Arc<Snapshot>`, published after each batch.
//!
//! `wait_caught_up()` makes the view reflect every write committed before the call: the task
//! issues `sync` and, once it returns, handles every watch event already delivered. ZooKeeper
//! delivers a watch event before the response to any later request of the same session, so every
//! change committed before the `sync` has fired its watch by then. A new leader calls it after
//! `fence()` (no one else writes any more), so the view then equals the store.
//!
//! A failed read (connection loss) marks the view dirty and the task rebuilds from scratch shortly
//! after; session loss ends the view (`SessionLost`), as it ends the leadership.

use crate::layout::{decode_name, Key, Layout};
use crate::ops::decode_record;
use crate::zk::{is_terminal, ZkConnection};
use crate::{Snapshot, StoreError};
use futures::future::{join_all, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use zookeeper_client as zk;

/// Pause before rebuilding the view after a failed read.
const RESYNC_DELAY: Duration = Duration::from_millis(200);

type Reply = oneshot::Sender<Result<Arc<Snapshot>, StoreError>>;

/// A live, watched copy of the store.
pub struct StoreView {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    requests: mpsc::UnboundedSender<Reply>,
    task: tokio::task::JoinHandle<()>,
}

impl StoreView {
    /// Starts watching the store under the connection's root. The first snapshot is empty until
    /// the initial read is done; `wait_caught_up()` waits for it.
    pub fn start(connection: ZkConnection) -> StoreView {
        let (tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let (requests, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(Follower::new(connection, tx).run(rx));
        StoreView {
            snapshot,
            requests,
            task,
        }
    }

    /// The latest copy (may lag the store by the time a watch takes to arrive).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes whenever the copy changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Returns a copy that reflects every write committed before this call.
    pub async fn wait_caught_up(&self) -> Result<Arc<Snapshot>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .map_err(|_| StoreError::SessionLost)?;
        answer.await.map_err(|_| StoreError::SessionLost)?
    }
}

impl Drop for StoreView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a fired watch was set on.
#[derive(Debug, Clone)]
enum Target {
    AppsDir,
    RecordsDir(fn(String) -> Key, String),
    AppDir(String),
    Record(Key),
}

type Pending = FuturesUnordered<BoxFuture<'static, (Target, zk::WatchedEvent)>>;

struct Follower {
    connection: ZkConnection,
    layout: Layout,
    tx: watch::Sender<Arc<Snapshot>>,
    snapshot: Snapshot,
    /// Apps whose directory we list and watch.
    app_dirs: BTreeSet<String>,
    pending: Pending,
    changed: bool,
    dirty: bool,
    lost: bool,
}

impl Follower {
    fn new(connection: ZkConnection, tx: watch::Sender<Arc<Snapshot>>) -> Follower {
        let layout = connection.layout.clone();
        Follower {
            connection,
            layout,
            tx,
            snapshot: Snapshot::default(),
            app_dirs: BTreeSet::new(),
            pending: FuturesUnordered::new(),
            changed: false,
            dirty: false,
            lost: false,
        }
    }

    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Reply>) {
        let mut state = self.connection.client.state_watcher();
        self.rebuild().await;
        loop {
            tokio::select! {
                biased;
                request = requests.recv() => match request {
                    None => return,
                    Some(reply) => {
                        let result = self.catch_up().await;
                        let _ = reply.send(result);
                    }
                },
                new_state = state.changed(), if !self.lost => {
                    if is_terminal(new_state) {
                        tracing::warn!(?new_state, "store view: ZooKeeper session lost");
                        self.lost = true;
                    }
                }
                Some((target, event)) = self.pending.next(), if !self.lost && !self.pending.is_empty() => {
                    self.handle(target, event).await;
                    self.drain().await;
                    self.publish();
                }
                _ = tokio::time::sleep(RESYNC_DELAY), if self.dirty && !self.lost => self.rebuild().await,
            }
        }
    }

    /// `sync`, then everything already delivered; a dirty view is rebuilt first.
    async fn catch_up(&mut self) -> Result<Arc<Snapshot>, StoreError> {
        if self.lost || is_terminal(self.connection.client.state()) {
            self.lost = true;
            return Err(StoreError::SessionLost);
        }
        let state = self.layout.state();
        self.connection
            .client
            .sync(&state)
            .await
            .map_err(|e| StoreError::from_zk(e, &state))?;
        self.drain().await;
        if self.dirty {
            self.rebuild().await;
        }
        if self.lost {
            return Err(StoreError::SessionLost);
        }
        if self.dirty {
            return Err(StoreError::ConnectionLoss);
        }
        self.publish();
        Ok(self.tx.borrow().clone())
    }

    /// Handles every watch event that has already arrived.
    async fn drain(&mut self) {
        while let Some(Some((target, event))) = self.pending.next().now_or_never() {
            self.handle(target, event).await;
        }
    }

    fn publish(&mut self) {
        if std::mem::take(&mut self.changed) {
            self.tx.send_replace(Arc::new(self.snapshot.clone()));
        }
    }

    /// Reads everything again with fresh watches (start, or after a failed read).
    async fn rebuild(&mut self) {
        self.pending = FuturesUnordered::new();
        self.snapshot = Snapshot::default();
        self.app_dirs.clear();
        self.dirty = false;
        self.changed = true;
        self.list_dir(Target::AppsDir).await;
        self.list_dir(Target::RecordsDir(
            Key::Instance,
            self.layout.instances_dir(),
        ))
        .await;
        self.list_dir(Target::RecordsDir(
            Key::Deployment,
            self.layout.deployments_dir(),
        ))
        .await;
        self.list_dir(Target::RecordsDir(
            Key::TaskFailure,
            self.layout.task_failures_dir(),
        ))
        .await;
        self.list_dir(Target::RecordsDir(
            Key::RetiredApp,
            self.layout.retired_dir(),
        ))
        .await;
        self.read_records(vec![Key::FrameworkId]).await;
        if !self.dirty {
            self.publish();
        }
    }

    async fn handle(&mut self, target: Target, event: zk::WatchedEvent) {
        if event.event_type == zk::EventType::Session {
            if is_terminal(event.session_state) {
                self.lost = true;
            }
            return;
        }
        match target {
            Target::AppsDir | Target::RecordsDir(..) => self.list_dir(target).await,
            Target::AppDir(app) => self.list_apps(vec![app]).await,
            Target::Record(key) => self.read_records(vec![key]).await,
        }
    }

    fn failed(&mut self, error: zk::Error, path: &str) {
        match StoreError::from_zk(error, path) {
            StoreError::SessionLost => self.lost = true,
            other => {
                tracing::warn!(error = %other, "store view: read failed; rebuilding shortly");
                self.dirty = true;
            }
        }
    }

    /// Lists a state directory (with a watch) and follows its new children, forgets gone ones.
    async fn list_dir(&mut self, target: Target) {
        let dir = match &target {
            Target::AppsDir => self.layout.apps_dir(),
            Target::RecordsDir(_, dir) => dir.clone(),
            _ => return,
        };
        let children = match self.connection.client.get_and_watch_children(&dir).await {
            Ok((children, _, watcher)) => {
                let t = target.clone();
                self.pending
                    .push(async move { (t, watcher.changed().await) }.boxed());
                children
                    .iter()
                    .filter_map(|c| decode_name(c))
                    .collect::<BTreeSet<String>>()
            }
            Err(e) => return self.failed(e, &dir),
        };
        match target {
            Target::AppsDir => {
                let gone: Vec<String> = self.app_dirs.difference(&children).cloned().collect();
                for app in gone {
                    self.app_dirs.remove(&app);
                    self.forget(&Key::App(app));
                }
                let new = children
                    .into_iter()
                    .filter(|a| !self.app_dirs.contains(a))
                    .collect();
                self.list_apps(new).await;
            }
            Target::RecordsDir(make, _) => {
                let known: BTreeSet<String> = match make(String::new()) {
                    Key::Instance(_) => self.snapshot.instances.keys().cloned().collect(),
                    Key::TaskFailure(_) => self.snapshot.task_failures.keys().cloned().collect(),
                    Key::RetiredApp(_) => self.snapshot.retired_apps.keys().cloned().collect(),
                    _ => self.snapshot.deployments.keys().cloned().collect(),
                };
                for id in known.difference(&children) {
                    self.forget(&make(id.clone()));
                }
                let new = children
                    .into_iter()
                    .filter(|id| !known.contains(id))
                    .map(make)
                    .collect();
                self.read_records(new).await;
            }
            _ => {}
        }
    }

    /// Lists app directories (with watches) and reads their new versions.
    async fn list_apps(&mut self, apps: Vec<String>) {
        let paths: Vec<String> = apps
            .iter()
            .map(|a| self.layout.path(&Key::App(a.clone())))
            .collect();
        let client = self.connection.client.clone();
        let results = join_all(paths.iter().map(|p| client.get_and_watch_children(p))).await;
        let mut new_versions = Vec::new();
        for ((app, path), result) in apps.into_iter().zip(&paths).zip(results) {
            match result {
                Ok((children, _, watcher)) => {
                    let target = Target::AppDir(app.clone());
                    self.pending
                        .push(async move { (target, watcher.changed().await) }.boxed());
                    self.app_dirs.insert(app.clone());
                    let versions: BTreeSet<String> =
                        children.iter().filter_map(|c| decode_name(c)).collect();
                    let known: BTreeSet<String> = self
                        .snapshot
                        .apps
                        .get(&app)
                        .map(|v| v.keys().cloned().collect())
                        .unwrap_or_default();
                    for gone in known.difference(&versions) {
                        self.forget(&Key::AppVersion(app.clone(), gone.clone()));
                    }
                    new_versions.extend(
                        versions
                            .difference(&known)
                            .map(|v| Key::AppVersion(app.clone(), v.clone())),
                    );
                }
                Err(zk::Error::NoNode) => {
                    self.app_dirs.remove(&app);
                    self.forget(&Key::App(app));
                }
                Err(e) => self.failed(e, path),
            }
        }
        self.read_records(new_versions).await;
    }

    /// Reads records with data watches; an absent framework id gets an exists watch instead.
    async fn read_records(&mut self, keys: Vec<Key>) {
        let paths: Vec<String> = keys.iter().map(|k| self.layout.path(k)).collect();
        let client = self.connection.client.clone();
        let results = join_all(paths.iter().map(|p| client.get_and_watch_data(p))).await;
        for ((key, path), result) in keys.into_iter().zip(&paths).zip(results) {
            match result {
                Ok((bytes, _, watcher)) => {
                    let target = Target::Record(key.clone());
                    self.pending
                        .push(async move { (target, watcher.changed().await) }.boxed());
                    let value = decode_record(path, &bytes);
                    match value.and_then(|v| self.snapshot.insert(key.clone(), v, path)) {
                        Ok(()) => self.changed = true,
                        // A bad record is reported and left out; the leader's load() refuses it.
                        Err(e) => {
                            tracing::error!(error = %e, "store view: cannot decode a record");
                            self.forget(&key);
                        }
                    }
                }
                Err(zk::Error::NoNode) => {
                    self.forget(&key);
                    if key == Key::FrameworkId {
                        match client.check_and_watch_stat(path).await {
                            Ok((stat, watcher)) => {
                                let target = Target::Record(Key::FrameworkId);
                                self.pending
                                    .push(async move { (target, watcher.changed().await) }.boxed());
                                if stat.is_some() {
                                    // Created between the two reads: read it now (its data
                                    // watch then follows it; the exists watch fires harmlessly).
                                    match client.get_and_watch_data(path).await {
                                        Ok((bytes, _, watcher)) => {
                                            let target = Target::Record(Key::FrameworkId);
                                            self.pending.push(
                                                async move { (target, watcher.changed().await) }
                                                    .boxed(),
                                            );
                                            if let Ok(value) = decode_record(path, &bytes) {
                                                let _ = self.snapshot.insert(
                                                    Key::FrameworkId,
                                                    value,
                                                    path,
                                                );
                                            }
                                        }
                                        Err(e) => self.failed(e, path),
                                    }
                                }
                            }
                            Err(e) => self.failed(e, path),
                        }
                    }
                }
                Err(e) => self.failed(e, path),
            }
        }
    }

    fn forget(&mut self, key: &Key) {
        self.snapshot.remove(key);
        self.changed = true;
    }
}
