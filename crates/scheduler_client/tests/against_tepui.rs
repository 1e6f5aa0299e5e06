//! The client against a real `tepui dev` (master and agent in one process).
//!
//! These tests need the `tepui` binary: build it first with `cargo build -p tepui` in the same
//! `CARGO_TARGET_DIR` (or set `TEPUI_BIN`); `scripts/test.sh` builds every binary before
//! `cargo test --workspace`. A missing binary fails the tests with that instruction; they never skip.
//! Every wait is on a condition with a deadline.

mod support;

use proto::scheduler::{Filters, Launch, Offer, Operation};
use proto::{OfferId, Resource, Scalar, TaskId, TaskInfo, TaskState};
use scheduler_client::{ClientConfig, ClientError, ClientEvent, SchedulerClient};
use std::time::Duration;
use support::{as_event, expect_none, framework_info, free_port, summary, wait_for, Dev, TempDir};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

fn config(master: String, name: &str) -> ClientConfig {
    let mut config = ClientConfig::new(master, framework_info(name, 3600.0), false);
    config.backoff_initial = Duration::from_millis(100);
    config.backoff_max = Duration::from_millis(500);
    config
}

/// The events of one client, remembering which offers are outstanding (an unanswered offer holds
/// its agent's resources, so the test must know what to decline).
struct Events {
    rx: mpsc::Receiver<ClientEvent>,
    offers: Vec<Offer>,
}

impl Events {
    fn new(rx: mpsc::Receiver<ClientEvent>) -> Self {
        Events {
            rx,
            offers: Vec::new(),
        }
    }

    fn track(&mut self, event: &ClientEvent) {
        if let Some(e) = as_event(event) {
            if let Some(offers) = &e.offers {
                self.offers.extend(offers.offers.iter().cloned());
            }
            if let Some(rescind) = &e.rescind {
                self.offers.retain(|o| o.id != rescind.offer_id);
            }
        }
    }

    async fn wait<T>(&mut self, what: &str, mut pick: impl FnMut(&ClientEvent) -> Option<T>) -> T {
        let mut tracked = Vec::new();
        let found = wait_for(&mut self.rx, WAIT, what, |e| {
            tracked.push(e.clone());
            pick(e)
        })
        .await;
        for event in &tracked {
            self.track(event);
        }
        found
    }

    /// Outstanding offers, waiting for one if there is none.
    async fn take_offers(&mut self) -> Vec<Offer> {
        if self.offers.is_empty() {
            self.wait("OFFERS", |e| {
                as_event(e).filter(|e| e.kind == "OFFERS").map(|_| ())
            })
            .await;
        }
        std::mem::take(&mut self.offers)
    }

    /// The next UPDATE for `task`; reliable ones are acknowledged on the way.
    async fn update(
        &mut self,
        client: &SchedulerClient,
        task: &TaskId,
        what: &str,
    ) -> proto::TaskStatus {
        let status = self
            .wait(what, |e| {
                as_event(e)
                    .and_then(|e| e.update.as_ref())
                    .filter(|u| &u.status.task_id == task)
                    .map(|u| u.status.clone())
            })
            .await;
        if let (Some(uuid), Some(agent)) = (&status.uuid, &status.agent_id) {
            client
                .acknowledge(agent.clone(), task.clone(), uuid.clone())
                .await
                .expect("ACKNOWLEDGE");
        }
        status
    }
}

fn scalar_like(offer: &Offer, name: &str, value: f64) -> Resource {
    let template = offer
        .resources
        .iter()
        .find(|r| r.name == name)
        .expect("offer has the resource");
    Resource {
        scalar: Some(Scalar { value }),
        ranges: None,
        set: None,
        ..template.clone()
    }
}

