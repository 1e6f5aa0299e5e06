//! Marathon's leader election against a real ZooKeeper.

mod common;

use common::{connect, wait_for, ZkServer};
use marathon_store::{Leadership, MarathonElection};

#[tokio::test]
async fn the_lowest_leads_and_the_next_takes_over() {
    let zk = ZkServer::start("election");
    let conn_a = connect(&zk, "/marathon").await;
    let a = MarathonElection::contend(&conn_a, "m1:8080").await.unwrap();
    let mut a_rx = a.leadership();
    wait_for(&mut a_rx, "a leads", |l| *l == Leadership::Leader).await;
    assert_eq!(a.leader().as_deref(), Some("m1:8080"));
    assert!(a
        .member_path()
        .unwrap()
        .starts_with("/marathon/leader-curator/member-"));

    let conn_b = connect(&zk, "/marathon").await;
    let b = MarathonElection::contend(&conn_b, "m2:8080").await.unwrap();
    let mut b_rx = b.leadership();
    wait_for(&mut b_rx, "b is a standby knowing a", |l| {
        *l == Leadership::Standby {
            leader: Some("m1:8080".into()),
        }
    })
    .await;
    assert_eq!(b.leader().as_deref(), Some("m1:8080"));

    // The leader's session closes: its node goes, b leads.
    drop(a);
    drop(conn_a);
    wait_for(&mut b_rx, "b leads after a's session closed", |l| {
        *l == Leadership::Leader
    })
    .await;
    assert_eq!(b.leader().as_deref(), Some("m2:8080"));

    // A third instance, then b abdicates: c leads, b is Lost.
    let conn_c = connect(&zk, "/marathon").await;
    let c = MarathonElection::contend(&conn_c, "m3:8080").await.unwrap();
    let mut c_rx = c.leadership();
    wait_for(&mut c_rx, "c is a standby knowing b", |l| {
        *l == Leadership::Standby {
            leader: Some("m2:8080".into()),
        }
    })
    .await;
    b.abdicate().await.unwrap();
    assert_eq!(*b_rx.borrow(), Leadership::Lost);
    wait_for(&mut c_rx, "c leads after b abdicated", |l| {
        *l == Leadership::Leader
    })
    .await;
}

#[tokio::test]
async fn a_vanished_participant_is_lost() {
    let zk = ZkServer::start("vanish");
    let conn = connect(&zk, "/marathon").await;
    let a = MarathonElection::contend(&conn, "m1:8080").await.unwrap();
    let mut rx = a.leadership();
    wait_for(&mut rx, "a leads", |l| *l == Leadership::Leader).await;
    let other = connect(&zk, "/marathon").await;
    other
        .client
        .delete(a.member_path().unwrap(), None)
        .await
        .unwrap();
    wait_for(&mut rx, "a is lost", |l| *l == Leadership::Lost).await;
    assert_eq!(a.leader(), None);
}

#[tokio::test]
async fn standalone_leads_at_once() {
    let handle = MarathonElection::standalone("m1:8080");
    assert_eq!(*handle.leadership().borrow(), Leadership::Leader);
    let rx = handle.leadership();
    handle.abdicate().await.unwrap();
    assert_eq!(*rx.borrow(), Leadership::Lost);
}
