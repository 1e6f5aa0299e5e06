//! Model checking (stateright) of the real `Node` code in small configurations: 3 replicas, 2 of
//! them competing writers with 1-2 values each, an unordered network (any message may be delayed
//! forever, i.e. lost; one configuration also drops messages explicitly, one duplicates them),
//! timer firings while a writer is still getting elected (each one moves its clock past the
//! 100-200 ms retry delays), and a crash-restart from storage at any moment. Five configurations
//! are explored exhaustively; the two largest (a retry after REJECT, a crash) every state within a
//! fixed number of steps. The sizes and times are printed (`--nocapture`); the whole file runs in
//! seconds in a debug build. Torn writes are left to the simulation: here a handler's persists are
//! durable together, as stateright saves storage once per step.
//!
//! Property checked in every reachable state: never two values chosen at one position, where
//! "chosen" is any of: learned by a replica, carried by a `Learned` message, acknowledged to a
//! writer (`Completed`), accepted with the same proposal by a quorum, or chosen by the initial
//! history. Tombstones stand for truncated positions and are compatible with anything. A
//! "sometimes" property makes sure the search reaches acknowledged appends, so the safety result
//! is not vacuous.

use replog::*;
use stateright::actor::{
    model_timeout, Actor, ActorModel, ActorModelState, Id, LossyNetwork, Network, Out,
};
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

const REPLICAS: usize = 3;
const QUORUM: usize = 2;
const WRITERS: [usize; 2] = [0, 1];
const TICK: Duration = Duration::from_millis(250);
/// A configuration that grows past this is a mistake, not a longer run.
const STATES_MAX: usize = 500_000;

#[derive(Clone, Copy, Debug)]
struct Config {
    /// Appends each writer makes once elected.
    values: u8,
    /// Timer firings per writer (replicas that only vote need none).
    ticks: u8,
    /// Position 0 already learned everywhere (else the first election fills it).
    initialized_log: bool,
    /// Only the second writer gets timer firings.
    ticks_second_only: bool,
    /// `Learned` messages are all lost (replicas learn only through fills).
    drop_learned: bool,
    /// Start from an earlier, unlearned history at position 1 (see `Disk::initial`).
    history: bool,
}

/// A replica's durable state, hashable (stateright dedupes states by hash).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Disk {
    metadata: Metadata,
    actions: BTreeMap<Position, Action>,
    begin: Position,
    incarnation: u64,
}

impl Disk {
    fn initial(config: &Config, index: usize) -> Disk {
        let mut actions = BTreeMap::new();
        let mut promised = 0;
        if config.initialized_log {
            let nop = Some(Value::Nop { tombstone: false });
            actions.insert(
                0,
                Action {
                    position: 0,
                    promised: 0,
                    performed: Some(0),
                    learned: true,
                    value: nop,
                },
            );
        }
        if config.history {
            // Proposal 1 wrote X at position 1 on replica 0 only; proposal 2 then wrote Y on
            // replicas 1 and 2, a quorum: Y is chosen, though nobody learned it. Every later
            // proposer must adopt Y (the highest `performed`), never X.
            promised = 2;
            let (performed, value) = if index == 0 { (1, b"X") } else { (2, b"Y") };
            let value = Some(Value::Append {
                bytes: value.to_vec(),
            });
            actions.insert(
                1,
                Action {
                    position: 1,
                    promised: performed,
                    performed: Some(performed),
                    learned: false,
                    value,
                },
            );
        }
        let metadata = Metadata {
            status: ReplicaStatus::Voting,
            promised,
        };
        Disk {
            metadata,
            actions,
            begin: 0,
            incarnation: 0,
        }
    }

    fn apply(&mut self, op: PersistOp) {
        let mut storage = MemoryStorage {
            state: self.state(),
        };
        match op {
            PersistOp::Metadata(m) => storage.persist_metadata(&m),
            PersistOp::Action(a) => storage.persist_action(&a),
            PersistOp::Truncate(to) => storage.truncate(to),
        }
        .expect("memory storage never fails");
        let State {
            metadata,
            actions,
            begin,
        } = storage.state;
        (self.metadata, self.actions, self.begin) = (metadata, actions, begin);
    }

