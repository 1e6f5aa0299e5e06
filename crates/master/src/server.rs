//! The master's runtime: owns the core behind one lock, carries out its effects (records onto
//! framework and agent streams), runs the periodic timers (allocation, offer and failover timeouts,
//! heartbeats), and serves HTTP until shutdown.
//!
//! Effects are carried out while the lock is held: each is a non-blocking push onto an unbounded
//! channel, so the order the core decided is the order on the wire.

use crate::core::{Core, CoreConfig, Effect};
use crate::flags::{FlagError, MasterConfig, MasterFlags};
use bytes::Bytes;
use election::{Candidacy, Contender, Leader};
use proto::scheduler::Event;
use proto::{AgentId, FrameworkId, MasterInfo};
use registry::{Registry, RegistryStore};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Interval of HEARTBEAT events on scheduler streams and pings on agent streams (spec 8.2).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("registry: {0}")]
    Registry(#[from] registry::StoreError),
    /// More log replicas than `--quorum` allows (2*quorum-1): two disjoint quorums could form.
    #[error("{0}")]
    QuorumViolation(String),
    /// Fail-fast (mesos-ha.md 3.2): the process must exit and its supervisor restarts it.
    #[error("lost leadership ({0}); exiting (fail-fast), a supervisor restarts this master as a standby")]
    LostLeadership(String),
}

/// What goes down a stream: a framed record, or the end of the stream.
#[derive(Debug)]
pub enum Outbound {
    Record(Bytes),
    Close,
}

pub struct StreamHandle {
    pub stream_id: String,
    pub sender: mpsc::UnboundedSender<Outbound>,
}

pub struct AgentLink {
    pub connection: u64,
    pub sender: mpsc::UnboundedSender<Outbound>,
}

/// Everything behind the master's one lock.
pub struct Inner {
    pub core: Core,
    pub framework_streams: HashMap<FrameworkId, StreamHandle>,
    pub agent_links: HashMap<AgentId, AgentLink>,
    pub registry: Registry,
    /// Registry operations waiting for the next store, with their callers.
    registrar_queue: Vec<(
        Vec<registry::Operation>,
        tokio::sync::oneshot::Sender<Result<(), registry::StoreError>>,
    )>,
    next_connection: u64,
}

/// Why a running master must stop.
#[derive(Debug, Clone, PartialEq)]
pub enum Fatal {
    Registry(String),
    Quorum(String),
}

/// Whether this master leads; a standby knows the leader when one is detected.
#[derive(Debug, Clone, PartialEq)]
pub enum Leadership {
    Leading,
    /// Elected, still recovering the registry (mesos-ha.md 3.1 step 5: answer 503).
    Recovering,
    Following(Option<Box<Leader>>),
}

pub struct Master {
    pub config: MasterConfig,
    pub info: MasterInfo,
    pub start_time: f64,
    pub elected_time: Mutex<Option<f64>>,
    pub leadership: Mutex<Leadership>,
    /// The masters registered in the election (`host:port`, lowest sequence first), set once the
    /// master contends; the web UI offers them when the leader it shows stops answering.
    masters: std::sync::OnceLock<tokio::sync::watch::Receiver<Vec<String>>>,
    pub store: Box<dyn RegistryStore>,
    /// Serializes registry updates: each is applied to a copy, stored, then made current, so two
    /// concurrent updates never overwrite each other (replicated-log.md 7: operations in order).
    registrar: tokio::sync::Mutex<()>,
    /// The replicated log's figures, when the registry lives there.
    pub log_stats: Option<tokio::sync::watch::Receiver<registrar::LogStats>>,
    /// Set when the master must stop (a registry write failed, or the quorum is violated).
    failure: tokio::sync::watch::Sender<Option<Fatal>>,
    inner: Mutex<Inner>,
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn frame<T: serde::Serialize>(message: &T) -> Bytes {
    // Serializing our own wire types cannot fail: they hold no maps with non-string keys.
    let json = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    Bytes::from(proto::recordio::encode(&json))
}

impl Inner {
    pub fn next_connection(&mut self) -> u64 {
        self.next_connection += 1;
        self.next_connection
    }

