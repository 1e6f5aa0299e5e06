//! The replica: Paxos acceptor and learner (replicated-log.md section 4).
//!
//! Every master runs one. It answers promise, write and recover requests and stores learned
//! values. It knows nothing of the network or the disk: each handler returns the state changes to
//! make durable (`PersistOp`s, in order) and the reply to send *after* they are durable
//! (replicated-log.md 1: "Every accepted promise/write is persisted before replying").
//!
//! Invariants kept here (checked by the simulation and the model checker):
//! - `performed <= promised` for every stored action (a write raises `promised` to its proposal);
//! - a learned action never changes value (a second `Learned` for it is ignored);
//! - positions below `begin` are gone and answer as learned NOP tombstones.

use crate::node::PersistOp;
use crate::storage::State;
use crate::types::{Action, Message, Metadata, Position, Proposal, ReplicaStatus, Value, Verdict};
use std::collections::BTreeMap;

/// What handling one request did: changes to make durable (in order), then the reply, if any.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Handled {
    pub persist: Vec<PersistOp>,
    pub reply: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Replica {
    metadata: Metadata,
    /// Positions >= `begin` only.
    actions: BTreeMap<Position, Action>,
    begin: Position,
}

impl Replica {
    pub fn restore(state: State) -> Replica {
        let State {
            metadata,
            mut actions,
            begin,
        } = state;
        let actions = actions.split_off(&begin);
        Replica {
            metadata,
            actions,
            begin,
        }
    }

    pub fn status(&self) -> ReplicaStatus {
        self.metadata.status
    }

    pub fn promised(&self) -> Proposal {
        self.metadata.promised
    }

    pub fn begin(&self) -> Position {
        self.begin
    }

    /// The last stored position (written, promised or learned), if any.
    pub fn last(&self) -> Option<Position> {
        self.actions.keys().next_back().copied()
    }

    /// `end` as reported to proposers and recoverers: the last stored position, or `begin` for an
    /// empty log. As in Mesos a new log reports 0, so the first election fills position 0 with a
    /// NOP and the first append lands at 1.
    pub fn end(&self) -> Position {
        self.last().unwrap_or(self.begin).max(self.begin)
    }

    #[cfg(test)]
    pub fn action(&self, position: Position) -> Option<&Action> {
        self.actions.get(&position)
    }

    /// Learned here: stored with `learned`, or truncated away (section 2: below `begin` is a
    /// learned tombstone).
    pub fn is_learned(&self, position: Position) -> bool {
        position < self.begin || self.actions.get(&position).is_some_and(|a| a.learned)
    }

    /// Positions in `[from, to]` (and >= `begin`) that are missing or unlearned here: what a
    /// proposer must fill before local reads are complete (section 5, elect).
    pub fn missing(&self, from: Position, to: Position) -> Vec<Position> {
        (from.max(self.begin)..=to)
            .filter(|p| !self.is_learned(*p))
            .collect()
    }

