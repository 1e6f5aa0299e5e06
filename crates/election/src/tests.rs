//! The election rules driven through the in-memory ensemble: expiry, local expiry, reconnection,
//! withdrawal and a herd of changes. Time is tokio's paused clock, so session timers are exact.

use super::*;
use crate::memory::MemoryEnsemble;

const TIMEOUT: Duration = Duration::from_secs(2);

fn info(n: u8) -> MasterInfo {
    MasterInfo::new(
        format!("m{n}"),
        std::net::Ipv4Addr::new(127, 0, 0, n),
        5050,
        format!("m{n}"),
    )
}

fn contender(ensemble: &MemoryEnsemble, n: u8) -> Election {
    let config = ElectionConfig {
        dir: "/mesos".into(),
        session_timeout: TIMEOUT,
        payload: Some(serde_json::to_vec(&info(n)).unwrap()),
    };
    Election::start(ensemble.clone(), config)
}

fn detector(ensemble: &MemoryEnsemble) -> Election {
    Election::start(
        ensemble.clone(),
        ElectionConfig {
            dir: "/mesos".into(),
            session_timeout: TIMEOUT,
            payload: None,
        },
    )
}

async fn wait_for<T: Clone>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    predicate: impl Fn(&T) -> bool,
) -> T {
    let deadline = Duration::from_secs(30);
    match tokio::time::timeout(deadline, rx.wait_for(|v| predicate(v))).await {
        Ok(Ok(v)) => v.clone(),
        _ => panic!("timed out waiting for {what}"),
    }
}

fn leader_id(leader: &Option<Leader>) -> Option<String> {
    leader
        .as_ref()
        .and_then(|l| l.info.as_ref())
        .map(|i| i.id.clone())
}

