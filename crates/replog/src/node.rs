//! `Node`: what one master runs: its replica (always), recovery (while not VOTING) and the
//! coordinator (while it leads), as one sans-IO state machine.
//!
//! The runtime feeds it events (`set_network`, `tick`, `receive`, `start_writer`, `append`,
//! `truncate`) with the current monotonic time and carries out the returned `Command`s **in
//! order**: a `Persist` must be durable before any later command runs (replicated-log.md 1:
//! "Every accepted promise/write is persisted before replying"); `Send`s are best effort. If a
//! persist fails the process must stop (crash) without running later commands: the in-memory
//! state is already ahead of the disk, and restarting restores the durable state.
//!
//! Messages from this node to itself never leave it: they are delivered locally, in order, so the
//! local replica persists before its own coordinator sees its vote.

use crate::coordinator::Coordinator;
use crate::net::Env;
use crate::recovery::Recovery;
use crate::replica::Replica;
use crate::rng::SplitMix64;
use crate::storage::State;
use crate::types::{
    Action, Envelope, Message, Metadata, Position, ReplicaId, ReplicaStatus, Value, FORMAT_VERSION,
};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// Bound on local delivery rounds within one event (each round delivers everything queued).
const LOCAL_ROUNDS_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeConfig {
    pub id: ReplicaId,
    /// `--quorum`: replies needed for every promise, write and recovery round (at least 1).
    pub quorum: usize,
    /// `--log_auto_initialize` (section 6.4).
    pub auto_initialize: bool,
    /// Seeds retry jitter and request ids. Give each process start a fresh seed (e.g. from the
    /// OS): request ids then differ between incarnations, so a late reply to a request sent
    /// before a restart cannot be mistaken for a reply to a new one.
    pub seed: u64,
}

/// A state change the runtime must make durable (the `Storage` operations).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PersistOp {
    Metadata(Metadata),
    Action(Action),
    /// Forget positions below this one (after a learned TRUNCATE).
    Truncate(Position),
}

/// Identifies an append or truncate in `Command::Completed`.
pub type OpId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WriteError {
    #[error("this node is not the elected writer")]
    NotWriter,
    /// Another proposer took over: the leader must abort. The write may or may not be chosen.
    #[error("demoted: a higher proposal was promised, another writer took over")]
    Demoted,
    /// `stop_writer` was called while the operation was queued or in flight (outcome unknown).
    #[error("the writer was stopped before the operation completed")]
    Stopped,
    #[error("too many operations queued (at most {max})")]
    QueueFull { max: usize },
    #[error("cannot truncate to {to}: the truncate itself would be written at {position}")]
    TruncateBeyondEnd { to: Position, position: Position },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// Must be durable before any later command runs.
    Persist(PersistOp),
    /// Delivered best-effort (may be lost, duplicated, reordered).
    Send { to: ReplicaId, envelope: Envelope },
    /// Outcome of an append/truncate. `Ok` only once a quorum has it durable (and the local
    /// replica has learned it).
    Completed {
        op: OpId,
        result: Result<Position, WriteError>,
    },
    /// The coordinator won the election and its local replica has learned every position up to
    /// `end`; appends go to `end + 1` on.
    WriterElected { end: Position },
    /// Lost to a higher proposal: the leader must abort (fail-fast).
    WriterDemoted,
    /// The local replica's status changed (e.g. VOTING reached: `registrar/log/recovered`).
    StatusChanged(ReplicaStatus),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    config: NodeConfig,
    members: BTreeSet<ReplicaId>,
    replica: Replica,
    recovery: Recovery,
    coordinator: Coordinator,
    rng: SplitMix64,
    next_request_id: u64,
    /// Completions owed from `stop_writer` (which returns nothing), emitted by the next call.
    owed: Vec<Command>,
}

impl Node {
    pub fn new(config: NodeConfig, restored: State) -> Node {
        let config = NodeConfig {
            quorum: config.quorum.max(1),
            ..config
        };
        let mut rng = SplitMix64::new(config.seed);
        let next_request_id = rng.next_u64();
        let replica = Replica::restore(restored);
        let recovery = Recovery::new(replica.status(), config.auto_initialize);
        Node {
            members: BTreeSet::from([config.id]),
            config,
            replica,
            recovery,
            coordinator: Coordinator::new(),
            rng,
            next_request_id,
            owed: Vec::new(),
        }
    }

    /// The replicas to broadcast to (from ZooKeeper or flags); this node is always included.
    pub fn set_network(&mut self, now: Duration, members: BTreeSet<ReplicaId>) -> Vec<Command> {
        self.members = members;
        self.members.insert(self.config.id);
        self.run(now, VecDeque::new())
    }

