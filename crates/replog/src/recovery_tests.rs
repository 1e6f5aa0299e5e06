//! Section 6 rules, driven directly: recovery rounds, the RECOVERING catch-up and the two-phase
//! auto-initialization thresholds.

use super::*;
use crate::net::RETRANSMIT_INTERVAL;
use crate::node::PersistOp;
use crate::storage::State as Stored;
use crate::types::{Action, Envelope, Metadata, Value, Verdict};
use std::collections::{BTreeSet, VecDeque};

const QUORUM: usize = 2;

struct Harness {
    members: BTreeSet<ReplicaId>,
    rng: SplitMix64,
    request_id: u64,
    out: VecDeque<Command>,
    replica: Replica,
    recovery: Recovery,
}

impl Harness {
    fn new(status: ReplicaStatus, auto_initialize: bool, members: &[ReplicaId]) -> Harness {
        let metadata = Metadata {
            status,
            promised: 0,
        };
        Harness {
            members: members.iter().copied().collect(),
            rng: SplitMix64::new(3),
            request_id: 0,
            out: VecDeque::new(),
            replica: Replica::restore(Stored {
                metadata,
                ..Stored::default()
            }),
            recovery: Recovery::new(status, auto_initialize),
        }
    }

    fn poll(&mut self, now_ms: u64) -> Vec<Command> {
        let mut env = Env {
            now: Duration::from_millis(now_ms),
            id: 1,
            quorum: QUORUM,
            members: &self.members,
            rng: &mut self.rng,
            next_request_id: &mut self.request_id,
            out: &mut self.out,
        };
        self.recovery.poll(&mut env, &mut self.replica);
        self.out.drain(..).collect()
    }

    fn reply(
        &mut self,
        now_ms: u64,
        from: ReplicaId,
        request_id: u64,
        message: Message,
    ) -> Vec<Command> {
        let mut env = Env {
            now: Duration::from_millis(now_ms),
            id: 1,
            quorum: QUORUM,
            members: &self.members,
            rng: &mut self.rng,
            next_request_id: &mut self.request_id,
            out: &mut self.out,
        };
        assert!(self
            .recovery
            .on_message(&mut env, &mut self.replica, from, request_id, message));
        self.out.drain(..).collect()
    }

    /// Starts a round and returns its request id.
    fn round(&mut self, now_ms: u64) -> u64 {
        let sent = self.poll(now_ms);
        assert_eq!(
            sent.len(),
            self.members.len(),
            "RecoverRequest to every member, itself included"
        );
        match &sent[0] {
            Command::Send { envelope, .. } if envelope.message == Message::RecoverRequest => {
                envelope.request_id
            }
            other => panic!("{other:?}"),
        }
    }
}

fn status_reply(status: ReplicaStatus) -> Message {
    Message::RecoverResponse {
        status,
        begin: None,
        end: None,
    }
}

fn voting_reply(begin: Position, end: Position) -> Message {
    Message::RecoverResponse {
        status: ReplicaStatus::Voting,
        begin: Some(begin),
        end: Some(end),
    }
}

#[test]
fn rule_6_a_voting_replica_does_not_recover() {
    let mut h = Harness::new(ReplicaStatus::Voting, true, &[1, 2, 3]);
    assert!(h.poll(0).is_empty());
}

#[test]
fn rule_6_1_waits_for_a_quorum_of_members() {
    let mut h = Harness::new(ReplicaStatus::Empty, true, &[1]);
    assert!(h.poll(0).is_empty());
    h.members.insert(2);
    h.round(10);
}

