//! One test per replica rule of replicated-log.md section 4 (and the data-model rules of section
//! 2 it relies on). Each asserts both the reply and what must be persisted before it.

use super::*;

fn voting(promised: Proposal) -> Replica {
    Replica::restore(State {
        metadata: Metadata {
            status: ReplicaStatus::Voting,
            promised,
        },
        ..State::default()
    })
}

fn append(bytes: &[u8]) -> Value {
    Value::Append {
        bytes: bytes.to_vec(),
    }
}

fn promise(r: &mut Replica, proposal: Proposal, position: Option<Position>) -> Handled {
    r.handle(Message::PromiseRequest { proposal, position })
}

fn write(r: &mut Replica, proposal: Proposal, position: Position, value: Value) -> Handled {
    r.handle(Message::WriteRequest {
        proposal,
        position,
        value,
    })
}

fn verdict(h: &Handled) -> Verdict {
    match h.reply {
        Some(Message::PromiseResponse { verdict, .. })
        | Some(Message::WriteResponse { verdict, .. }) => verdict,
        ref other => panic!("not a promise/write response: {other:?}"),
    }
}

fn learned(position: Position, value: Value) -> Action {
    Action {
        position,
        promised: 1,
        performed: Some(1),
        learned: true,
        value: Some(value),
    }
}

#[test]
fn rule_4_1_not_voting_ignores_promises_and_writes_but_answers_recover() {
    for status in [
        ReplicaStatus::Empty,
        ReplicaStatus::Starting,
        ReplicaStatus::Recovering,
    ] {
        let mut r = Replica::restore(State {
            metadata: Metadata {
                status,
                promised: 0,
            },
            ..State::default()
        });
        for h in [
            promise(&mut r, 5, None),
            promise(&mut r, 5, Some(0)),
            write(&mut r, 5, 0, append(b"x")),
        ] {
            assert_eq!(verdict(&h), Verdict::Ignored, "{status:?}");
            assert!(h.persist.is_empty(), "IGNORED changes nothing");
        }
        let h = r.handle(Message::RecoverRequest);
        assert_eq!(
            h.reply,
            Some(Message::RecoverResponse {
                status,
                begin: None,
                end: None
            })
        );
    }
    let r = voting(0);
    assert_eq!(
        r.on_recover(),
        Message::RecoverResponse {
            status: ReplicaStatus::Voting,
            begin: Some(0),
            end: Some(0)
        }
    );
}

#[test]
fn rule_4_2_implicit_promise_rejects_at_or_below_promised_and_persists_before_accepting() {
    let mut r = voting(3);
    write(&mut r, 4, 7, append(b"x"));
    let h = promise(&mut r, 3, None);
    assert_eq!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Reject,
            proposal: 3,
            position: None,
            action: None
        })
    );
    let h = promise(&mut r, 9, None);
    assert_eq!(
        h.persist,
        vec![PersistOp::Metadata(Metadata {
            status: ReplicaStatus::Voting,
            promised: 9
        })]
    );
    assert_eq!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            proposal: 9,
            position: Some(7),
            action: None
        })
    );
    // "Only make an implicit promise once": the same number again is a REJECT.
    assert_eq!(verdict(&promise(&mut r, 9, None)), Verdict::Reject);
    assert_eq!(r.promised(), 9);
}

#[test]
fn rule_4_3_explicit_promise_below_begin_answers_a_learned_tombstone() {
    let mut r = voting(2);
    r.on_learned(learned(5, Value::Truncate { to: 5 }));
    let h = promise(&mut r, 1, Some(3));
    assert!(h.persist.is_empty());
    let Some(Message::PromiseResponse {
        verdict: Verdict::Accept,
        action: Some(a),
        ..
    }) = h.reply
    else {
        panic!("{h:?}")
    };
    assert!(a.learned && a.value == Some(Value::Nop { tombstone: true }) && a.position == 3);
}

#[test]
fn rule_4_3_explicit_promise_on_nothing_stored_compares_with_the_implicit_promise() {
    let mut r = voting(5);
    let h = promise(&mut r, 5, Some(2));
    assert_eq!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Reject,
            proposal: 5,
            position: Some(2),
            action: None
        })
    );
    let h = promise(&mut r, 6, Some(2));
    let stored = Action {
        position: 2,
        promised: 6,
        performed: None,
        learned: false,
        value: None,
    };
    assert_eq!(h.persist, vec![PersistOp::Action(stored.clone())]);
    assert_eq!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            proposal: 6,
            position: Some(2),
            action: None
        })
    );
    assert_eq!(r.action(2), Some(&stored));
    assert_eq!(
        r.promised(),
        5,
        "explicit promises leave the implicit one alone"
    );
}

#[test]
fn rule_4_3_explicit_promise_on_an_action_raises_it_and_returns_the_previous_one() {
    let mut r = voting(1);
    write(&mut r, 4, 2, append(b"v"));
    assert_eq!(verdict(&promise(&mut r, 4, Some(2))), Verdict::Reject);
    let h = promise(&mut r, 8, Some(2));
    let previous = Action {
        position: 2,
        promised: 4,
        performed: Some(4),
        learned: false,
        value: Some(append(b"v")),
    };
    assert_eq!(
        h.persist,
        vec![PersistOp::Action(Action {
            promised: 8,
            ..previous.clone()
        })]
    );
    assert_eq!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            proposal: 8,
            position: Some(2),
            action: Some(previous),
        })
    );
}

