//! `Node` API tests against the rules of replicated-log.md sections 1, 5 and 6, on a small
//! hand-driven cluster: messages sit in a queue until a test delivers, drops or holds them, and
//! every `Persist` is applied to that node's `MemoryStorage` in command order.

use replog::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

struct Cluster {
    nodes: BTreeMap<ReplicaId, Node>,
    disks: BTreeMap<ReplicaId, MemoryStorage>,
    /// (to, envelope) in send order.
    net: Vec<(ReplicaId, Envelope)>,
    /// Commands other than Persist/Send, per node, in order.
    events: Vec<(ReplicaId, Command)>,
    now: Duration,
    quorum: usize,
}

impl Cluster {
    /// `n` replicas already VOTING with an empty log (as after `mesos-log initialize`).
    fn voting(n: u64, quorum: usize) -> Cluster {
        let disk = MemoryStorage {
            state: State {
                metadata: Metadata {
                    status: ReplicaStatus::Voting,
                    promised: 0,
                },
                ..State::default()
            },
        };
        Cluster::with_disks((0..n).map(|id| (id, disk.clone())).collect(), quorum)
    }

    fn with_disks(disks: BTreeMap<ReplicaId, MemoryStorage>, quorum: usize) -> Cluster {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            disks,
            net: vec![],
            events: vec![],
            now: Duration::ZERO,
            quorum,
        };
        for id in c.disks.keys().copied().collect::<Vec<_>>() {
            c.start(id);
        }
        c
    }

    fn members(&self) -> BTreeSet<ReplicaId> {
        self.disks.keys().copied().collect()
    }

    /// (Re)starts a node from its disk, as a process start would.
    fn start(&mut self, id: ReplicaId) {
        let config = NodeConfig {
            id,
            quorum: self.quorum,
            auto_initialize: true,
            seed: id * 1000 + self.now.as_millis() as u64,
        };
        let restored = self.disks[&id].clone().restore().unwrap();
        self.nodes.insert(id, Node::new(config, restored));
        let members = self.members();
        let cmds = self
            .nodes
            .get_mut(&id)
            .unwrap()
            .set_network(self.now, members);
        self.exec(id, cmds);
    }

    fn crash(&mut self, id: ReplicaId) {
        self.nodes.remove(&id);
        self.net.retain(|(to, e)| *to != id && e.from != id);
    }

    fn exec(&mut self, id: ReplicaId, cmds: Vec<Command>) {
        for cmd in cmds {
            match cmd {
                Command::Persist(op) => {
                    let disk = self.disks.get_mut(&id).unwrap();
                    match op {
                        PersistOp::Metadata(m) => disk.persist_metadata(&m).unwrap(),
                        PersistOp::Action(a) => disk.persist_action(&a).unwrap(),
                        PersistOp::Truncate(to) => disk.truncate(to).unwrap(),
                    }
                }
                Command::Send { to, envelope } => self.net.push((to, envelope)),
                other => self.events.push((id, other)),
            }
        }
    }

    fn node(&mut self, id: ReplicaId) -> &mut Node {
        self.nodes.get_mut(&id).unwrap()
    }

    fn call(&mut self, id: ReplicaId, f: impl FnOnce(&mut Node, Duration) -> Vec<Command>) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let cmds = f(node, now);
        self.exec(id, cmds);
    }

    fn append(&mut self, id: ReplicaId, bytes: &[u8]) -> OpId {
        let now = self.now;
        let (op, cmds) = self.node(id).append(now, bytes.to_vec()).unwrap();
        self.exec(id, cmds);
        op
    }

    /// Delivers (in order) every queued message matching `pred`; the others stay queued.
    fn deliver_where(&mut self, mut pred: impl FnMut(ReplicaId, &Envelope) -> bool) {
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|(to, e)| pred(*to, e));
        self.net = stay;
        for (to, envelope) in go {
            self.call(to, |n, now| n.receive(now, envelope));
        }
    }

    fn drop_where(&mut self, mut pred: impl FnMut(ReplicaId, &Envelope) -> bool) {
        self.net.retain(|(to, e)| !pred(*to, e));
    }

    fn tick(&mut self, dt: Duration) {
        self.now += dt;
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.call(id, |n, now| n.tick(now));
        }
    }

    /// Delivers everything and ticks until nothing was sent for 3 s (at most 60 s).
    fn settle(&mut self) {
        let (mut quiet, deadline) = (Duration::ZERO, self.now + Duration::from_secs(60));
        while quiet < Duration::from_secs(3) && self.now < deadline {
            if self.net.is_empty() {
                self.tick(10 * MS);
                quiet += 10 * MS;
            } else {
                quiet = Duration::ZERO;
                self.deliver_where(|_, _| true);
            }
        }
    }

    fn completed(&self, id: ReplicaId, op: OpId) -> Option<Result<Position, WriteError>> {
        self.events.iter().find_map(|(n, c)| match c {
            Command::Completed { op: o, result } if *n == id && *o == op => Some(result.clone()),
            _ => None,
        })
    }

    fn has_event(&self, id: ReplicaId, event: &Command) -> bool {
        self.events.iter().any(|(n, c)| *n == id && c == event)
    }

    fn elect(&mut self, id: ReplicaId) {
        self.call(id, |n, now| n.start_writer(now));
        self.settle();
        assert!(self.node(id).is_writer_elected(), "node {id} not elected");
    }

    fn learned_on_disk(&self, id: ReplicaId, position: Position) -> Option<Value> {
        let a = self.disks[&id].state.actions.get(&position)?;
        if a.learned {
            a.value.clone()
        } else {
            None
        }
    }
}