#[test]
fn rule_6_3_quorum_of_voting_makes_it_recovering_then_catches_up_the_reported_range() {
    let mut h = Harness::new(ReplicaStatus::Empty, true, &[1, 2, 3]);
    let id = h.round(0);
    assert!(h
        .reply(1, 1, id, status_reply(ReplicaStatus::Empty))
        .is_empty());
    assert!(h.reply(1, 2, id, voting_reply(2, 4)).is_empty());
    let out = h.reply(1, 3, id, voting_reply(3, 6));
    assert_eq!(
        out[0],
        Command::Persist(PersistOp::Metadata(Metadata {
            status: ReplicaStatus::Recovering,
            promised: 0
        }))
    );
    assert_eq!(out[1], Command::StatusChanged(ReplicaStatus::Recovering));
    // The catch-up starts on the next poll: an explicit promise for each of 2..=6.
    let positions: BTreeSet<Position> = h
        .poll(2)
        .iter()
        .filter_map(|c| match c {
            Command::Send {
                envelope:
                    Envelope {
                        message:
                            Message::PromiseRequest {
                                position: Some(p), ..
                            },
                        ..
                    },
                ..
            } => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(positions, (2..=6).collect());
    assert_eq!(
        h.replica.status(),
        ReplicaStatus::Recovering,
        "not VOTING before it caught up"
    );
}

#[test]
fn rule_6_3_recovering_becomes_voting_once_every_position_is_learned() {
    let mut h = Harness::new(ReplicaStatus::Recovering, true, &[1, 2, 3]);
    let id = h.round(0);
    h.reply(1, 2, id, voting_reply(0, 0));
    h.reply(1, 3, id, voting_reply(0, 0));
    let sent = h.poll(2);
    let (fill_id, proposal) = match &sent[0] {
        Command::Send {
            envelope:
                Envelope {
                    request_id,
                    message: Message::PromiseRequest { proposal, .. },
                    ..
                },
            ..
        } => (*request_id, *proposal),
        other => panic!("{other:?}"),
    };
    let learned = Action {
        position: 0,
        promised: 1,
        performed: Some(1),
        learned: true,
        value: Some(Value::Nop { tombstone: false }),
    };
    let accept = Message::PromiseResponse {
        verdict: Verdict::Accept,
        proposal,
        position: Some(0),
        action: Some(learned.clone()),
    };
    let out = h.reply(3, 2, fill_id, accept);
    assert_eq!(
        out[0],
        Command::Persist(PersistOp::Action(learned)),
        "the local replica learns first"
    );
    let out = h.poll(4);
    assert!(out.contains(&Command::StatusChanged(ReplicaStatus::Voting)));
    assert_eq!(h.replica.status(), ReplicaStatus::Voting);
}

#[test]
fn rule_6_4_auto_initialization_needs_every_replica_in_each_phase() {
    let mut h = Harness::new(ReplicaStatus::Empty, true, &[1, 2, 3]);
    let id = h.round(0);
    h.reply(1, 1, id, status_reply(ReplicaStatus::Empty));
    assert!(
        h.reply(1, 2, id, status_reply(ReplicaStatus::Starting))
            .is_empty(),
        "2 < 2*quorum-1"
    );
    let out = h.reply(1, 3, id, status_reply(ReplicaStatus::Empty));
    assert!(out.contains(&Command::StatusChanged(ReplicaStatus::Starting)));
    // Phase two starts at once; VOTING needs STARTING + VOTING >= 3.
    let id = h.round(1);
    h.reply(2, 1, id, status_reply(ReplicaStatus::Starting));
    h.reply(2, 2, id, voting_reply(0, 0));
    assert_eq!(h.replica.status(), ReplicaStatus::Starting);
    let out = h.reply(2, 3, id, status_reply(ReplicaStatus::Starting));
    assert!(out.contains(&Command::StatusChanged(ReplicaStatus::Voting)));
    assert!(h.poll(5_000).is_empty(), "done");
}

#[test]
fn rule_6_4_without_auto_initialization_an_empty_cluster_stays_empty() {
    let mut h = Harness::new(ReplicaStatus::Empty, false, &[1, 2, 3]);
    let id = h.round(0);
    for from in 1..=3 {
        assert!(h
            .reply(1, from, id, status_reply(ReplicaStatus::Empty))
            .is_empty());
    }
    assert_eq!(h.replica.status(), ReplicaStatus::Empty);
}

#[test]
fn rule_6_5_rounds_retry_after_a_random_gap_or_the_round_timeout() {
    let mut h = Harness::new(ReplicaStatus::Empty, true, &[1, 2, 3]);
    let id = h.round(0);
    h.reply(1, 1, id, status_reply(ReplicaStatus::Empty));
    h.reply(1, 2, id, voting_reply(0, 0));
    h.reply(1, 3, id, status_reply(ReplicaStatus::Empty)); // all answered, nothing decided
    assert!(h.poll(500).is_empty(), "no new round before 500 ms");
    let id2 = h.round(1_001);
    assert_ne!(id, id2);
    // No answers: retransmits every RETRANSMIT_INTERVAL, then a new round after 10 s + gap.
    let resent = h.poll(1_001 + RETRANSMIT_INTERVAL.as_millis() as u64);
    assert_eq!(resent.len(), 3);
    assert!(h.poll(11_001).is_empty(), "timed out: waiting out the gap");
    assert!(h.poll(11_500).is_empty());
    assert_ne!(h.round(12_001), id2);
}