    /// Carries out effects in order.
    pub fn execute(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::ToFramework(id, event) => {
                    if let Some(stream) = self.framework_streams.get(&id) {
                        let _ = stream.sender.send(Outbound::Record(frame(&event)));
                    }
                }
                Effect::CloseFramework(id) => {
                    if let Some(stream) = self.framework_streams.remove(&id) {
                        let _ = stream.sender.send(Outbound::Close);
                    }
                }
                Effect::ToAgent(id, message) => {
                    if let Some(link) = self.agent_links.get(&id) {
                        let _ = link.sender.send(Outbound::Record(frame(&message)));
                    }
                }
                Effect::CloseAgent(id) => {
                    if let Some(link) = self.agent_links.remove(&id) {
                        let _ = link.sender.send(Outbound::Close);
                    }
                }
            }
        }
    }
}

impl Master {
    pub fn new(
        config: MasterConfig,
        store: Box<dyn RegistryStore>,
        log_stats: Option<tokio::sync::watch::Receiver<registrar::LogStats>>,
    ) -> Result<Arc<Master>, MasterError> {
        let id = uuid::Uuid::new_v4().to_string();
        let info = MasterInfo::new(
            id,
            config.advertise_ip,
            config.advertise_port,
            config.hostname.clone(),
        );
        let core_config = CoreConfig {
            offer_timeout_secs: config.offer_timeout_secs,
            agent_ping_timeout_secs: config.agent_ping_timeout_secs,
            max_agent_ping_timeouts: config.max_agent_ping_timeouts,
            agent_reregister_timeout_secs: config.agent_reregister_timeout_secs,
            completed_tasks_per_framework_max: config.max_completed_tasks_per_framework,
            completed_frameworks_max: config.max_completed_frameworks,
        };
        let registry = Registry::default();
        Ok(Arc::new(Master {
            info: info.clone(),
            start_time: now_secs(),
            elected_time: Mutex::new(None),
            leadership: Mutex::new(Leadership::Following(None)),
            masters: std::sync::OnceLock::new(),
            store,
            registrar: tokio::sync::Mutex::new(()),
            log_stats,
            failure: tokio::sync::watch::channel(None).0,
            inner: Mutex::new(Inner {
                core: Core::new(info, core_config),
                framework_streams: HashMap::new(),
                agent_links: HashMap::new(),
                registry,
                registrar_queue: Vec::new(),
                next_connection: 0,
            }),
            config,
        }))
    }

    /// The lock over the core and the streams. A poisoned lock (a panic elsewhere while holding it)
    /// still yields the data: the core's methods leave it consistent between calls.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every master registered in the election, lowest sequence first (empty without ZooKeeper).
    pub fn known_masters(&self) -> Vec<String> {
        self.masters
            .get()
            .map(|masters| masters.borrow().clone())
            .unwrap_or_default()
    }

    pub fn is_leader(&self) -> bool {
        self.leadership() == Leadership::Leading
    }

