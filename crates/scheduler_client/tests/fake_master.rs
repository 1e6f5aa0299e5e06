//! The client against a scripted fake master (`support::fake`): redirects and 503s from standbys,
//! malformed records, silent streams and refusals (mesos-http-api.md sections 2, 7, 8.1, 8.6).
//! These need no `tepui` binary.

mod support;

use scheduler_client::{ClientConfig, ClientError, ClientEvent, SchedulerClient};
use std::time::Duration;
use support::fake::{record, subscribed, FakeMaster, Reply};
use support::{framework_info, wait_for};

const WAIT: Duration = Duration::from_secs(10);

fn config(master: String) -> ClientConfig {
    let mut config = ClientConfig::new(master, framework_info("fake-test", 60.0), false);
    config.backoff_initial = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    config
}

fn stream(chunks: Vec<Vec<u8>>, keep_open: bool) -> Reply {
    Reply::Stream {
        stream_id: Some("stream-1".into()),
        chunks,
        keep_open,
    }
}

#[tokio::test]
async fn follows_503_then_307_to_the_leader_and_reconnects_after_a_malformed_record() {
    support::init_logs();
    let heartbeat = record(&serde_json::json!({"type": "HEARTBEAT"}));
    let leader = FakeMaster::start(vec![
        // First subscription: SUBSCRIBED, a heartbeat, then garbage (not an Event).
        stream(
            vec![
                subscribed("FW-1", 15.0),
                heartbeat,
                b"9\n{\"x\":1}xx".to_vec(),
            ],
            true,
        ),
        // Second subscription stays up.
        stream(vec![subscribed("FW-1", 15.0)], true),
    ])
    .await;
    let location = format!("//{}/api/v1/scheduler", leader.address());
    let standby = FakeMaster::start(vec![
        Reply::Plain(
            "503 Service Unavailable",
            vec![],
            "No leader elected".into(),
        ),
        Reply::Plain(
            "307 Temporary Redirect",
            vec![("Location".into(), location)],
            String::new(),
        ),
    ])
    .await;
    let (client, mut events) = SchedulerClient::start(config(standby.address())).unwrap();

    let (fid, master, rereg) = wait_for(&mut events, WAIT, "first Connected", |e| match e {
        ClientEvent::Connected {
            framework_id,
            master,
            reregistered,
        } => Some((framework_id.clone(), master.clone(), *reregistered)),
        _ => None,
    })
    .await;
    assert_eq!(fid.as_str(), "FW-1");
    assert_eq!(
        master,
        leader.address(),
        "calls go to where the redirect led"
    );
    assert!(!rereg);
    let reason = wait_for(
        &mut events,
        WAIT,
        "Disconnected after the malformed record",
        |e| match e {
            ClientEvent::Disconnected { reason } => Some(reason.clone()),
            _ => None,
        },
    )
    .await;
    assert!(reason.contains("malformed"), "{reason}");
    let rereg = wait_for(&mut events, WAIT, "second Connected", |e| match e {
        ClientEvent::Connected { reregistered, .. } => Some(*reregistered),
        _ => None,
    })
    .await;
    assert!(rereg, "the second SUBSCRIBE carries the framework id");

    let bodies = leader.bodies();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].get("framework_id").is_none());
    assert_eq!(bodies[1]["framework_id"]["value"], "FW-1");
    assert_eq!(
        bodies[1]["subscribe"]["framework_info"]["id"]["value"],
        "FW-1"
    );
    // 503, then 307; the second subscription starts from the configured address again (307).
    assert_eq!(
        standby.bodies().len(),
        3,
        "503 retried, then redirected on every attempt"
    );
    assert_eq!(
        client.framework_id().map(|f| f.value),
        Some("FW-1".to_string())
    );
    client.stop();
}

#[tokio::test]
async fn missed_heartbeats_count_as_a_dead_connection() {
    support::init_logs();
    // Heartbeats every 50 ms announced, none sent: dead after 5 * 50 ms.
    let leader = FakeMaster::start(vec![stream(vec![subscribed("FW-2", 0.05)], true)]).await;
    let (client, mut events) = SchedulerClient::start(config(leader.address())).unwrap();
    wait_for(&mut events, WAIT, "Connected", |e| {
        matches!(e, ClientEvent::Connected { .. }).then_some(())
    })
    .await;
    let reason = wait_for(&mut events, WAIT, "Disconnected", |e| match e {
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("no heartbeat"), "{reason}");
    wait_for(&mut events, WAIT, "Connected again", |e| {
        matches!(e, ClientEvent::Connected { .. }).then_some(())
    })
    .await;
    client.stop();
}

#[tokio::test]
async fn a_removed_framework_stops_the_client() {
    support::init_logs();
    let error = record(
        &serde_json::json!({"type": "ERROR", "error": {"message": "Framework has been removed"}}),
    );
    let leader = FakeMaster::start(vec![Reply::Stream {
        stream_id: None,
        chunks: vec![error],
        keep_open: false,
    }])
    .await;
    let mut config = config(leader.address());
    config.failover = true;
    config.framework_id = Some("FW-OLD".into());
    let (client, mut events) = SchedulerClient::start(config).unwrap();
    let message = wait_for(&mut events, WAIT, "FrameworkRemoved", |e| match e {
        ClientEvent::FrameworkRemoved { message } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message, "Framework has been removed");
    assert_eq!(
        leader.bodies()[0]["framework_id"]["value"],
        "FW-OLD",
        "a stored framework id is used at start"
    );
    // The client task ends: the channel closes and calls say so.
    assert!(tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("channel closes")
        .is_none());
    assert_eq!(client.revive().await, Err(ClientError::Stopped));
}

#[tokio::test]
async fn calls_before_a_subscription_are_not_subscribed_and_bad_addresses_are_refused() {
    // Nothing listens on this port: the client keeps retrying, never subscribed.
    let (client, _events) =
        SchedulerClient::start(config(format!("127.0.0.1:{}", support::free_port()))).unwrap();
    assert_eq!(
        client.decline(vec!["o1".into()], Some(1.0)).await,
        Err(ClientError::NotSubscribed)
    );
    assert!(!client.is_subscribed());
    client.stop();
    assert!(matches!(
        SchedulerClient::start(config("no-port".into())).map(|_| ()),
        Err(ClientError::BadMaster(_))
    ));
}