fn is_write(e: &Envelope) -> bool {
    matches!(e.message, Message::WriteRequest { .. })
}

fn bytes(v: &[u8]) -> Value {
    Value::Append { bytes: v.to_vec() }
}

#[test]
fn rule_5_first_election_fills_position_0_and_appends_from_1() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    assert!(c.has_event(0, &Command::WriterElected { end: 0 }));
    let op = c.append(0, b"a");
    c.settle();
    assert_eq!(c.completed(0, op), Some(Ok(1)));
    assert_eq!(
        c.node(0).learned(0),
        vec![(0, Value::Nop { tombstone: false }), (1, bytes(b"a"))]
    );
}

#[test]
fn rule_5_completed_only_after_a_quorum_persisted_the_entry() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    let op = c.append(0, b"x");
    // Only the local replica has it: no completion, however long we wait for 1 and 2.
    c.drop_where(|_, e| is_write(e));
    c.tick(100 * MS);
    assert_eq!(c.completed(0, op), None);
    assert!(
        c.disks[&0].state.actions.contains_key(&1),
        "the local replica persisted its vote"
    );
    // A retransmission reaches replica 1; its ACCEPT is queued but not delivered yet.
    c.tick(RETRANSMIT_INTERVAL);
    c.deliver_where(|to, e| to == 1 && is_write(e));
    c.drop_where(|_, e| is_write(e));
    assert_eq!(
        c.completed(0, op),
        None,
        "replica 1's reply not delivered yet"
    );
    assert!(
        c.disks[&1].state.actions.contains_key(&1),
        "replica 1 persisted before replying"
    );
    c.deliver_where(|to, _| to == 0);
    assert_eq!(c.completed(0, op), Some(Ok(1)));
    // The completion comes after the local replica learned it (its persist precedes Completed).
    assert_eq!(c.learned_on_disk(0, 1), Some(bytes(b"x")));
}

#[test]
fn rule_5_fencing_a_deposed_writer_is_refused_and_demoted() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    let first = c.append(0, b"a");
    c.settle();
    assert_eq!(c.completed(0, first), Some(Ok(1)));
    // Node 1 takes over (its implicit promise reaches 1 and 2); node 0 does not hear of it.
    c.call(1, |n, now| n.start_writer(now));
    c.deliver_where(|to, e| to == 1 || (to == 2 && e.from == 1));
    c.drop_where(|to, _| to == 0);
    c.deliver_where(|to, _| to == 1);
    assert!(c.node(1).is_writer_elected());
    // The deposed writer's append is refused by replica 2, which promised the higher proposal.
    let late = c.append(0, b"stale");
    c.deliver_where(|to, e| to == 2 && e.from == 0);
    c.deliver_where(|to, e| to == 0 && e.from == 2);
    assert_eq!(c.completed(0, late), Some(Err(WriteError::Demoted)));
    assert!(c.has_event(0, &Command::WriterDemoted));
    assert!(!c.node(0).is_writer_elected());
    let now = c.now;
    assert_eq!(
        c.node(0).append(now, b"more".to_vec()).unwrap_err(),
        WriteError::NotWriter
    );
    // The new writer's entry wins position 2 everywhere.
    let op = c.append(1, b"new");
    c.settle();
    assert_eq!(c.completed(1, op), Some(Ok(2)));
    for id in [1, 2] {
        assert_eq!(c.learned_on_disk(id, 2), Some(bytes(b"new")));
    }
}

#[test]
fn rule_5_reads_after_election_see_every_acknowledged_entry() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    let mut acked = vec![];
    for i in 0..5u8 {
        let op = c.append(0, &[i]);
        // Learned messages are lost: replicas 1 and 2 hold accepted, unlearned entries.
        c.drop_where(|_, e| matches!(e.message, Message::Learned { .. }));
        while !c.net.is_empty() {
            c.deliver_where(|_, _| true);
            c.drop_where(|_, e| matches!(e.message, Message::Learned { .. }));
        }
        assert_eq!(c.completed(0, op), Some(Ok(1 + i as u64)));
        acked.push((1 + i as u64, bytes(&[i])));
    }
    c.crash(0);
    assert!(
        c.node(1).learned(1).is_empty(),
        "nothing learned at replica 1 yet"
    );
    c.elect(1);
    let read: Vec<_> = c.node(1).learned(1);
    assert_eq!(read, acked);
    assert!(c.has_event(1, &Command::WriterElected { end: 5 }));
}