    /// The run of consecutive learned entries starting at `max(from, begin)`, stopping at the
    /// first hole or unlearned position. Tombstones (positions a learned TRUNCATE removed, filled
    /// as NOPs) are included; readers skip NOPs.
    pub fn learned_from(&self, from: Position) -> Vec<(Position, Value)> {
        let start = from.max(self.begin);
        (start..)
            .zip(self.actions.range(start..))
            .map_while(|(expected, (position, action))| match &action.value {
                Some(value) if *position == expected && action.learned => {
                    Some((expected, value.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Local status change (section 6); `None` when already there.
    pub fn set_status(&mut self, status: ReplicaStatus) -> Option<PersistOp> {
        if self.metadata.status == status {
            return None;
        }
        self.metadata.status = status;
        Some(PersistOp::Metadata(self.metadata))
    }

    /// Dispatches a request addressed to this replica. Responses are not for the replica.
    pub fn handle(&mut self, message: Message) -> Handled {
        match message {
            Message::PromiseRequest { proposal, position } => self.on_promise(proposal, position),
            Message::WriteRequest {
                proposal,
                position,
                value,
            } => self.on_write(proposal, position, value),
            Message::Learned { action } => Handled {
                persist: self.on_learned(action),
                reply: None,
            },
            Message::RecoverRequest => Handled {
                persist: Vec::new(),
                reply: Some(self.on_recover()),
            },
            Message::PromiseResponse { .. }
            | Message::WriteResponse { .. }
            | Message::RecoverResponse { .. } => Handled::default(),
        }
    }

    fn on_promise(&mut self, proposal: Proposal, position: Option<Position>) -> Handled {
        let respond = |verdict, proposal, action| Message::PromiseResponse {
            verdict,
            proposal,
            position,
            action,
        };
        // 4.1: "Not VOTING: reply IGNORED to promise and write requests".
        if self.metadata.status != ReplicaStatus::Voting {
            return Handled {
                persist: Vec::new(),
                reply: Some(respond(Verdict::Ignored, proposal, None)),
            };
        }
        let Some(p) = position else {
            // 4.2 implicit promise: "if proposal <= metadata.promised then REJECT(promised); else
            // persist promised = proposal and ACCEPT with position = end".
            if proposal <= self.metadata.promised {
                let reply = Message::PromiseResponse {
                    verdict: Verdict::Reject,
                    proposal: self.metadata.promised,
                    position: None,
                    action: None,
                };
                return Handled {
                    persist: Vec::new(),
                    reply: Some(reply),
                };
            }
            self.metadata.promised = proposal;
            let reply = Message::PromiseResponse {
                verdict: Verdict::Accept,
                proposal,
                position: Some(self.end()),
                action: None,
            };
            return Handled {
                persist: vec![PersistOp::Metadata(self.metadata)],
                reply: Some(reply),
            };
        };
        // 4.3 explicit promise at p.
        if p < self.begin {
            // "if p < begin, ACCEPT with a learned tombstone NOP".
            let tombstone = Action {
                position: p,
                promised: self.metadata.promised,
                performed: Some(self.metadata.promised),
                learned: true,
                value: Some(Value::Nop { tombstone: true }),
            };
            return Handled {
                persist: Vec::new(),
                reply: Some(respond(Verdict::Accept, proposal, Some(tombstone))),
            };
        }
        match self.actions.get_mut(&p) {
            None => {
                // "If nothing stored at p: REJECT if proposal <= metadata.promised, else store
                // {p, promised: proposal} and ACCEPT."
                if proposal <= self.metadata.promised {
                    return Handled {
                        persist: Vec::new(),
                        reply: Some(respond(Verdict::Reject, self.metadata.promised, None)),
                    };
                }
                let action = Action {
                    position: p,
                    promised: proposal,
                    performed: None,
                    learned: false,
                    value: None,
                };
                self.actions.insert(p, action.clone());
                Handled {
                    persist: vec![PersistOp::Action(action)],
                    reply: Some(respond(Verdict::Accept, proposal, None)),
                }
            }
            Some(action) => {
                // "If an action exists: REJECT if proposal <= action.promised, else raise its
                // promised and ACCEPT returning the previous action."
                if proposal <= action.promised {
                    let promised = action.promised;
                    return Handled {
                        persist: Vec::new(),
                        reply: Some(respond(Verdict::Reject, promised, None)),
                    };
                }
                let previous = action.clone();
                action.promised = proposal;
                let stored = action.clone();
                Handled {
                    persist: vec![PersistOp::Action(stored)],
                    reply: Some(respond(Verdict::Accept, proposal, Some(previous))),
                }
            }
        }
    }

    fn on_write(&mut self, proposal: Proposal, position: Position, value: Value) -> Handled {
        let respond = |verdict, proposal| Message::WriteResponse {
            verdict,
            proposal,
            position,
        };
        // 4.1: not VOTING answers IGNORED.
        if self.metadata.status != ReplicaStatus::Voting {
            return Handled {
                persist: Vec::new(),
                reply: Some(respond(Verdict::Ignored, proposal)),
            };
        }
        // Below `begin` the position is a learned tombstone (section 2); like any learned
        // position (4.4) it takes no write and gets no reply.
        if position < self.begin {
            return Handled::default();
        }
        match self.actions.get_mut(&position) {
            None => {
                // 4.4 "nothing stored: REJECT if proposal < metadata.promised, else store the value
                // with performed = proposal, ACCEPT." Accepting also promises the proposal for
                // this position (promised = proposal >= metadata.promised), so performed <= promised.
                if proposal < self.metadata.promised {
                    return Handled {
                        persist: Vec::new(),
                        reply: Some(respond(Verdict::Reject, self.metadata.promised)),
                    };
                }
                let action = Action {
                    position,
                    promised: proposal,
                    performed: Some(proposal),
                    learned: false,
                    value: Some(value),
                };
                self.actions.insert(position, action.clone());
                Handled {
                    persist: vec![PersistOp::Action(action)],
                    reply: Some(respond(Verdict::Accept, proposal)),
                }
            }
            Some(action) => {
                // 4.4 "Existing action: REJECT if proposal < action.promised; if already learned,
                // do not reply; else overwrite value and performed, ACCEPT."
                if proposal < action.promised {
                    let promised = action.promised;
                    return Handled {
                        persist: Vec::new(),
                        reply: Some(respond(Verdict::Reject, promised)),
                    };
                }
                if action.learned {
                    return Handled::default();
                }
                action.promised = action.promised.max(proposal);
                action.performed = Some(proposal);
                action.value = Some(value);
                let stored = action.clone();
                Handled {
                    persist: vec![PersistOp::Action(stored)],
                    reply: Some(respond(Verdict::Accept, proposal)),
                }
            }
        }
    }

    /// 4.5 "Learned: store with learned = true (applies truncation when it is a TRUNCATE)".
    /// Learned values are chosen, so this holds in any status. A position already learned (or
    /// truncated) keeps what it has: a chosen value never changes.
    pub fn on_learned(&mut self, action: Action) -> Vec<PersistOp> {
        let Some(value) = action.value.clone() else {
            return Vec::new(); // a learned action always carries its value; drop a malformed one
        };
        if self.is_learned(action.position) {
            return Vec::new();
        }
        let promised = self
            .actions
            .get(&action.position)
            .map_or(0, |a| a.promised)
            .max(action.promised);
        let stored = Action {
            promised,
            learned: true,
            ..action
        };
        self.actions.insert(stored.position, stored.clone());
        let mut persist = vec![PersistOp::Action(stored)];
        if let Value::Truncate { to } = value {
            // Section 2: "A TRUNCATE action with to = t removes every position < t once learned
            // (begin = max(begin, t))".
            if to > self.begin {
                self.begin = to;
                self.actions = self.actions.split_off(&to);
                persist.push(PersistOp::Truncate(to));
            }
        }
        persist
    }

    /// Section 3: `RecoverResponse{status, begin?, end?}`, "bounds only when VOTING". Always
    /// answered, whatever the status (4.1 exempts recover requests).
    pub fn on_recover(&self) -> Message {
        let voting = self.metadata.status == ReplicaStatus::Voting;
        Message::RecoverResponse {
            status: self.metadata.status,
            begin: voting.then_some(self.begin),
            end: voting.then_some(self.end()),
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