    /// Applies registry operations and stores the result; the in-memory copy changes only once the
    /// store succeeded, and callers act only after that ("a new agent is written to the registry
    /// before it is told it is registered", mesos-ha.md 3.7). Operations that arrive while a store
    /// is in flight are batched into the next one, in order (replicated-log.md 7), so a thousand
    /// agents re-registering cost a handful of log writes, not a thousand.
    pub async fn update_registry(
        &self,
        operations: &[registry::Operation],
    ) -> Result<(), registry::StoreError> {
        let (reply, mut result) = tokio::sync::oneshot::channel();
        self.lock()
            .registrar_queue
            .push((operations.to_vec(), reply));
        let _serial = self.registrar.lock().await;
        if let Ok(done) = result.try_recv() {
            return done;
        }
        let (batch, mut next) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.registrar_queue),
                inner.registry.clone(),
            )
        };
        let mut changed = false;
        for (operations, _) in &batch {
            for operation in operations {
                changed |= next.apply(operation);
            }
        }
        let outcome = if changed {
            self.store.store(&next).await
        } else {
            Ok(())
        };
        if outcome.is_ok() && changed {
            self.lock().registry = next;
        }
        for (_, reply) in batch {
            let _ = reply.send(outcome.clone());
        }
        result.await.unwrap_or(outcome)
    }

    /// A registry write failed: the leader must abort (mesos-ha.md 3.2).
    pub fn registry_failed(&self, reason: String) {
        self.failure.send_replace(Some(Fatal::Registry(reason)));
    }

    /// This master must not take part: the log has more replicas than the quorum allows.
    pub fn quorum_violated(&self, reason: String) {
        self.failure.send_replace(Some(Fatal::Quorum(reason)));
    }

    /// Becomes leader: recovers the registry (fetch, then store the new MasterInfo) before serving
    /// (mesos-ha.md 3.1 step 3). Any failure aborts the process (fail-fast, 3.2).
    async fn become_leader(&self) -> Result<(), MasterError> {
        *self.leadership.lock().unwrap_or_else(|p| p.into_inner()) = Leadership::Recovering;
        tracing::info!(id = %self.info.id, "elected; recovering the registry");
        let fetched = self.store.fetch().await?;
        tracing::info!(agents = fetched.agents.len(), "registry fetched");
        {
            let mut inner = self.lock();
            let waiting: Vec<_> = fetched
                .agents
                .iter()
                .filter(|a| a.id.as_ref().is_some_and(|id| !fetched.is_unreachable(id)))
                .cloned()
                .collect();
            inner.core.recover_agents(now_secs(), waiting);
            inner.core.recover_unreachable(
                fetched
                    .unreachable
                    .iter()
                    .map(|m| (m.id.clone(), m.timestamp)),
            );
            inner.registry = fetched;
        }
        self.update_registry(&[registry::Operation::UpdateMasterInfo(self.info.clone())])
            .await?;
        *self.elected_time.lock().unwrap_or_else(|p| p.into_inner()) = Some(now_secs());
        *self.leadership.lock().unwrap_or_else(|p| p.into_inner()) = Leadership::Leading;
        tracing::info!(id = %self.info.id, pid = %self.info.pid, "elected leader");
        Ok(())
    }

    fn tick(self: &Arc<Self>) {
        if !self.is_leader() {
            return;
        }
        let now = now_secs();
        let overdue = {
            let mut inner = self.lock();
            let effects = inner.core.tick(now);
            inner.execute(effects);
            inner.core.overdue_recovered_agents(now)
        };
        for id in overdue {
            tracing::warn!(agent = %id, "agent did not re-register within --agent_reregister_timeout");
            self.clone().mark_unreachable(id);
        }
    }

    /// One ping round (every `--agent_ping_timeout`).
    fn ping_round(self: &Arc<Self>) {
        if !self.is_leader() {
            return;
        }
        let exhausted = {
            let mut inner = self.lock();
            let (effects, exhausted) = inner.core.ping_agents();
            inner.execute(effects);
            exhausted
        };
        for id in exhausted {
            tracing::warn!(agent = %id, "agent missed --max_agent_ping_timeouts pings");
            self.clone().mark_unreachable(id);
        }
    }

    /// Records the agent as unreachable in the registry, then acts on it (mesos-ha.md 3.4: the
    /// registry write comes first).
    pub fn mark_unreachable(self: Arc<Self>, id: AgentId) {
        tokio::spawn(async move {
            let now = now_secs();
            let operation = registry::Operation::MarkUnreachable {
                id: id.clone(),
                timestamp: now,
            };
            if let Err(e) = self.update_registry(&[operation]).await {
                self.registry_failed(e.to_string());
                return;
            }
            let mut inner = self.lock();
            let effects = inner.core.mark_unreachable(now, &id);
            inner.execute(effects);
        });
    }

    fn heartbeat(&self) {
        let inner = self.lock();
        let heartbeat = frame(&Event::heartbeat());
        for stream in inner.framework_streams.values() {
            let _ = stream.sender.send(Outbound::Record(heartbeat.clone()));
        }
    }
}

