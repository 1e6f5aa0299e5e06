//! Fill and catch-up: single-position Paxos used to learn what a position holds
//! (replicated-log.md section 5, `fill(p)`), and a bounded set of fills over many positions.
//!
//! A coordinator fills the positions its local replica lacks after winning an election; a
//! recovering replica fills `[lowest begin, highest end]` (section 6). Both then make the local
//! replica learn each result and tell the others (`Learned`).
//!
//! One fill: explicit promise at `p`; a learned action in any reply is used as is; otherwise, once
//! a quorum accepted, re-write the action with the highest `performed` (or a NOP if there is none)
//! and learn it when a quorum accepts the write. A REJECT means a higher proposal is around: back
//! off for a random 100-200 ms and retry with the highest rejected number + 1 (section 5). A fill
//! that does not finish within `FILL_STALL_TIMEOUT` restarts with a higher proposal: replicas that
//! learned the position meanwhile do not answer writes to it (4.4), but their promise replies
//! carry the learned value.

use crate::net::{Env, Round};
use crate::replica::Replica;
use crate::types::{Action, Message, Position, Proposal, ReplicaId, Value, Verdict};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A fill still running after this long starts over with a higher proposal.
pub const FILL_STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Fills run concurrently by one catch-up (bounds the messages in flight).
pub const FILLS_IN_FLIGHT_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Phase {
    Promise {
        round: Round,
        promises: BTreeMap<ReplicaId, Option<Action>>,
    },
    Write {
        round: Round,
        value: Value,
        accepted: BTreeSet<ReplicaId>,
    },
    Backoff {
        until: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fill {
    position: Position,
    proposal: Proposal,
    phase: Phase,
    stall_at: Duration,
}

impl Fill {
    pub fn start(env: &mut Env, position: Position, proposal: Proposal) -> Fill {
        let mut fill = Fill {
            position,
            proposal,
            phase: Phase::Backoff { until: env.now },
            stall_at: env.now,
        };
        fill.promise(env);
        fill
    }

    fn promise(&mut self, env: &mut Env) {
        let request = Message::PromiseRequest {
            proposal: self.proposal,
            position: Some(self.position),
        };
        self.phase = Phase::Promise {
            round: Round::broadcast(env, request),
            promises: BTreeMap::new(),
        };
        self.stall_at = env.now + FILL_STALL_TIMEOUT;
    }

    fn write(&mut self, env: &mut Env, value: Value) {
        let request = Message::WriteRequest {
            proposal: self.proposal,
            position: self.position,
            value: value.clone(),
        };
        self.phase = Phase::Write {
            round: Round::broadcast(env, request),
            value,
            accepted: BTreeSet::new(),
        };
    }

    /// Section 5: adopt the highest rejected number; the retry uses it + 1 after a random delay.
    fn rejected(&mut self, env: &mut Env, higher: Proposal) {
        self.proposal = self.proposal.max(higher);
        self.phase = Phase::Backoff {
            until: env.retry_at(),
        };
    }

    fn owns(&self, request_id: u64) -> bool {
        match &self.phase {
            Phase::Promise { round, .. } | Phase::Write { round, .. } => {
                round.request_id == request_id
            }
            Phase::Backoff { .. } => false,
        }
    }

    /// Returns the learned action once this fill is done.
    fn on_message(&mut self, env: &mut Env, from: ReplicaId, message: Message) -> Option<Action> {
        let quorum = env.quorum;
        match (&mut self.phase, message) {
            (
                Phase::Promise { round, promises },
                Message::PromiseResponse {
                    verdict,
                    proposal,
                    position: Some(p),
                    action,
                },
            ) if p == self.position => match verdict {
                Verdict::Reject => {
                    self.rejected(env, proposal);
                    None
                }
                Verdict::Accept if proposal == self.proposal => {
                    round.answered(from);
                    // "if any reply carries a learned action, use it".
                    if let Some(learned) =
                        action.as_ref().filter(|a| a.learned && a.value.is_some())
                    {
                        return Some(learned.clone());
                    }
                    promises.insert(from, action);
                    if promises.len() >= quorum {
                        // "else among accepted replies pick the action with the highest
                        // `performed` and re-write it, or write NOP if none".
                        let value = promises
                            .values()
                            .flatten()
                            .filter(|a| a.performed.is_some())
                            .max_by_key(|a| a.performed)
                            .and_then(|a| a.value.clone())
                            .unwrap_or(Value::Nop { tombstone: false });
                        self.write(env, value);
                    }
                    None
                }
                Verdict::Accept | Verdict::Ignored => None,
            },
            (
                Phase::Write {
                    round,
                    value,
                    accepted,
                },
                Message::WriteResponse {
                    verdict,
                    proposal,
                    position,
                },
            ) if position == self.position => match verdict {
                Verdict::Reject => {
                    self.rejected(env, proposal);
                    None
                }
                Verdict::Accept if proposal == self.proposal => {
                    round.answered(from);
                    accepted.insert(from);
                    (accepted.len() >= quorum).then(|| Action {
                        position: self.position,
                        promised: self.proposal,
                        performed: Some(self.proposal),
                        learned: true,
                        value: Some(value.clone()),
                    })
                }
                Verdict::Accept | Verdict::Ignored => None,
            },
            _ => None,
        }
    }

    fn poll(&mut self, env: &mut Env) {
        match &mut self.phase {
            Phase::Backoff { until } => {
                if env.now >= *until {
                    self.proposal += 1;
                    self.promise(env);
                }
            }
            Phase::Promise { round, .. } | Phase::Write { round, .. } => {
                if env.now >= self.stall_at {
                    self.proposal += 1;
                    self.promise(env);
                } else {
                    round.poll(env);
                }
            }
        }
    }
}

/// Fills a set of positions, at most `FILLS_IN_FLIGHT_MAX` at a time, skipping any the local
/// replica learns by other means (a `Learned` message, a truncation) meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CatchUp {
    todo: BTreeSet<Position>,
    active: BTreeMap<Position, Fill>,
    /// The proposal new fills start with; raised to what earlier fills had to climb to.
    proposal: Proposal,
}

impl CatchUp {
    pub fn new(positions: impl IntoIterator<Item = Position>, proposal: Proposal) -> CatchUp {
        CatchUp {
            todo: positions.into_iter().collect(),
            active: BTreeMap::new(),
            proposal,
        }
    }

    pub fn is_done(&self) -> bool {
        self.todo.is_empty() && self.active.is_empty()
    }

    pub fn poll(&mut self, env: &mut Env, replica: &mut Replica) {
        self.todo.retain(|p| !replica.is_learned(*p));
        self.active.retain(|p, _| !replica.is_learned(*p));
        while self.active.len() < FILLS_IN_FLIGHT_MAX {
            let Some(position) = self.todo.pop_first() else {
                break;
            };
            self.active
                .insert(position, Fill::start(env, position, self.proposal));
        }
        for fill in self.active.values_mut() {
            fill.poll(env);
        }
    }

    /// Routes a response by request id; false when it is not for any of these fills.
    pub fn on_message(
        &mut self,
        env: &mut Env,
        replica: &mut Replica,
        from: ReplicaId,
        request_id: u64,
        message: Message,
    ) -> bool {
        let Some((&position, fill)) = self.active.iter_mut().find(|(_, f)| f.owns(request_id))
        else {
            return false;
        };
        let learned = fill.on_message(env, from, message);
        self.proposal = self.proposal.max(fill.proposal);
        if let Some(action) = learned {
            self.active.remove(&position);
            learn(env, replica, action);
        }
        true
    }
}

/// Section 5 "then learn" / 4.5: the local replica stores the chosen action as learned, then every
/// other replica is told (no acknowledgement is awaited).
pub(crate) fn learn(env: &mut Env, replica: &mut Replica, action: Action) {
    env.persist(replica.on_learned(action.clone()));
    let request_id = env.request_id();
    env.broadcast_others(request_id, &Message::Learned { action });
}