    fn state(&self) -> State {
        State {
            metadata: self.metadata,
            actions: self.actions.clone(),
            begin: self.begin,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Host {
    node: Node,
    disk: Disk,
    now: Duration,
    ticks_left: u8,
    to_append: u8,
    ops: BTreeMap<OpId, Value>,
    acked: Vec<(Position, Value)>,
    /// A writer between `start_writer` and its first `WriterElected`.
    electing: bool,
    drop_learned: bool,
}

struct ReplogActor {
    config: Config,
    writer: bool,
}

impl Host {
    /// Timers fire only while a writer is still trying to get elected (retries after REJECT,
    /// retransmits of the promise round): that is where time matters for safety. Afterwards
    /// they would only retransmit, which the lossy and duplicating networks already cover.
    fn arm(&mut self, o: &mut Out<ReplogActor>) {
        if self.ticks_left > 0 && self.electing {
            o.set_timer((), model_timeout());
        } else {
            o.cancel_timer(());
        }
    }

    /// Carries out commands in order; an elected writer appends its values.
    fn run(&mut self, id: usize, commands: Vec<Command>, o: &mut Out<ReplogActor>) {
        let mut work: VecDeque<Command> = commands.into();
        let mut saved = false;
        while let Some(command) = work.pop_front() {
            match command {
                Command::Persist(op) => {
                    self.disk.apply(op);
                    saved = true;
                }
                Command::Send {
                    envelope:
                        Envelope {
                            message: Message::Learned { .. },
                            ..
                        },
                    ..
                } if self.drop_learned => {}
                Command::Send { to, envelope } => o.send(Id::from(to as usize), envelope),
                Command::WriterElected { .. } => {
                    self.electing = false;
                    while self.to_append > 0 {
                        self.to_append -= 1;
                        let bytes = vec![b'a' + id as u8, self.to_append];
                        // The first append may already be refused (demoted): stop there.
                        let Ok((op, more)) = self.node.append(self.now, bytes.clone()) else {
                            break;
                        };
                        self.ops.insert(op, Value::Append { bytes });
                        work.extend(more);
                    }
                }
                Command::Completed {
                    op,
                    result: Ok(position),
                } => {
                    self.acked.push((position, self.ops[&op].clone()));
                }
                _ => {}
            }
        }
        if saved {
            o.save(self.disk.clone());
        }
    }
}

impl Actor for ReplogActor {
    type Msg = Envelope;
    type State = Host;
    type Timer = ();
    type Random = ();
    type Storage = Disk;

    fn on_start(&self, id: Id, storage: &Option<Disk>, o: &mut Out<Self>) -> Host {
        let index = usize::from(id);
        let disk = match storage {
            Some(disk) => Disk {
                incarnation: disk.incarnation + 1,
                ..disk.clone()
            },
            None => Disk::initial(&self.config, index),
        };
        let config = NodeConfig {
            id: index as u64,
            quorum: QUORUM,
            auto_initialize: false,
            seed: index as u64 * 100 + disk.incarnation,
        };
        let mut host = Host {
            node: Node::new(config, disk.state()),
            disk,
            now: Duration::ZERO,
            ticks_left: if self.writer && (index == WRITERS[1] || !self.config.ticks_second_only) {
                self.config.ticks
            } else {
                0
            },
            to_append: if self.writer { self.config.values } else { 0 },
            ops: BTreeMap::new(),
            acked: Vec::new(),
            electing: self.writer,
            drop_learned: self.config.drop_learned,
        };
        let members: BTreeSet<ReplicaId> = (0..REPLICAS as u64).collect();
        let commands = host.node.set_network(host.now, members);
        host.run(index, commands, o);
        if self.writer {
            let commands = host.node.start_writer(host.now);
            host.run(index, commands, o);
        }
        host.arm(o);
        host
    }

    fn on_msg(&self, id: Id, state: &mut Cow<Host>, _src: Id, msg: Envelope, o: &mut Out<Self>) {
        let host = state.to_mut();
        let commands = host.node.receive(host.now, msg);
        host.run(usize::from(id), commands, o);
        host.arm(o);
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<Host>, _timer: &(), o: &mut Out<Self>) {
        let host = state.to_mut();
        // Past the election retry and fill back-off delays (100-200 ms), short of a retransmit
        // (RETRANSMIT_INTERVAL, 300 ms): the model's networks already lose and duplicate.
        host.now += TICK;
        host.ticks_left = host.ticks_left.saturating_sub(1);
        let commands = host.node.tick(host.now);
        host.run(usize::from(id), commands, o);
        host.arm(o);
    }
}

type ModelState = ActorModelState<ReplogActor>;

impl Config {
    /// Values chosen before the model starts (a state cannot show what a quorum accepted once
    /// and later overwrote, so the property starts from what the initial history chose).
    fn initially_chosen(&self) -> BTreeMap<Position, Value> {
        let mut chosen = BTreeMap::new();
        if self.history {
            chosen.insert(
                1,
                Value::Append {
                    bytes: b"Y".to_vec(),
                },
            );
        }
        chosen
    }
}

/// Never two values chosen at one position (tombstones aside).
fn one_value_per_position(model: &ActorModel<ReplogActor, Config>, state: &ModelState) -> bool {
    let mut chosen = model.cfg.initially_chosen();
    let mut agree = |position: Position, value: &Value| -> bool {
        value.is_tombstone() || chosen.entry(position).or_insert_with(|| value.clone()) == value
    };
    let mut votes: BTreeMap<(Position, Proposal, &Value), usize> = BTreeMap::new();
    for host in &state.actor_states {
        for action in host.disk.actions.values() {
            let Some(value) = &action.value else { continue };
            if action.learned && !agree(action.position, value) {
                return false;
            }
            if let Some(performed) = action.performed {
                *votes
                    .entry((action.position, performed, value))
                    .or_default() += 1;
            }
        }
        if !host.acked.iter().all(|(p, v)| agree(*p, v)) {
            return false;
        }
    }
    for envelope in state.network.iter_all() {
        if let Message::Learned {
            action:
                Action {
                    position,
                    value: Some(value),
                    ..
                },
        } = &envelope.msg.message
        {
            if !agree(*position, value) {
                return false;
            }
        }
    }
    votes
        .into_iter()
        .filter(|(_, n)| *n >= QUORUM)
        .all(|((p, _, v), _)| agree(p, v))
}

/// Network behaviours. In the unordered non-duplicating network any message may stay
/// undelivered forever, which is message loss as far as safety goes; `Lossy` also drops
/// messages explicitly, `Duplicating` delivers any message any number of times.
#[derive(Clone, Copy, PartialEq)]
enum Net {
    Unordered,
    Lossy,
    Duplicating,
}

/// Explores every state reachable within `depth` steps (0: all of them) and checks the properties.
fn check(name: &str, config: Config, net: Net, crashes: usize, depth: usize) {
    let started = Instant::now();
    let network = match net {
        Net::Duplicating => Network::new_unordered_duplicating([]),
        Net::Unordered | Net::Lossy => Network::new_unordered_nonduplicating([]),
    };
    let model = ActorModel::new(config, ())
        .actors((0..REPLICAS).map(|i| ReplogActor {
            config,
            writer: WRITERS.contains(&i),
        }))
        .init_network(network)
        .lossy_network(if net == Net::Lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        })
        .max_crashes(crashes)
        .property(
            Expectation::Always,
            "one value per position",
            one_value_per_position,
        )
        .property(
            Expectation::Sometimes,
            "an append is acknowledged",
            |_, state| state.actor_states.iter().any(|h| !h.acked.is_empty()),
        );
    let checker = model
        .checker()
        .target_max_depth(depth)
        .target_state_count(STATES_MAX)
        .spawn_bfs()
        .join();
    let unique = checker.unique_state_count();
    println!(
        "{name}: {unique} unique states, depth {}, {:?}",
        checker.max_depth(),
        started.elapsed()
    );
    assert!(
        unique < STATES_MAX,
        "{name}: the state space outgrew its bound; shrink the configuration"
    );
    checker.assert_properties();
}

const BASE: Config = Config {
    values: 1,
    ticks: 0,
    initialized_log: true,
    ticks_second_only: false,
    drop_learned: false,
    history: false,
};

#[test]
fn one_value_each_lossy_network() {
    check("1 value each, lossy", BASE, Net::Lossy, 0, 0);
}

#[test]
fn two_values_each() {
    check(
        "2 values each",
        Config { values: 2, ..BASE },
        Net::Unordered,
        0,
        0,
    );
}

#[test]
fn duplicating_network() {
    check("duplicating network", BASE, Net::Duplicating, 0, 0);
}

/// Section 5: on a new log the first election fills position 0 (explicit promise at
/// proposal + 1, write, learn) while the other writer competes. `Learned` messages are all lost
/// here, so replicas learn only through fills and the writers' own replicas.
#[test]
fn first_election_fills_position_0() {
    check(
        "fresh log",
        Config {
            initialized_log: false,
            drop_learned: true,
            ..BASE
        },
        Net::Unordered,
        0,
        0,
    );
}

/// The loser of an election retries with the highest rejected number + 1, then must fill (and
/// adopt) whatever the first writer left at its positions. Bounded by depth: every state within
/// 14 steps (deliveries and timer firings).
#[test]
fn retry_after_reject_bounded() {
    let config = Config {
        ticks: 1,
        ticks_second_only: true,
        drop_learned: true,
        ..BASE
    };
    check("retry after reject", config, Net::Unordered, 0, 14);
}

/// Both writers' elections must fill position 1, where an older proposal's value is chosen but
/// unlearned and a lower one's is still around: section 5 fill "pick the action with the
/// highest `performed`".
#[test]
fn elections_adopt_a_chosen_unlearned_value() {
    check(
        "chosen, unlearned history",
        Config {
            history: true,
            drop_learned: true,
            ..BASE
        },
        Net::Unordered,
        0,
        0,
    );
}

/// A crash and restart from storage, of any node at any moment (`Learned` lost, depth 9).
#[test]
fn crash_restart_bounded() {
    check(
        "crash-restart",
        Config {
            drop_learned: true,
            ..BASE
        },
        Net::Unordered,
        1,
        9,
    );
}