/// Runs a master until `shutdown` resolves or leadership is lost.
pub async fn run(
    flags: MasterFlags,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let config = flags.validate()?;
    let contender: Arc<dyn Contender> = match &config.zk {
        Some(url) => Arc::new(election::ZooKeeperContender {
            url: url.clone(),
            session_timeout: Duration::from_secs_f64(config.zk_session_timeout_secs),
        }),
        None => Arc::new(election::StandaloneContender),
    };
    let (store, log_stats, log_router, membership) = open_registry(&config)?;
    let quorum_check = match (&membership, config.zk.is_some(), config.quorum) {
        (Some(m), true, Some(quorum)) => Some((m.members.clone(), quorum)),
        _ => None,
    };
    let session_timeout = Duration::from_secs_f64(config.zk_session_timeout_secs);
    let master = Master::new(config, store, log_stats)?;
    if let Some(stats) = master.log_stats.clone() {
        // A writer demoted by a higher proposal must not go on as leader (fail-fast).
        let weak = Arc::downgrade(&master);
        tokio::spawn(async move {
            let mut stats = stats;
            if stats
                .wait_for(|s| s.writer_demoted || s.storage_error.is_some())
                .await
                .is_ok()
            {
                if let Some(master) = weak.upgrade() {
                    let reason = stats.borrow().storage_error.clone().unwrap_or_else(|| {
                        "another master's higher proposal fenced this writer".into()
                    });
                    master.registry_failed(reason);
                }
            }
        });
    }
    if let Some((members, quorum)) = quorum_check {
        let own = format!(
            "log-replica(1)@{}:{}",
            master.config.advertise_ip, master.config.advertise_port
        );
        tokio::spawn(check_quorum(
            Arc::downgrade(&master),
            members,
            quorum,
            own,
            session_timeout,
        ));
    }
    let address = format!("{}:{}", master.config.bind_ip, master.config.port);
    let listener = bind(&address).map_err(|source| MasterError::Bind {
        address: address.clone(),
        source,
    })?;
    tracing::info!(%address, id = %master.info.id, "master listening");
    let result = serve_with(master, listener, contender, log_router, shutdown).await;
    if let Some(membership) = membership {
        membership.leave().await;
    }
    result
}

/// Pending connections the kernel queues for us. tokio's default (128) overflows when a thousand
/// agents re-register at once after a failover, and each dropped SYN costs its agent a 1 s retry.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds with a backlog large enough for a re-registration storm.
pub fn bind(address: &str) -> std::io::Result<tokio::net::TcpListener> {
    let address: std::net::SocketAddr = address.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{address}: {e}"))
    })?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Takes an exclusive lock on `<work_dir>/.tepui-master.lock` for the life of the process, so two
/// masters can never write one log directory.
fn lock_work_dir(work_dir: &std::path::Path) -> Result<(), MasterError> {
    use std::os::fd::AsRawFd;
    let unavailable =
        |message: String| MasterError::Registry(registry::StoreError::Unavailable(message));
    std::fs::create_dir_all(work_dir)
        .map_err(|e| unavailable(format!("--work_dir {}: {e}", work_dir.display())))?;
    let path = work_dir.join(".tepui-master.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor we own; the file is leaked below so the lock lives as long as
    // the process.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(unavailable(format!(
            "{} is in use by another master (lock {})",
            work_dir.display(),
            path.display()
        )));
    }
    std::mem::forget(file);
    Ok(())
}