#[test]
fn rule_5_competing_proposers_resolve_by_reject_and_bump() {
    let mut c = Cluster::voting(3, 2);
    // Both start at once with the same proposal number: REJECTs, bumps, random retries.
    c.call(0, |n, now| n.start_writer(now));
    c.call(1, |n, now| n.start_writer(now));
    c.settle();
    assert!(
        c.node(0).is_writer_elected() && c.node(1).is_writer_elected(),
        "each retries until elected"
    );
    // Only the later election holds a promise quorum: exactly one of the two can still write.
    let (a, b) = (c.append(0, b"zero"), c.append(1, b"one"));
    c.settle();
    let mut results = [c.completed(0, a).unwrap(), c.completed(1, b).unwrap()];
    results.sort_by_key(|r| r.is_ok());
    assert_eq!(results[0], Err(WriteError::Demoted));
    assert!(results[1].is_ok(), "{results:?}");
}

#[test]
fn stop_writer_fails_pending_operations_on_the_next_call() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    let a = c.append(0, b"a");
    let b = c.append(0, b"b");
    c.node(0).stop_writer();
    assert!(!c.node(0).is_writer_elected());
    c.tick(MS);
    assert_eq!(c.completed(0, a), Some(Err(WriteError::Stopped)));
    assert_eq!(c.completed(0, b), Some(Err(WriteError::Stopped)));
}

#[test]
fn truncate_moves_begin_everywhere_and_reads_start_there() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    for i in 0..4u8 {
        c.append(0, &[i]);
    }
    let now = c.now;
    assert_eq!(
        c.node(0).truncate(now, 99).unwrap_err(),
        WriteError::TruncateBeyondEnd {
            to: 99,
            position: 5
        }
    );
    let (op, cmds) = c.node(0).truncate(now, 3).unwrap();
    c.exec(0, cmds);
    c.settle();
    assert_eq!(c.completed(0, op), Some(Ok(5)));
    for id in 0..3 {
        assert_eq!(c.node(id).begin(), 3);
        assert_eq!(c.disks[&id].state.begin, 3);
        assert_eq!(c.node(id).end(), Some(5));
    }
    assert_eq!(
        c.node(0).learned(0),
        vec![
            (3, bytes(&[2])),
            (4, bytes(&[3])),
            (5, Value::Truncate { to: 3 })
        ]
    );
}

#[test]
fn rule_6_fresh_cluster_auto_initializes_only_with_every_replica() {
    let disks: BTreeMap<_, _> = (0..3).map(|id| (id, MemoryStorage::default())).collect();
    let mut c = Cluster::with_disks(disks, 2);
    c.crash(2);
    c.settle();
    assert!(
        (0..2).all(|id| c.node(id).status() != ReplicaStatus::Voting),
        "2 of 3 cannot initialize"
    );
    c.start(2);
    c.settle();
    for id in 0..3 {
        assert_eq!(c.node(id).status(), ReplicaStatus::Voting);
        assert!(c.has_event(id, &Command::StatusChanged(ReplicaStatus::Voting)));
    }
    c.elect(2);
}

#[test]
fn rule_6_single_replica_with_quorum_1_initializes_alone() {
    let mut c = Cluster::with_disks(BTreeMap::from([(7, MemoryStorage::default())]), 1);
    c.settle();
    assert_eq!(c.node(7).status(), ReplicaStatus::Voting);
    c.elect(7);
    let op = c.append(7, b"solo");
    assert_eq!(c.completed(7, op), Some(Ok(1)));
}

#[test]
fn rule_6_wiped_replica_recovers_the_log_before_voting() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    for i in 0..3u8 {
        c.append(0, &[i]);
    }
    c.settle();
    c.crash(2);
    c.disks.insert(2, MemoryStorage::default());
    c.start(2);
    assert_eq!(c.node(2).status(), ReplicaStatus::Empty);
    c.settle();
    assert_eq!(c.node(2).status(), ReplicaStatus::Voting);
    assert!(c.has_event(2, &Command::StatusChanged(ReplicaStatus::Recovering)));
    let read = c.node(2).learned(1);
    assert_eq!(
        read,
        vec![(1, bytes(&[0])), (2, bytes(&[1])), (3, bytes(&[2]))]
    );
}

#[test]
fn foreign_format_versions_and_stale_replies_are_ignored() {
    let mut c = Cluster::voting(3, 2);
    c.elect(0);
    let op = c.append(0, b"a");
    // A reply for another request id, and a reply in an unknown format, complete nothing.
    let bogus = Envelope::new(
        1,
        12345,
        Message::WriteResponse {
            verdict: Verdict::Accept,
            proposal: 1,
            position: 1,
        },
    );
    c.call(0, |n, now| n.receive(now, bogus.clone()));
    c.call(0, |n, now| {
        n.receive(
            now,
            Envelope {
                request_id: 0,
                from: 2,
                ..bogus.clone()
            },
        )
    });
    let mut foreign = bogus;
    foreign.format_version = FORMAT_VERSION + 1;
    c.call(0, |n, now| n.receive(now, foreign));
    assert_eq!(c.completed(0, op), None);
    c.settle();
    assert_eq!(c.completed(0, op), Some(Ok(1)));
}
