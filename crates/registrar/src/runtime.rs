//! The log's runtime: one task owns the `replog::Node` and its `Storage`, takes inputs (messages,
//! appends, leadership, membership, ticks) from a channel, and carries out the node's commands in
//! order. A `Persist` command is written and fsynced before any later command runs, so no reply
//! leaves before the state it promises is durable (replicated-log.md 1).

use crate::transport::Transport;
use replog::{
    Command, Envelope, Node, NodeConfig, PersistOp, Position, ReplicaId, ReplicaStatus, Storage,
    Value, WriteError,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Timer resolution of the protocol (retransmits, recovery rounds).
const TICK: Duration = Duration::from_millis(50);

/// A replica's id: FNV-1a of its `ip:port`, so every master derives the same id for a peer.
pub fn replica_id(address: &str) -> ReplicaId {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in address.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `ip:port` of this master, as peers reach it.
    pub address: String,
    pub quorum: usize,
    pub auto_initialize: bool,
}

pub enum Input {
    Receive(Envelope),
    Append(Vec<u8>, oneshot::Sender<Result<Position, WriteError>>),
    Truncate(Position),
    StartWriter,
    StopWriter,
    /// The `ip:port` of every replica in the network (self included).
    Network(BTreeSet<String>),
    Read(oneshot::Sender<Vec<(Position, Value)>>),
}

/// What the rest of the master can see without asking the task.
#[derive(Debug, Clone, Default)]
pub struct LogStats {
    pub status: Option<ReplicaStatus>,
    pub writer_elected: bool,
    pub writer_demoted: bool,
    pub ensemble_size: usize,
    pub storage_error: Option<String>,
}

#[derive(Clone)]
pub struct LogHandle {
    pub inbox: mpsc::UnboundedSender<Input>,
    pub stats: watch::Receiver<LogStats>,
}

impl LogHandle {
    /// Starts the runtime task over `storage` (already restored into `node`).
    pub fn start(
        config: LogConfig,
        mut storage: Box<dyn Storage>,
    ) -> Result<LogHandle, replog::StorageError> {
        let restored = storage.restore()?;
        let id = replica_id(&config.address);
        // A fresh seed per process start, so a late reply to an earlier incarnation's request can
        // never pass for a new one (the core's request ids derive from it).
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = id ^ (u64::from(std::process::id()) << 32) ^ wall;
        let node = Node::new(
            NodeConfig {
                id,
                quorum: config.quorum,
                auto_initialize: config.auto_initialize,
                seed,
            },
            restored,
        );
        let (inbox, rx) = mpsc::unbounded_channel();
        let (stats_tx, stats) = watch::channel(LogStats {
            status: Some(node.status()),
            ..LogStats::default()
        });
        let runtime = Runtime {
            node,
            storage,
            transport: Transport::default(),
            addresses: HashMap::from([(id, config.address.clone())]),
            pending: HashMap::new(),
            origin: Instant::now(),
            stats: stats_tx,
        };
        tokio::spawn(runtime.run(rx));
        Ok(LogHandle { inbox, stats })
    }

    pub async fn append(&self, bytes: Vec<u8>) -> Result<Position, WriteError> {
        let (tx, rx) = oneshot::channel();
        self.inbox
            .send(Input::Append(bytes, tx))
            .map_err(|_| WriteError::NotWriter)?;
        rx.await.map_err(|_| WriteError::NotWriter)?
    }

    pub async fn read(&self) -> Vec<(Position, Value)> {
        let (tx, rx) = oneshot::channel();
        if self.inbox.send(Input::Read(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

struct Runtime {
    node: Node,
    storage: Box<dyn Storage>,
    transport: Transport,
    addresses: HashMap<ReplicaId, String>,
    pending: HashMap<u64, oneshot::Sender<Result<Position, WriteError>>>,
    origin: Instant,
    stats: watch::Sender<LogStats>,
}

impl Runtime {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let commands = tokio::select! {
                input = inbox.recv() => match input {
                    None => return,
                    Some(input) => self.handle(input),
                },
                _ = tick.tick() => {
                    let now = self.now();
                    self.node.tick(now)
                }
            };
            if let Err(e) = self.execute(commands) {
                // A replica that cannot persist must not answer anything again.
                tracing::error!(error = %e, "replicated log storage failed; this replica stops");
                self.stats
                    .send_modify(|s| s.storage_error = Some(e.to_string()));
                return;
            }
        }
    }

    fn handle(&mut self, input: Input) -> Vec<Command> {
        let now = self.now();
        match input {
            Input::Receive(envelope) => self.node.receive(now, envelope),
            Input::Append(bytes, reply) => match self.node.append(now, bytes) {
                Ok((op, commands)) => {
                    self.pending.insert(op, reply);
                    commands
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                    Vec::new()
                }
            },
            Input::Truncate(to) => match self.node.truncate(now, to) {
                Ok((_, commands)) => commands,
                Err(_) => Vec::new(),
            },
            Input::StartWriter => self.node.start_writer(now),
            Input::StopWriter => {
                self.node.stop_writer();
                Vec::new()
            }
            Input::Network(addresses) => {
                self.addresses = addresses
                    .iter()
                    .map(|a| (replica_id(a), a.clone()))
                    .collect();
                let size = addresses.len();
                self.stats.send_modify(|s| s.ensemble_size = size);
                let members = self.addresses.keys().copied().collect();
                self.node.set_network(now, members)
            }
            Input::Read(reply) => {
                let _ = reply.send(self.node.learned(self.node.begin()));
                Vec::new()
            }
        }
    }

    fn execute(&mut self, commands: Vec<Command>) -> Result<(), replog::StorageError> {
        for command in commands {
            match command {
                Command::Persist(op) => match op {
                    // fsync happens inside the store; the log task is dedicated, so blocking here
                    // only delays this replica's own next step, which must wait anyway.
                    PersistOp::Metadata(m) => {
                        tokio::task::block_in_place(|| self.storage.persist_metadata(&m))?
                    }
                    PersistOp::Action(a) => {
                        tokio::task::block_in_place(|| self.storage.persist_action(&a))?
                    }
                    PersistOp::Truncate(to) => {
                        tokio::task::block_in_place(|| self.storage.truncate(to))?
                    }
                },
                Command::Send { to, envelope } => match self.addresses.get(&to) {
                    Some(address) => self.transport.send(address, &envelope),
                    None => {
                        tracing::debug!(replica = to, "no address for replica; message dropped")
                    }
                },
                Command::Completed { op, result } => {
                    if let Some(reply) = self.pending.remove(&op) {
                        let _ = reply.send(result);
                    }
                }
                Command::WriterElected { end } => {
                    tracing::info!(end, "replicated log writer elected");
                    self.stats.send_modify(|s| s.writer_elected = true);
                }
                Command::WriterDemoted => {
                    tracing::error!("replicated log writer demoted by a higher proposal");
                    self.stats.send_modify(|s| {
                        s.writer_elected = false;
                        s.writer_demoted = true;
                    });
                    for (_, reply) in self.pending.drain() {
                        let _ = reply.send(Err(WriteError::Demoted));
                    }
                }
                Command::StatusChanged(status) => {
                    tracing::info!(?status, "replica status changed");
                    self.stats.send_modify(|s| s.status = Some(status));
                }
            }
        }
        Ok(())
    }
}

/// Keeps the network in step with a membership watch (ZooKeeper `log_replicas`, or fixed).
pub fn follow_membership(
    handle: &LogHandle,
    mut members: watch::Receiver<BTreeSet<String>>,
    own: String,
) -> tokio::task::JoinHandle<()> {
    let inbox = handle.inbox.clone();
    tokio::spawn(async move {
        loop {
            let mut addresses: BTreeSet<String> = members
                .borrow_and_update()
                .iter()
                .map(|m| {
                    m.rsplit_once('@')
                        .map(|(_, a)| a.to_string())
                        .unwrap_or_else(|| m.clone())
                })
                .collect();
            addresses.insert(own.clone());
            if inbox.send(Input::Network(addresses)).is_err() {
                return;
            }
            if members.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Shared slot for the latest stats, for synchronous readers (metrics).
pub type SharedStats = Arc<Mutex<LogStats>>;