/// The operational guide's rule: run exactly `2*quorum-1` masters; more could form two disjoint
/// quorums and corrupt the log. A master that joins and finds `2*quorum` or more replicas, still so
/// once stale sessions had time to expire, refuses to run. Later excess (someone else joined) is
/// reported on every change.
async fn check_quorum(
    master: std::sync::Weak<Master>,
    mut members: tokio::sync::watch::Receiver<std::collections::BTreeSet<String>>,
    quorum: usize,
    own: String,
    session_timeout: Duration,
) {
    let allowed = 2 * quorum - 1;
    if members.wait_for(|m| m.contains(&own)).await.is_err() {
        return;
    }
    let count = members.borrow().len();
    if count > allowed {
        // A replica that just died still has its node until its session expires: look again then.
        tokio::time::sleep(session_timeout + Duration::from_secs(1)).await;
        let count = members.borrow().len();
        if count > allowed {
            if let Some(master) = master.upgrade() {
                // 2*quorum <= count: two disjoint groups of `quorum` masters could each accept writes.
                master.quorum_violated(format!(
                    "--quorum={quorum} is not a majority of the {count} masters registered in ZooKeeper ({count} log replicas, \
                     at most {allowed} allowed); set --quorum={majority} on every master, or stop the extra master, as the operational guide describes",
                    majority = count / 2 + 1
                ));
            }
            return;
        }
    }
    while members.changed().await.is_ok() {
        let count = members.borrow_and_update().len();
        if count > allowed {
            tracing::error!(
                count,
                quorum,
                "more log replicas than --quorum allows; stop the extra master"
            );
        }
    }
}

type OpenedRegistry = (
    Box<dyn RegistryStore>,
    Option<tokio::sync::watch::Receiver<registrar::LogStats>>,
    Option<axum::Router>,
    Option<election::Membership>,
);

/// The registry store the flags ask for. With the replicated log: the local replica on disk, its
/// network from ZooKeeper's `log_replicas` (or only itself without --zk), and the route peers post to.
fn open_registry(config: &MasterConfig) -> Result<OpenedRegistry, MasterError> {
    if config.registry == crate::flags::RegistryKind::InMemory {
        return Ok((
            Box::new(registry::InMemoryStore::default()),
            None,
            None,
            None,
        ));
    }
    let work_dir = config.work_dir.clone().ok_or_else(|| {
        MasterError::Flag(FlagError {
            flag: "work_dir",
            message: "is required with --registry=replicated_log".into(),
        })
    })?;
    let log_dir = work_dir.join("replicated_log");
    lock_work_dir(&work_dir)?;
    let storage = replog::DiskStorage::open(&log_dir).map_err(|e| {
        MasterError::Registry(registry::StoreError::Unavailable(format!(
            "{}: {e}",
            log_dir.display()
        )))
    })?;
    let address = format!("{}:{}", config.advertise_ip, config.advertise_port);
    let (quorum, membership) = match &config.zk {
        Some(url) => {
            let membership = election::Membership::zookeeper(
                url,
                "log_replicas",
                Duration::from_secs_f64(config.zk_session_timeout_secs),
                format!("log-replica(1)@{address}"),
            );
            (config.quorum.unwrap_or(1), membership)
        }
        // Without ZooKeeper the log runs with quorum 1 and only the local replica (spec 1).
        None => (
            1,
            election::Membership::fixed(
                [format!("log-replica(1)@{address}")].into_iter().collect(),
            ),
        ),
    };
    let log_config = registrar::LogConfig {
        address: address.clone(),
        quorum,
        auto_initialize: config.log_auto_initialize,
    };
    let handle = registrar::LogHandle::start(log_config, Box::new(storage))
        .map_err(|e| MasterError::Registry(registry::StoreError::Unavailable(e.to_string())))?;
    registrar::runtime::follow_membership(&handle, membership.members.clone(), address);
    let router = registrar::transport::router(handle.inbox.clone());
    let stats = handle.stats.clone();
    let store = registrar::LogStore::new(
        handle,
        Duration::from_secs_f64(config.registry_fetch_timeout_secs),
        Duration::from_secs_f64(config.registry_store_timeout_secs),
    );
    Ok((Box::new(store), Some(stats), Some(router), Some(membership)))
}