    /// Timers: recovery rounds, retransmits, election retries, fill back-offs. Call it often
    /// (every 50-100 ms); nothing happens between calls.
    pub fn tick(&mut self, now: Duration) -> Vec<Command> {
        self.run(now, VecDeque::new())
    }

    pub fn receive(&mut self, now: Duration, envelope: Envelope) -> Vec<Command> {
        let mut work = VecDeque::new();
        self.deliver(now, envelope, &mut work);
        self.run(now, work)
    }

    /// This master leads: elect (retrying) until elected, once the local replica is VOTING.
    pub fn start_writer(&mut self, now: Duration) -> Vec<Command> {
        self.coordinator.start(now);
        self.run(now, VecDeque::new())
    }

    /// Stops writing. Queued and in-flight operations complete with `Err(Stopped)` on the next
    /// call (their outcome is unknown: an in-flight write may still be chosen).
    pub fn stop_writer(&mut self) {
        for op in self.coordinator.stop() {
            self.owed.push(Command::Completed {
                op,
                result: Err(WriteError::Stopped),
            });
        }
    }

    pub fn append(
        &mut self,
        now: Duration,
        bytes: Vec<u8>,
    ) -> Result<(OpId, Vec<Command>), WriteError> {
        let op = self.coordinator.submit(Value::Append { bytes })?;
        Ok((op, self.run(now, VecDeque::new())))
    }

    /// Appends a TRUNCATE: once learned, positions below `to` are gone everywhere.
    pub fn truncate(
        &mut self,
        now: Duration,
        to: Position,
    ) -> Result<(OpId, Vec<Command>), WriteError> {
        let op = self.coordinator.submit(Value::Truncate { to })?;
        Ok((op, self.run(now, VecDeque::new())))
    }

    pub fn status(&self) -> ReplicaStatus {
        self.replica.status()
    }

    pub fn is_writer_elected(&self) -> bool {
        self.coordinator.is_elected()
    }

    pub fn begin(&self) -> Position {
        self.replica.begin()
    }

    /// The last position stored locally (learned or not), `None` for an empty log.
    pub fn end(&self) -> Option<Position> {
        self.replica.last()
    }

    /// Learned entries in order from `from` (local reads; the writer after election holds all
    /// learned). Starts at `max(from, begin)` and stops at the first position not learned here;
    /// NOPs (fills, tombstones) are included.
    pub fn learned(&self, from: Position) -> Vec<(Position, Value)> {
        self.replica.learned_from(from)
    }

    /// Hands one incoming message to the role it is for. Requests and `Learned` go to the
    /// replica (its reply follows its persists); responses to whichever role owns the request id.
    fn deliver(&mut self, now: Duration, envelope: Envelope, work: &mut VecDeque<Command>) {
        if envelope.format_version != FORMAT_VERSION {
            return; // a format this release does not speak: as if lost
        }
        let Envelope {
            from,
            request_id,
            message,
            ..
        } = envelope;
        let mut env = Env {
            now,
            id: self.config.id,
            quorum: self.config.quorum,
            members: &self.members,
            rng: &mut self.rng,
            next_request_id: &mut self.next_request_id,
            out: work,
        };
        match message {
            Message::PromiseRequest { .. }
            | Message::WriteRequest { .. }
            | Message::Learned { .. }
            | Message::RecoverRequest => {
                let handled = self.replica.handle(message);
                env.persist(handled.persist);
                if let Some(reply) = handled.reply {
                    env.send(from, request_id, reply);
                }
            }
            Message::PromiseResponse { .. }
            | Message::WriteResponse { .. }
            | Message::RecoverResponse { .. } => {
                let (replica, coordinator) = (&mut self.replica, &mut self.coordinator);
                if !coordinator.on_message(&mut env, replica, from, request_id, message.clone()) {
                    self.recovery
                        .on_message(&mut env, replica, from, request_id, message);
                }
            }
        }
    }

    /// Polls every role, delivers local messages, and repeats until nothing new is queued.
    fn run(&mut self, now: Duration, mut work: VecDeque<Command>) -> Vec<Command> {
        let mut out = std::mem::take(&mut self.owed);
        for _ in 0..LOCAL_ROUNDS_MAX {
            {
                let mut env = Env {
                    now,
                    id: self.config.id,
                    quorum: self.config.quorum,
                    members: &self.members,
                    rng: &mut self.rng,
                    next_request_id: &mut self.next_request_id,
                    out: &mut work,
                };
                self.recovery.poll(&mut env, &mut self.replica);
                self.coordinator.poll(&mut env, &mut self.replica);
            }
            if work.is_empty() {
                break;
            }
            while let Some(command) = work.pop_front() {
                match command {
                    Command::Send { to, envelope } if to == self.config.id => {
                        self.deliver(now, envelope, &mut work)
                    }
                    command => out.push(command),
                }
            }
        }
        out
    }
}
