//! Replica recovery and auto-initialization (replicated-log.md section 6).
//!
//! A replica that is not VOTING does not vote (4.1). At start, and until it is VOTING, it runs
//! recovery rounds: broadcast `RecoverRequest` (to itself too), tally the statuses that answer,
//! and move on:
//! - a quorum of VOTING replies: become RECOVERING, fill every position in
//!   `[lowest begin, highest end]` those replies reported, then become VOTING. Everything chosen
//!   lies in that range (a chosen value is on a quorum, which meets any quorum of VOTING
//!   replicas); a crash while RECOVERING restarts this from the top;
//! - auto-initialization: EMPTY becomes STARTING when EMPTY + STARTING replies reach
//!   `2*quorum - 1`; STARTING becomes VOTING when STARTING + VOTING replies do. The middle step
//!   keeps one early replica from turning VOTING alone and leaving the others unable to start;
//! - otherwise retry: once every member has answered, or after `RECOVER_ROUND_TIMEOUT`, a new
//!   round follows after a random 500-1000 ms.

use crate::fill::CatchUp;
use crate::net::{Env, Round};
use crate::node::Command;
use crate::replica::Replica;
use crate::rng::SplitMix64;
use crate::types::{Message, Position, ReplicaId, ReplicaStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// Section 6.5: "each round times out after 10 s".
pub const RECOVER_ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Section 6.5: "rounds are separated by a random 500-1000 ms".
pub const RECOVER_ROUND_GAP_MIN: Duration = Duration::from_millis(500);
pub const RECOVER_ROUND_GAP_MAX: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Reply {
    status: ReplicaStatus,
    begin: Option<Position>,
    end: Option<Position>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum State {
    /// The local replica is VOTING: nothing to do.
    Done,
    /// Next round at `round_at`, once the network has at least `quorum` members (6.1).
    Waiting { round_at: Duration },
    Round {
        round: Round,
        replies: BTreeMap<ReplicaId, Reply>,
        timeout_at: Duration,
    },
    /// RECOVERING: filling the range a quorum of VOTING replicas reported (6.3).
    CatchingUp { catchup: CatchUp },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Recovery {
    auto_initialize: bool,
    state: State,
}

fn gap(now: Duration, rng: &mut SplitMix64) -> Duration {
    now + rng.duration_between(RECOVER_ROUND_GAP_MIN, RECOVER_ROUND_GAP_MAX)
}

fn set_status(env: &mut Env, replica: &mut Replica, status: ReplicaStatus) {
    if let Some(op) = replica.set_status(status) {
        env.persist([op]);
        env.emit(Command::StatusChanged(status));
    }
}

impl Recovery {
    /// "Recovery round (runs at start whenever the local status is not VOTING)".
    pub fn new(status: ReplicaStatus, auto_initialize: bool) -> Recovery {
        let state = if status == ReplicaStatus::Voting {
            State::Done
        } else {
            State::Waiting {
                round_at: Duration::ZERO,
            }
        };
        Recovery {
            auto_initialize,
            state,
        }
    }

    pub fn poll(&mut self, env: &mut Env, replica: &mut Replica) {
        match &mut self.state {
            State::Done => {}
            State::Waiting { round_at } => {
                // 6.1 "Wait until the network has at least quorum members"; 6.2 broadcast.
                if env.now >= *round_at && env.members.len() >= env.quorum {
                    let round = Round::broadcast(env, Message::RecoverRequest);
                    let timeout_at = env.now + RECOVER_ROUND_TIMEOUT;
                    self.state = State::Round {
                        round,
                        replies: BTreeMap::new(),
                        timeout_at,
                    };
                }
            }
            State::Round {
                round, timeout_at, ..
            } => {
                if env.now >= *timeout_at {
                    self.state = State::Waiting {
                        round_at: gap(env.now, env.rng),
                    };
                } else {
                    round.poll(env);
                }
            }
            State::CatchingUp { catchup } => {
                catchup.poll(env, replica);
                if catchup.is_done() {
                    // 6.3 "... then set VOTING".
                    set_status(env, replica, ReplicaStatus::Voting);
                    self.state = State::Done;
                }
            }
        }
    }

    /// Routes a response by request id; false when it is not for recovery.
    pub fn on_message(
        &mut self,
        env: &mut Env,
        replica: &mut Replica,
        from: ReplicaId,
        request_id: u64,
        message: Message,
    ) -> bool {
        match (&mut self.state, message) {
            (
                State::Round { round, replies, .. },
                Message::RecoverResponse { status, begin, end },
            ) if round.request_id == request_id => {
                round.answered(from);
                replies.insert(from, Reply { status, begin, end });
                self.decide(env, replica);
                true
            }
            (State::CatchingUp { catchup }, message) => {
                catchup.on_message(env, replica, from, request_id, message)
            }
            _ => false,
        }
    }

    /// 6.3-6.5: what the replies tallied so far allow.
    fn decide(&mut self, env: &mut Env, replica: &mut Replica) {
        let State::Round { replies, .. } = &self.state else {
            return;
        };
        let count = |status| replies.values().filter(|r| r.status == status).count();
        let bounds: Vec<(Position, Position)> = replies
            .values()
            .filter(|r| r.status == ReplicaStatus::Voting)
            .filter_map(|r| Some((r.begin?, r.end?)))
            .collect();
        // 6.3 "A quorum of VOTING replies: set RECOVERING, catch up (fill) every position in
        // [lowest begin, highest end] seen in those replies, then set VOTING."
        if bounds.len() >= env.quorum {
            let lowest_begin = bounds.iter().map(|b| b.0).min().unwrap_or(0);
            let highest_end = bounds.iter().map(|b| b.1).max().unwrap_or(0);
            set_status(env, replica, ReplicaStatus::Recovering);
            let positions = replica.missing(lowest_begin, highest_end);
            // Like Mesos' catch-up, start from the local promise and climb past REJECTs.
            let catchup = CatchUp::new(positions, replica.promised() + 1);
            self.state = State::CatchingUp { catchup };
            return;
        }
        // 6.4 auto-initialization, thresholds 2*quorum - 1 (the cluster size Mesos assumes).
        let cluster = 2 * env.quorum - 1;
        if self.auto_initialize {
            let (empty, starting, voting) = (
                count(ReplicaStatus::Empty),
                count(ReplicaStatus::Starting),
                count(ReplicaStatus::Voting),
            );
            match replica.status() {
                ReplicaStatus::Empty if empty + starting >= cluster => {
                    set_status(env, replica, ReplicaStatus::Starting);
                    // The second phase is a new round, right away.
                    self.state = State::Waiting { round_at: env.now };
                    return;
                }
                ReplicaStatus::Starting if starting + voting >= cluster => {
                    set_status(env, replica, ReplicaStatus::Voting);
                    self.state = State::Done;
                    return;
                }
                _ => {}
            }
        }
        // 6.5 "Otherwise retry": every member answered and none of the above holds.
        if env.members.iter().all(|m| replies.contains_key(m)) {
            self.state = State::Waiting {
                round_at: gap(env.now, env.rng),
            };
        }
    }
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
