//! The plumbing every protocol role shares: `Env` (the context of one event: time, membership,
//! randomness, the command queue) and `Round` (one broadcast request and its retransmission).
//!
//! Roles never talk to the network: they push `Command`s onto `Env::out`. The node then delivers
//! commands addressed to itself locally, in order, so the local replica persists before its reply
//! is seen, and hands the rest to the runtime.

use crate::node::{Command, PersistOp};
use crate::rng::SplitMix64;
use crate::types::{Envelope, Message, ReplicaId};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// A request not answered within this long is sent again to the replicas that have not given a
/// final answer (messages can be lost; replicas answer duplicates consistently).
pub const RETRANSMIT_INTERVAL: Duration = Duration::from_millis(300);

/// Section 5: "the loser retries with highest rejected + 1 after a random delay in [100 ms, 200 ms)".
pub const RETRY_DELAY_MIN: Duration = Duration::from_millis(100);
pub const RETRY_DELAY_MAX: Duration = Duration::from_millis(200);

/// The context of one event. Borrowed from the node's fields for the duration of a call.
pub(crate) struct Env<'a> {
    pub now: Duration,
    pub id: ReplicaId,
    pub quorum: usize,
    pub members: &'a BTreeSet<ReplicaId>,
    pub rng: &'a mut SplitMix64,
    pub next_request_id: &'a mut u64,
    pub out: &'a mut VecDeque<Command>,
}

impl Env<'_> {
    pub fn request_id(&mut self) -> u64 {
        *self.next_request_id = self.next_request_id.wrapping_add(1);
        *self.next_request_id
    }

    pub fn send(&mut self, to: ReplicaId, request_id: u64, message: Message) {
        self.out.push_back(Command::Send {
            to,
            envelope: Envelope::new(self.id, request_id, message),
        });
    }

    /// To every member of the network, this replica included (section 1: the network is the set of
    /// replicas "plus itself").
    pub fn broadcast(&mut self, request_id: u64, message: &Message) {
        let members: Vec<ReplicaId> = self.members.iter().copied().collect();
        for to in members {
            self.send(to, request_id, message.clone());
        }
    }

    /// To every other member: `Learned` needs no local delivery, the local replica learns first.
    pub fn broadcast_others(&mut self, request_id: u64, message: &Message) {
        let members: Vec<ReplicaId> = self
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.id)
            .collect();
        for to in members {
            self.send(to, request_id, message.clone());
        }
    }

    pub fn persist(&mut self, ops: impl IntoIterator<Item = PersistOp>) {
        self.out.extend(ops.into_iter().map(Command::Persist));
    }

    pub fn emit(&mut self, command: Command) {
        self.out.push_back(command);
    }

    /// `now` plus the random section-5 retry delay.
    pub fn retry_at(&mut self) -> Duration {
        self.now + self.rng.duration_between(RETRY_DELAY_MIN, RETRY_DELAY_MAX)
    }
}

/// One broadcast request: its id (echoed by replies, so stale replies are ignored), the message
/// for retransmission, and who has given a final answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Round {
    pub request_id: u64,
    message: Message,
    answered: BTreeSet<ReplicaId>,
    retransmit_at: Duration,
}

impl Round {
    pub fn broadcast(env: &mut Env, message: Message) -> Round {
        let request_id = env.request_id();
        env.broadcast(request_id, &message);
        Round {
            request_id,
            message,
            answered: BTreeSet::new(),
            retransmit_at: env.now + RETRANSMIT_INTERVAL,
        }
    }

    /// A final answer (ACCEPT or REJECT) from `from`; IGNORED is not final, the replica may be
    /// VOTING by the next retransmission.
    pub fn answered(&mut self, from: ReplicaId) {
        self.answered.insert(from);
    }

    /// Retransmits to members that have not answered, once per `RETRANSMIT_INTERVAL`.
    pub fn poll(&mut self, env: &mut Env) {
        if env.now < self.retransmit_at {
            return;
        }
        self.retransmit_at = env.now + RETRANSMIT_INTERVAL;
        let silent: Vec<ReplicaId> = env
            .members
            .iter()
            .copied()
            .filter(|m| !self.answered.contains(m))
            .collect();
        for to in silent {
            env.send(to, self.request_id, self.message.clone());
        }
    }
}