#[tokio::test(start_paused = true)]
async fn the_first_contender_leads_and_detectors_see_it() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    let mut agent = detector(&ensemble);
    wait_for(&mut agent.leader, "agent sees m1", |l| {
        leader_id(l).as_deref() == Some("m1")
    })
    .await;
    wait_for(&mut m2.leader, "m2 sees m1", |l| {
        leader_id(l).as_deref() == Some("m1")
    })
    .await;
    assert_eq!(*m2.candidacy.borrow(), Candidacy::Contending);
    let children = ensemble.children_of("/mesos");
    assert!(
        children
            .iter()
            .all(|c| c.starts_with("json.info_") && c.len() == "json.info_".len() + 10),
        "{children:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_expiry_of_the_leader_moves_leadership_and_the_old_leader_loses() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    let mut agent = detector(&ensemble);
    wait_for(&mut agent.leader, "agent sees m1", |l| {
        leader_id(l).as_deref() == Some("m1")
    })
    .await;
    let m1_session = ensemble.owner_of("/mesos/json.info_0000000000").unwrap();
    ensemble.expire(m1_session);
    wait_for(&mut m2.candidacy, "m2 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    wait_for(&mut agent.leader, "agent sees m2", |l| {
        leader_id(l).as_deref() == Some("m2")
    })
    .await;
    // m1 led, so it stays lost: its process must exit (fail-fast).
    wait_for(&mut m1.candidacy, "m1 lost", |c| {
        matches!(c, Candidacy::Lost(ElectionError::SessionExpired))
    })
    .await;
    assert_eq!(ensemble.children_of("/mesos").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_backup_whose_session_expires_contends_again() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    wait_for(&mut m2.leader, "m2 sees m1", |l| l.is_some()).await;
    let m2_session = ensemble.owner_of("/mesos/json.info_0000000001").unwrap();
    ensemble.expire(m2_session);
    wait_for(&mut m2.leader, "m2 sees m1 again", |l| {
        leader_id(l).as_deref() == Some("m1")
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ensemble
        .children_of("/mesos")
        .contains(&"json.info_0000000002".to_string())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "m2 did not contend again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*m2.candidacy.borrow(), Candidacy::Contending);
    assert_eq!(*m1.candidacy.borrow(), Candidacy::Elected);
}

#[tokio::test(start_paused = true)]
async fn a_short_disconnection_changes_nothing() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let session = ensemble.sessions()[0];
    let mut changes = m1.candidacy.clone();
    changes.borrow_and_update();
    ensemble.disconnect(session);
    tokio::time::sleep(TIMEOUT / 2).await;
    ensemble.reconnect(session);
    tokio::time::sleep(TIMEOUT * 2).await;
    assert!(!changes.has_changed().unwrap(), "candidacy never wavered");
    assert_eq!(*m1.candidacy.borrow(), Candidacy::Elected);
}

#[tokio::test(start_paused = true)]
async fn silence_longer_than_the_session_timeout_expires_the_session_locally() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut agent = detector(&ensemble);
    wait_for(&mut agent.leader, "agent sees m1", |l| l.is_some()).await;
    let agent_session = *ensemble.sessions().last().unwrap();
    let started = tokio::time::Instant::now();
    // Both lose their connection; the server has not expired anything yet.
    ensemble.disconnect(ensemble.sessions()[0]);
    ensemble.disconnect(agent_session);
    wait_for(&mut m1.candidacy, "m1 loses candidacy locally", |c| {
        matches!(c, Candidacy::Lost(ElectionError::SessionExpired))
    })
    .await;
    assert!(
        started.elapsed() >= TIMEOUT,
        "not before the session timeout"
    );
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_millis(500),
        "right at the session timeout"
    );
    wait_for(&mut agent.leader, "agent reports no leader", |l| {
        l.is_none()
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn withdrawing_hands_leadership_over_at_once() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    wait_for(&mut m2.leader, "m2 sees m1", |l| l.is_some()).await;
    let before = tokio::time::Instant::now();
    m1.withdraw().await;
    wait_for(&mut m2.candidacy, "m2 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    assert!(
        before.elapsed() < Duration::from_millis(100),
        "no session timeout to wait out"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_member_is_a_lost_candidacy() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    wait_for(&mut m2.leader, "m2 sees m1", |l| l.is_some()).await;
    ensemble.delete_node("/mesos/json.info_0000000000");
    // A leader whose node vanished stays lost (it must exit); the next contender leads.
    wait_for(&mut m1.candidacy, "m1 lost", |c| {
        matches!(c, Candidacy::Lost(ElectionError::MembershipLost))
    })
    .await;
    wait_for(&mut m2.candidacy, "m2 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    tokio::time::sleep(TIMEOUT).await;
    assert!(
        matches!(*m1.candidacy.borrow(), Candidacy::Lost(_)),
        "a lost leader never contends again"
    );
}

#[tokio::test(start_paused = true)]
async fn no_ensemble_no_leader_until_it_comes_back() {
    let ensemble = MemoryEnsemble::new();
    ensemble.set_available(false);
    let mut m1 = contender(&ensemble, 1);
    let mut agent = detector(&ensemble);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(*m1.candidacy.borrow(), Candidacy::Contending);
    assert!(agent.leader.borrow().is_none());
    ensemble.set_available(true);
    wait_for(&mut m1.candidacy, "elected once available", |c| {
        *c == Candidacy::Elected
    })
    .await;
    wait_for(&mut agent.leader, "agent sees m1", |l| {
        leader_id(l).as_deref() == Some("m1")
    })
    .await;
}

/// A herd of contenders joining and leaving: at every observation at most one believes it leads,
/// and a detector always converges on the lowest live sequence. Seeded, so a failure replays.
#[tokio::test(start_paused = true)]
async fn a_herd_of_changes_never_elects_two() {
    for seed in 0..20u64 {
        let ensemble = MemoryEnsemble::new();
        let mut contenders: Vec<Option<Election>> =
            (1..=8).map(|n| Some(contender(&ensemble, n))).collect();
        let agent = detector(&ensemble);
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..30 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pick = ((rng >> 33) % contenders.len() as u64) as usize;
            match (rng >> 20) % 3 {
                0 => {
                    if let Some(session) = ensemble.sessions().get(pick).copied() {
                        ensemble.expire(session);
                    }
                }
                1 => {
                    if let Some(e) = contenders[pick].take() {
                        e.withdraw().await;
                    }
                }
                _ => {
                    if contenders[pick].is_none() {
                        contenders[pick] = Some(contender(&ensemble, pick as u8 + 1));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let elected = contenders
                .iter()
                .flatten()
                .filter(|e| *e.candidacy.borrow() == Candidacy::Elected)
                .count();
            assert!(
                elected <= 1,
                "seed {seed}: {elected} contenders believe they lead"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let live = ensemble.children_of("/mesos");
        let expected = rules::leader_of(&live).map(|m| m.name);
        let detected = agent.leader.borrow().clone();
        match expected {
            None => assert!(detected.is_none(), "seed {seed}"),
            Some(name) => {
                let data = ensemble.children_of("/mesos");
                assert!(data.contains(&name), "seed {seed}");
                assert!(
                    detected.is_some(),
                    "seed {seed}: detector found no leader though {name} is live"
                );
            }
        }
        let elected = contenders
            .iter()
            .flatten()
            .filter(|e| *e.candidacy.borrow() == Candidacy::Elected)
            .count();
        assert_eq!(
            elected,
            usize::from(!live.is_empty()),
            "seed {seed}: exactly one leader once calm"
        );
        agent.withdraw().await;
        for e in contenders.into_iter().flatten() {
            e.withdraw().await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_member_sees_the_registered_masters_leader_first_and_a_gone_one_leaves_the_list() {
    let ensemble = MemoryEnsemble::new();
    let mut m1 = contender(&ensemble, 1);
    wait_for(&mut m1.candidacy, "m1 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    let mut m2 = contender(&ensemble, 2);
    let m3 = contender(&ensemble, 3);
    let mut agent = detector(&ensemble);
    let all = ["m1:5050", "m2:5050", "m3:5050"];
    wait_for(&mut m2.masters, "m2 lists all three", |m| m == &all).await;
    wait_for(&mut agent.masters, "the detector lists all three", |m| {
        m == &all
    })
    .await;

    let m1_session = ensemble.owner_of("/mesos/json.info_0000000000").unwrap();
    ensemble.expire(m1_session);
    wait_for(&mut agent.masters, "m1 gone from the list", |m| {
        m == &["m2:5050", "m3:5050"]
    })
    .await;
    wait_for(&mut m2.candidacy, "m2 elected", |c| {
        *c == Candidacy::Elected
    })
    .await;
    assert_eq!(
        agent
            .leader
            .borrow()
            .as_ref()
            .map(|l| l.endpoint.clone())
            .as_deref(),
        Some("m2:5050"),
        "the first listed leads"
    );
    assert!(
        Election::standalone(info(4)).masters.borrow().is_empty(),
        "a standalone master knows no peers"
    );
    for e in [m2, m3, agent] {
        e.withdraw().await;
    }
}
