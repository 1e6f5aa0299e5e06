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
use proto::agent_protocol::MasterToAgent;
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
    Bind { address: String, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("registry: {0}")]
    Registry(#[from] registry::StoreError),
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
    next_connection: u64,
}

/// Whether this master leads; a standby knows the leader when one is detected.
#[derive(Debug, Clone, PartialEq)]
pub enum Leadership {
    Leading,
    Following(Option<Box<Leader>>),
}

pub struct Master {
    pub config: MasterConfig,
    pub info: MasterInfo,
    pub start_time: f64,
    pub elected_time: Mutex<Option<f64>>,
    pub leadership: Mutex<Leadership>,
    pub store: Box<dyn RegistryStore>,
    inner: Mutex<Inner>,
}

pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
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
    pub fn new(config: MasterConfig, store: Box<dyn RegistryStore>) -> Result<Arc<Master>, MasterError> {
        let id = uuid::Uuid::new_v4().to_string();
        let info = MasterInfo::new(id, config.advertise_ip, config.advertise_port, config.hostname.clone());
        let core_config = CoreConfig {
            offer_timeout_secs: config.offer_timeout_secs,
            completed_tasks_per_framework_max: config.max_completed_tasks_per_framework,
            completed_frameworks_max: config.max_completed_frameworks,
        };
        let registry = store.fetch()?;
        Ok(Arc::new(Master {
            info: info.clone(),
            start_time: now_secs(),
            elected_time: Mutex::new(None),
            leadership: Mutex::new(Leadership::Following(None)),
            store,
            inner: Mutex::new(Inner {
                core: Core::new(info, core_config),
                framework_streams: HashMap::new(),
                agent_links: HashMap::new(),
                registry,
                next_connection: 0,
            }),
            config,
        }))
    }

    /// The lock over the core and the streams. A poisoned lock (a panic elsewhere while holding it)
    /// still yields the data: the core's methods leave it consistent between calls.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leadership() == Leadership::Leading
    }

    /// Becomes leader: records the new MasterInfo in the registry first (mesos-ha.md 3.1 step 3).
    fn become_leader(&self) -> Result<(), MasterError> {
        {
            let mut inner = self.lock();
            let operation = registry::Operation::UpdateMasterInfo(self.info.clone());
            inner.registry.apply(&operation);
            self.store.store(&inner.registry)?;
        }
        *self.elected_time.lock().unwrap_or_else(|p| p.into_inner()) = Some(now_secs());
        *self.leadership.lock().unwrap_or_else(|p| p.into_inner()) = Leadership::Leading;
        tracing::info!(id = %self.info.id, pid = %self.info.pid, "elected leader");
        Ok(())
    }

    fn tick(&self) {
        if !self.is_leader() {
            return;
        }
        let mut inner = self.lock();
        let effects = inner.core.tick(now_secs());
        inner.execute(effects);
    }

    fn heartbeat(&self) {
        let mut inner = self.lock();
        let heartbeat = frame(&Event::heartbeat());
        for stream in inner.framework_streams.values() {
            let _ = stream.sender.send(Outbound::Record(heartbeat.clone()));
        }
        let ping = frame(&MasterToAgent::Ping);
        for link in inner.agent_links.values_mut() {
            let _ = link.sender.send(Outbound::Record(ping.clone()));
        }
    }
}

/// Runs a master until `shutdown` resolves or leadership is lost.
pub async fn run(flags: MasterFlags, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), MasterError> {
    let config = flags.validate()?;
    let contender: Arc<dyn Contender> = match &config.zk {
        Some(url) => Arc::new(election::ZooKeeperContender {
            url: url.clone(),
            session_timeout: Duration::from_secs_f64(config.zk_session_timeout_secs),
        }),
        None => Arc::new(election::StandaloneContender),
    };
    let store: Box<dyn RegistryStore> = Box::new(registry::InMemoryStore::default());
    let master = Master::new(config, store)?;
    let address = format!("{}:{}", master.config.bind_ip, master.config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| MasterError::Bind { address: address.clone(), source })?;
    tracing::info!(%address, id = %master.info.id, "master listening");
    serve(master, listener, contender, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the address first).
pub async fn serve(
    master: Arc<Master>,
    listener: tokio::net::TcpListener,
    contender: Arc<dyn Contender>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let election = contender.contend(master.info.clone());
    let mut candidacy = election.candidacy.clone();
    let mut leader = election.leader.clone();
    let app = crate::http::router(master.clone());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // Stream records are small: without TCP_NODELAY each waits for the client's delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });

    let mut allocation = tokio::time::interval(Duration::from_secs_f64(master.config.allocation_interval_secs));
    allocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut election_over = false;
    let outcome = loop {
        // Fail-fast rules of mesos-ha.md 3.2: a leader whose candidacy is anything but elected
        // (session lost, membership gone, another master detected as leader) exits.
        let state = candidacy.borrow_and_update().clone();
        match state {
            Candidacy::Elected if !master.is_leader() => master.become_leader()?,
            Candidacy::Elected => {}
            other if master.is_leader() => break Err(MasterError::LostLeadership(format!("{other:?}"))),
            _ => {}
        }
        if !master.is_leader() {
            let detected = leader.borrow_and_update().clone().map(Box::new);
            *master.leadership.lock().unwrap_or_else(|p| p.into_inner()) = Leadership::Following(detected);
        }
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
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
