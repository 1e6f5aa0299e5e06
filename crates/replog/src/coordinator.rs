//! The coordinator: the writer, a Multi-Paxos proposer (replicated-log.md section 5).
//!
//! Only the leading master runs one (`start_writer`). It wins an election with an implicit promise
//! for every unwritten position, fills what its local replica lacks up to the highest end a quorum
//! reported (so local reads are complete), then writes each append or truncate with a single
//! write phase at the next index. One operation is in flight at a time; later ones queue.
//!
//! Fencing: a higher proposal promised anywhere in a write quorum REJECTs this writer's writes,
//! which demotes it (`WriterDemoted`; the master must abort). Proposal numbers are not unique;
//! quorum intersection plus the replica rules (4.2-4.4) keep one value per position.

use crate::fill::{self, CatchUp};
use crate::net::{Env, Round};
use crate::node::{Command, OpId, WriteError};
use crate::replica::Replica;
use crate::types::{Action, Message, Position, Proposal, ReplicaId, ReplicaStatus, Value, Verdict};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Operations waiting behind the one in flight (appends and truncates).
pub const WRITE_QUEUE_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Writing {
    op: OpId,
    position: Position,
    value: Value,
    round: Round,
    accepted: BTreeSet<ReplicaId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum State {
    /// INITIAL. While the writer is wanted, elects at `retry_at` once the local replica votes.
    Initial { retry_at: Duration },
    /// ELECTING, promise phase: implicit promises collected so far, with each replica's end.
    Electing {
        round: Round,
        accepted: BTreeMap<ReplicaId, Position>,
        ignored: BTreeSet<ReplicaId>,
    },
    /// ELECTING, fill phase: won the promise phase, filling the local replica up to `index`.
    Filling { index: Position, catchup: CatchUp },
    /// ELECTED (WRITING while `writing` is set). `next` is where the next write goes.
    Elected {
        next: Position,
        writing: Option<Writing>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Coordinator {
    /// `start_writer` is in force: keep electing until elected.
    wanted: bool,
    proposal: Proposal,
    state: State,
    queue: VecDeque<(OpId, Value)>,
    next_op: OpId,
}

impl Coordinator {
    pub fn new() -> Coordinator {
        Coordinator {
            wanted: false,
            proposal: 0,
            state: State::Initial {
                retry_at: Duration::ZERO,
            },
            queue: VecDeque::new(),
            next_op: 0,
        }
    }

    pub fn is_elected(&self) -> bool {
        matches!(self.state, State::Elected { .. })
    }

    pub fn start(&mut self, now: Duration) {
        if !self.wanted {
            self.wanted = true;
            if let State::Initial { retry_at } = &mut self.state {
                *retry_at = now;
            }
        }
    }

    /// Back to INITIAL; returns the operations that were queued or in flight (their outcome is
    /// unknown: an in-flight write may still be chosen).
    pub fn stop(&mut self) -> Vec<OpId> {
        self.wanted = false;
        let state = std::mem::replace(
            &mut self.state,
            State::Initial {
                retry_at: Duration::ZERO,
            },
        );
        self.abandon(state)
    }

    fn abandon(&mut self, state: State) -> Vec<OpId> {
        let mut ops = Vec::new();
        if let State::Elected {
            writing: Some(writing),
            ..
        } = state
        {
            ops.push(writing.op);
        }
        ops.extend(self.queue.drain(..).map(|(op, _)| op));
        ops
    }

    /// Queues an append or truncate; only an elected writer takes them (section 5: append and
    /// truncate need ELECTED).
    pub fn submit(&mut self, value: Value) -> Result<OpId, WriteError> {
        let State::Elected { next, writing } = &self.state else {
            return Err(WriteError::NotWriter);
        };
        if self.queue.len() >= WRITE_QUEUE_MAX {
            return Err(WriteError::QueueFull {
                max: WRITE_QUEUE_MAX,
            });
        }
        // Operations take consecutive positions; a truncate may not reach past its own.
        let position = next + u64::from(writing.is_some()) + self.queue.len() as u64;
        if let Value::Truncate { to } = value {
            if to > position {
                return Err(WriteError::TruncateBeyondEnd { to, position });
            }
        }
        let op = self.next_op;
        self.next_op += 1;
        self.queue.push_back((op, value));
        Ok(op)
    }

    /// Timers and pending work: election (retry), fills, the next queued write, retransmits.
    pub fn poll(&mut self, env: &mut Env, replica: &mut Replica) {
        match &mut self.state {
            State::Initial { retry_at } => {
                // The writer waits for its local replica to recover (Mesos' Log::Writer does too).
                if self.wanted && replica.status() == ReplicaStatus::Voting && env.now >= *retry_at
                {
                    self.elect(env, replica);
                }
            }
            State::Electing { round, .. } => round.poll(env),
            State::Filling { index, catchup } => {
                catchup.poll(env, replica);
                if catchup.is_done() {
                    let index = *index;
                    self.elected(env, index);
                }
            }
            State::Elected { next, writing } => match writing {
                Some(writing) => writing.round.poll(env),
                None => {
                    if let Some((op, value)) = self.queue.pop_front() {
                        let request = Message::WriteRequest {
                            proposal: self.proposal,
                            position: *next,
                            value: value.clone(),
                        };
                        let round = Round::broadcast(env, request);
                        *writing = Some(Writing {
                            op,
                            position: *next,
                            value,
                            round,
                            accepted: BTreeSet::new(),
                        });
                    }
                }
            },
        }
    }

    /// Section 5 elect(): "proposal = max(proposal, local replica promised) + 1; broadcast an
    /// implicit promise".
    fn elect(&mut self, env: &mut Env, replica: &Replica) {
        self.proposal = self.proposal.max(replica.promised()) + 1;
        let round = Round::broadcast(
            env,
            Message::PromiseRequest {
                proposal: self.proposal,
                position: None,
            },
        );
        self.state = State::Electing {
            round,
            accepted: BTreeMap::new(),
            ignored: BTreeSet::new(),
        };
    }

    fn not_elected(&mut self, env: &mut Env) {
        self.state = State::Initial {
            retry_at: env.retry_at(),
        };
    }

    fn elected(&mut self, env: &mut Env, index: Position) {
        self.state = State::Elected {
            next: index + 1,
            writing: None,
        };
        env.emit(Command::WriterElected { end: index });
    }

    /// Routes a response by request id; false when it is not for this coordinator.
    pub fn on_message(
        &mut self,
        env: &mut Env,
        replica: &mut Replica,
        from: ReplicaId,
        request_id: u64,
        message: Message,
    ) -> bool {
        let quorum = env.quorum;
        match (&mut self.state, message) {
            (
                State::Electing {
                    round,
                    accepted,
                    ignored,
                },
                Message::PromiseResponse {
                    verdict,
                    proposal,
                    position,
                    ..
                },
            ) if round.request_id == request_id => {
                match verdict {
                    // "Any REJECT: adopt the highest rejected number, result 'not elected'"; the
                    // retry comes after a random 100-200 ms.
                    Verdict::Reject => {
                        self.proposal = self.proposal.max(proposal);
                        self.not_elected(env);
                    }
                    // "A quorum of IGNORED: 'not elected'".
                    Verdict::Ignored => {
                        ignored.insert(from);
                        if ignored.len() >= quorum {
                            self.not_elected(env);
                        }
                    }
                    Verdict::Accept if proposal == self.proposal => {
                        round.answered(from);
                        ignored.remove(&from);
                        accepted.insert(from, position.unwrap_or(0));
                        if accepted.len() >= quorum {
                            // "index = max position reported; fill every position in [0, index]
                            // that the local replica lacks or has unlearned; then ELECTED".
                            let index = accepted.values().copied().max().unwrap_or(0);
                            let missing = replica.missing(0, index);
                            if missing.is_empty() {
                                self.elected(env, index);
                            } else {
                                // Fills use proposal + 1, as Mesos does: an explicit promise at
                                // exactly the implicitly promised number is rejected (4.3).
                                let catchup = CatchUp::new(missing, self.proposal + 1);
                                self.state = State::Filling { index, catchup };
                            }
                        }
                    }
                    Verdict::Accept => {}
                }
                true
            }
            (State::Filling { catchup, .. }, message) => {
                catchup.on_message(env, replica, from, request_id, message)
            }
            (
                State::Elected {
                    next,
                    writing: slot,
                },
                Message::WriteResponse {
                    verdict,
                    proposal,
                    position,
                },
            ) if slot
                .as_ref()
                .is_some_and(|w| w.round.request_id == request_id && w.position == position) =>
            {
                let Some(writing) = slot.as_mut() else {
                    return true;
                };
                match verdict {
                    // "a REJECT demotes the coordinator (back to INITIAL ...), so the caller must
                    // re-elect": a higher proposal has been promised, another writer took over.
                    Verdict::Reject => self.demote(env, proposal),
                    Verdict::Accept if proposal == self.proposal => {
                        writing.round.answered(from);
                        writing.accepted.insert(from);
                        if writing.accepted.len() >= quorum {
                            // A quorum has it durable (each replica persisted before replying):
                            // learn locally, tell the others, then report the position.
                            let done = slot.take().expect("checked above");
                            let action = Action {
                                position: done.position,
                                promised: proposal,
                                performed: Some(proposal),
                                learned: true,
                                value: Some(done.value),
                            };
                            fill::learn(env, replica, action);
                            env.emit(Command::Completed {
                                op: done.op,
                                result: Ok(done.position),
                            });
                            *next = done.position + 1;
                        }
                    }
                    Verdict::Accept | Verdict::Ignored => {}
                }
                true
            }
            _ => false,
        }
    }

    fn demote(&mut self, env: &mut Env, higher: Proposal) {
        self.proposal = self.proposal.max(higher);
        self.wanted = false;
        let state = std::mem::replace(
            &mut self.state,
            State::Initial {
                retry_at: Duration::ZERO,
            },
        );
        for op in self.abandon(state) {
            env.emit(Command::Completed {
                op,
                result: Err(WriteError::Demoted),
            });
        }
        env.emit(Command::WriterDemoted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use crate::storage::State as Stored;
    use crate::types::Metadata;

    #[test]
    fn truncate_may_not_reach_past_its_own_position_and_queue_is_bounded() {
        let mut c = Coordinator::new();
        assert_eq!(
            c.submit(Value::Append { bytes: vec![1] }),
            Err(WriteError::NotWriter)
        );
        c.state = State::Elected {
            next: 5,
            writing: None,
        };
        assert_eq!(
            c.submit(Value::Truncate { to: 6 }),
            Err(WriteError::TruncateBeyondEnd { to: 6, position: 5 })
        );
        assert_eq!(c.submit(Value::Append { bytes: vec![1] }), Ok(0));
        assert_eq!(c.submit(Value::Truncate { to: 6 }), Ok(1)); // it lands at 6
        for _ in 2..WRITE_QUEUE_MAX {
            c.submit(Value::Append { bytes: vec![] }).unwrap();
        }
        assert_eq!(
            c.submit(Value::Append { bytes: vec![] }),
            Err(WriteError::QueueFull {
                max: WRITE_QUEUE_MAX
            })
        );
        assert_eq!(c.stop().len(), WRITE_QUEUE_MAX);
        assert!(!c.is_elected());
    }

    #[test]
    fn election_waits_for_a_voting_local_replica_and_bumps_past_its_promise() {
        // Section 5: proposal = max(proposal, local promised) + 1.
        let members = [1u64, 2, 3].into_iter().collect();
        let (mut rng, mut rid, mut out) = (SplitMix64::new(1), 0, VecDeque::new());
        let mut env = Env {
            now: Duration::ZERO,
            id: 1,
            quorum: 2,
            members: &members,
            rng: &mut rng,
            next_request_id: &mut rid,
            out: &mut out,
        };
        let mut replica = Replica::restore(Stored::default());
        let mut c = Coordinator::new();
        c.start(Duration::ZERO);
        c.poll(&mut env, &mut replica);
        assert!(env.out.is_empty(), "EMPTY local replica: no election yet");
        let voting = Metadata {
            status: ReplicaStatus::Voting,
            promised: 41,
        };
        let mut replica = Replica::restore(Stored {
            metadata: voting,
            ..Stored::default()
        });
        c.poll(&mut env, &mut replica);
        assert_eq!(env.out.len(), 3);
        assert!(env
            .out
            .iter()
            .all(|c| matches!(c, Command::Send { envelope, .. }
            if envelope.message == Message::PromiseRequest { proposal: 42, position: None })));
    }
}