fn sleep_task(offer: &Offer, id: &str) -> TaskInfo {
    serde_json::from_value::<TaskInfo>(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": offer.agent_id,
        "command": {"shell": true, "value": "sleep 30"},
    }))
    .map(|mut t| {
        t.resources = vec![
            scalar_like(offer, "cpus", 0.1),
            scalar_like(offer, "mem", 32.0),
        ];
        t
    })
    .expect("task info")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_launch_acknowledge_reconcile_kill_decline_teardown() {
    support::init_logs();
    let dir = TempDir::new("lifecycle");
    let dev = Dev::start(free_port(), free_port(), &dir, "a");
    let (client, rx) = SchedulerClient::start(config(dev.address(), "lifecycle")).unwrap();
    let mut events = Events::new(rx);

    // SUBSCRIBE: Connected, then SUBSCRIBED, then OFFERS.
    let (fid, master, rereg) = events
        .wait("Connected", |e| match e {
            ClientEvent::Connected {
                framework_id,
                master,
                reregistered,
            } => Some((framework_id.clone(), master.clone(), *reregistered)),
            _ => None,
        })
        .await;
    assert_eq!(master, dev.address());
    assert!(!rereg);
    let first = events.wait("SUBSCRIBED", |e| Some(summary(e))).await;
    assert_eq!(first, "SUBSCRIBED", "SUBSCRIBED follows Connected");
    assert_eq!(client.framework_id(), Some(fid.clone()));
    let offer = events.take_offers().await.remove(0);

    // ACCEPT a LAUNCH; updates STARTING and RUNNING are acknowledged.
    let task = TaskId::new("sleeper-1");
    let launch = Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch {
            task_infos: vec![sleep_task(&offer, "sleeper-1")],
        }),
        launch_group: None,
    };
    client
        .accept(
            vec![offer.id.clone()],
            vec![launch],
            Some(Filters {
                refuse_seconds: Some(1.0),
            }),
        )
        .await
        .expect("ACCEPT");
    let mut states = Vec::new();
    let agent = loop {
        let status = events.update(&client, &task, "TASK_RUNNING").await;
        states.push(status.state);
        assert!(!status.state.is_terminal(), "task ended early: {status:?}");
        if status.state == TaskState::TaskRunning {
            assert!(status.uuid.is_some(), "an executor's RUNNING is reliable");
            break status.agent_id.expect("RUNNING names its agent");
        }
    };
    assert!(states.contains(&TaskState::TaskStarting), "{states:?}");

    // RECONCILE, explicit then implicit: answered with REASON_RECONCILIATION and no uuid.
    for (what, tasks) in [
        ("explicit", vec![(task.clone(), Some(agent.clone()))]),
        ("implicit", vec![]),
    ] {
        client.reconcile(tasks).await.expect("RECONCILE");
        let status = events.update(&client, &task, what).await;
        assert_eq!(status.state, TaskState::TaskRunning, "{what}");
        assert_eq!(
            status.reason.as_deref(),
            Some("REASON_RECONCILIATION"),
            "{what}"
        );
        assert!(status.uuid.is_none(), "{what}");
    }

    // A call the master refuses is matchable.
    match client
        .acknowledge(agent.clone(), task.clone(), "not a uuid!".into())
        .await
    {
        Err(ClientError::Rejected { status: 400, body }) => assert!(!body.is_empty()),
        other => panic!("expected Rejected 400, got {other:?}"),
    }
    client
        .message(agent.clone(), proto::ExecutorId::new("sleeper-1"), b"hello")
        .await
        .expect("MESSAGE");

    // KILL: TASK_KILLED.
    client
        .kill(task.clone(), Some(agent.clone()), None)
        .await
        .expect("KILL");
    loop {
        let status = events.update(&client, &task, "TASK_KILLED").await;
        if status.state.is_terminal() {
            assert_eq!(status.state, TaskState::TaskKilled);
            break;
        }
    }

    // DECLINE with a long filter, and SUPPRESS: no offers; REVIVE clears both.
    let ids: Vec<OfferId> = events
        .take_offers()
        .await
        .into_iter()
        .map(|o| o.id)
        .collect();
    client.decline(ids, Some(3600.0)).await.expect("DECLINE");
    client.suppress().await.expect("SUPPRESS");
    let is_offers = |e: &ClientEvent| as_event(e).is_some_and(|e| e.kind == "OFFERS");
    expect_none(
        &mut events.rx,
        Duration::from_millis(2500),
        "OFFERS while declined for an hour",
        is_offers,
    )
    .await;
    client.revive().await.expect("REVIVE");
    assert!(!events.take_offers().await.is_empty());

    // TEARDOWN: the framework is gone, the client stops.
    client.teardown().await.expect("TEARDOWN");
    events
        .wait("FrameworkRemoved", |e| {
            matches!(e, ClientEvent::FrameworkRemoved { .. }).then_some(())
        })
        .await;
    assert_eq!(client.revive().await, Err(ClientError::Stopped));
    assert!(tokio::time::timeout(WAIT, events.rx.recv())
        .await
        .expect("channel closes")
        .is_none());
    drop(dev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribes_with_the_same_framework_id_after_a_master_restart() {
    support::init_logs();
    let dir = TempDir::new("restart");
    let (port, agent_port) = (free_port(), free_port());
    let mut dev = Dev::start(port, agent_port, &dir, "first");
    let (client, rx) = SchedulerClient::start(config(dev.address(), "restart")).unwrap();
    let mut events = Events::new(rx);
    let fid = events
        .wait("Connected", |e| match e {
            ClientEvent::Connected { framework_id, .. } => Some(framework_id.clone()),
            _ => None,
        })
        .await;

    // The master goes away: Disconnected, and calls fail fast meanwhile.
    dev.stop();
    events
        .wait("Disconnected", |e| {
            matches!(e, ClientEvent::Disconnected { .. }).then_some(())
        })
        .await;
    assert_eq!(client.revive().await, Err(ClientError::NotSubscribed));

    // A new master (which never saw the framework) on the same ports accepts the id.
    let dev = Dev::start(port, agent_port, &dir, "second");
    let (again, rereg) = events
        .wait("Connected to the new master", |e| match e {
            ClientEvent::Connected {
                framework_id,
                reregistered,
                ..
            } => Some((framework_id.clone(), *reregistered)),
            _ => None,
        })
        .await;
    assert_eq!(again, fid, "SUBSCRIBED carries the same framework id");
    assert!(rereg);
    let subscribed = events
        .wait("SUBSCRIBED", |e| {
            as_event(e).and_then(|e| e.subscribed.clone())
        })
        .await;
    assert_eq!(subscribed.framework_id, fid);
    assert!(
        !events.take_offers().await.is_empty(),
        "offers on the new master"
    );
    client
        .revive()
        .await
        .expect("calls work on the new subscription");

    // A second process taking the framework over (failover with the stored id) wins the stream.
    let mut takeover = config(dev.address(), "restart");
    takeover.failover = true;
    takeover.framework_id = Some(fid.clone());
    let (successor, rx2) = SchedulerClient::start(takeover).unwrap();
    let mut successor_events = Events::new(rx2);
    let (fid2, rereg2) = successor_events
        .wait("successor Connected", |e| match e {
            ClientEvent::Connected {
                framework_id,
                reregistered,
                ..
            } => Some((framework_id.clone(), *reregistered)),
            _ => None,
        })
        .await;
    assert_eq!(fid2, fid);
    assert!(rereg2);
    events
        .wait("FailedOver", |e| {
            matches!(e, ClientEvent::FailedOver { .. }).then_some(())
        })
        .await;
    assert_eq!(client.revive().await, Err(ClientError::Stopped));

    successor.teardown().await.expect("TEARDOWN");
    successor_events
        .wait("FrameworkRemoved", |e| {
            matches!(e, ClientEvent::FrameworkRemoved { .. }).then_some(())
        })
        .await;
    drop(dev);
}