#[test]
fn rule_4_4_write_on_nothing_stored_rejects_only_below_the_promise() {
    let mut r = voting(5);
    let h = write(&mut r, 4, 1, append(b"a"));
    assert_eq!(
        h.reply,
        Some(Message::WriteResponse {
            verdict: Verdict::Reject,
            proposal: 5,
            position: 1
        })
    );
    assert!(h.persist.is_empty());
    // Equal to the promise: the elected coordinator's own writes (Multi-Paxos, no promise phase).
    let h = write(&mut r, 5, 1, append(b"a"));
    let stored = Action {
        position: 1,
        promised: 5,
        performed: Some(5),
        learned: false,
        value: Some(append(b"a")),
    };
    assert_eq!(h.persist, vec![PersistOp::Action(stored)]);
    assert_eq!(
        h.reply,
        Some(Message::WriteResponse {
            verdict: Verdict::Accept,
            proposal: 5,
            position: 1
        })
    );
    // A retransmitted write is accepted again, unchanged.
    assert_eq!(verdict(&write(&mut r, 5, 1, append(b"a"))), Verdict::Accept);
}

#[test]
fn rule_4_4_write_on_an_action_rejects_below_its_promise_and_overwrites_otherwise() {
    let mut r = voting(1);
    promise(&mut r, 7, Some(3));
    let h = write(&mut r, 6, 3, append(b"old"));
    assert_eq!(
        h.reply,
        Some(Message::WriteResponse {
            verdict: Verdict::Reject,
            proposal: 7,
            position: 3
        })
    );
    write(&mut r, 7, 3, append(b"a"));
    let h = write(&mut r, 9, 3, append(b"b"));
    assert_eq!(verdict(&h), Verdict::Accept);
    let a = r.action(3).unwrap();
    assert_eq!(
        (a.performed, a.promised, a.value.clone()),
        (Some(9), 9, Some(append(b"b"))),
        "performed <= promised"
    );
}

#[test]
fn rule_4_4_write_to_a_learned_or_truncated_position_gets_no_reply_and_changes_nothing() {
    let mut r = voting(1);
    r.on_learned(learned(4, append(b"chosen")));
    assert_eq!(write(&mut r, 9, 4, append(b"other")), Handled::default());
    assert_eq!(r.action(4).unwrap().value, Some(append(b"chosen")));
    r.on_learned(learned(6, Value::Truncate { to: 6 }));
    assert_eq!(write(&mut r, 9, 5, append(b"late")), Handled::default());
}

#[test]
fn rule_4_5_learned_is_stored_in_any_status_and_never_changes() {
    let mut r = Replica::restore(State::default()); // EMPTY
    let a = learned(2, append(b"x"));
    assert_eq!(r.on_learned(a.clone()), vec![PersistOp::Action(a.clone())]);
    assert!(
        r.on_learned(learned(2, append(b"y"))).is_empty(),
        "a second value for a learned position is dropped"
    );
    assert_eq!(r.action(2), Some(&a));
    assert!(
        r.on_learned(Action {
            value: None,
            ..learned(3, append(b""))
        })
        .is_empty(),
        "malformed: no value"
    );
}

#[test]
fn rule_4_5_learned_truncate_moves_begin_and_drops_positions_below() {
    let mut r = voting(1);
    for p in 0..4 {
        r.on_learned(learned(p, append(&[p as u8])));
    }
    write(&mut r, 1, 4, append(b"u"));
    let t = learned(5, Value::Truncate { to: 3 });
    assert_eq!(
        r.on_learned(t.clone()),
        vec![PersistOp::Action(t), PersistOp::Truncate(3)]
    );
    assert_eq!(r.begin(), 3);
    assert_eq!(r.action(2), None);
    assert!(
        r.is_learned(2),
        "below begin counts as learned (a tombstone)"
    );
    assert!(r.on_learned(learned(1, append(b"late"))).is_empty());
    // A lower truncate learned later does not move begin back.
    assert_eq!(r.on_learned(learned(6, Value::Truncate { to: 1 })).len(), 1);
    assert_eq!(r.begin(), 3);
}

#[test]
fn bounds_missing_and_contiguous_learned_reads() {
    let mut r = voting(1);
    assert_eq!(
        (r.last(), r.end()),
        (None, 0),
        "a new log reports end 0, as Mesos does"
    );
    r.on_learned(learned(0, Value::Nop { tombstone: false }));
    r.on_learned(learned(1, append(b"a")));
    write(&mut r, 1, 2, append(b"b")); // accepted, not learned
    r.on_learned(learned(4, append(b"d")));
    assert_eq!((r.last(), r.end()), (Some(4), 4));
    assert_eq!(r.missing(0, 5), vec![2, 3, 5]);
    assert_eq!(
        r.learned_from(0),
        vec![(0, Value::Nop { tombstone: false }), (1, append(b"a"))]
    );
    assert_eq!(r.learned_from(4), vec![(4, append(b"d"))]);
    // Restore keeps only positions >= begin.
    let mut actions = BTreeMap::new();
    actions.insert(1, learned(1, append(b"gone")));
    actions.insert(3, learned(3, append(b"kept")));
    let r = Replica::restore(State {
        metadata: Metadata::default(),
        actions,
        begin: 3,
    });
    assert_eq!(
        (r.action(1), r.last(), r.learned_from(0)),
        (None, Some(3), vec![(3, append(b"kept"))])
    );
}

#[test]
fn status_changes_persist_metadata_once() {
    let mut r = Replica::restore(State::default());
    assert_eq!(
        r.set_status(ReplicaStatus::Starting),
        Some(PersistOp::Metadata(Metadata {
            status: ReplicaStatus::Starting,
            promised: 0
        }))
    );
    assert_eq!(r.set_status(ReplicaStatus::Starting), None);
}