/// Serves on an already bound listener (tests bind port 0 and read the address first).
pub async fn serve(
    master: Arc<Master>,
    listener: tokio::net::TcpListener,
    contender: Arc<dyn Contender>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    serve_with(master, listener, contender, None, shutdown).await
}

async fn serve_with(
    master: Arc<Master>,
    listener: tokio::net::TcpListener,
    contender: Arc<dyn Contender>,
    extra_routes: Option<axum::Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let election = contender.contend(master.info.clone());
    let mut candidacy = election.candidacy.clone();
    let mut leader = election.leader.clone();
    if master.masters.set(election.masters.clone()).is_err() {
        tracing::warn!(
            "this master already contended once; its list of masters stays the first election's"
        );
    }
    let mut app = crate::http::router(master.clone());
    if let Some(routes) = extra_routes {
        app = app.merge(routes);
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // Stream records are small: without TCP_NODELAY each waits for the client's delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });

    let mut allocation = tokio::time::interval(Duration::from_secs_f64(
        master.config.allocation_interval_secs,
    ));
    allocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = tokio::time::interval(Duration::from_secs_f64(
        master.config.agent_ping_timeout_secs,
    ));
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut election_over = false;
    let mut failure = master.failure.subscribe();
    let outcome = loop {
        // Fail-fast rules of mesos-ha.md 3.2: a leader whose candidacy is anything but elected
        // (session lost, membership gone, another master detected as leader) exits.
        let state = candidacy.borrow_and_update().clone();
        match state {
            Candidacy::Elected if !master.is_leader() => master.become_leader().await?,
            Candidacy::Elected => {}
            other if master.is_leader() => {
                break Err(MasterError::LostLeadership(format!("{other:?}")))
            }
            _ => {}
        }
        if !master.is_leader() && master.leadership() != Leadership::Recovering {
            let detected = leader.borrow_and_update().clone().map(Box::new);
            *master.leadership.lock().unwrap_or_else(|p| p.into_inner()) =
                Leadership::Following(detected);
        }
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            fatal = async { failure.wait_for(|f| f.is_some()).await.map(|f| f.clone()) } => {
                break Err(match fatal {
                    Ok(Some(Fatal::Quorum(reason))) => MasterError::QuorumViolation(reason),
                    Ok(Some(Fatal::Registry(reason))) => MasterError::Registry(registry::StoreError::Unavailable(reason)),
                    _ => MasterError::Registry(registry::StoreError::Unavailable("registrar stopped".into())),
                });
            }
            changed = candidacy.changed(), if !election_over => {
                if changed.is_err() && master.is_leader() {
                    break Err(MasterError::LostLeadership("the election ended".into()));
                }
                // The election loop ended for a standby: nothing more will change.
                election_over = changed.is_err();
            }
            changed = leader.changed(), if !election_over => election_over = changed.is_err(),
            _ = allocation.tick() => master.tick(),
            _ = heartbeat.tick() => master.heartbeat(),
            _ = pings.tick() => master.ping_round(),
        }
    };
    // From here on this master serves nobody: new subscriptions and agents get 503 and go to the
    // next leader instead of opening streams that would hold the shutdown up.
    *master.leadership.lock().unwrap_or_else(|p| p.into_inner()) = Leadership::Following(None);
    // Leave the election first, so a graceful stop hands leadership over at once.
    election.withdraw().await;
    {
        // Close every stream so clients see the end at once instead of waiting for a heartbeat.
        let mut inner = master.lock();
        for (_, stream) in inner.framework_streams.drain() {
            let _ = stream.sender.send(Outbound::Close);
        }
        for (_, link) in inner.agent_links.drain() {
            let _ = link.sender.send(Outbound::Close);
        }
    }
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(MasterError::Serve(e)),
        Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
    }
    outcome
}
