//! `/v2/events` framing and filters (§6), standby proxying and redirects (§8.3), over real HTTP.

mod common;
use common::*;
use futures::StreamExt;
use marathon_api::service::{LeaderState, MarathonEvent, ServiceView};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// Reads SSE frames from a response body.
struct Frames {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Frames {
    /// The next `(event, data)` frame, skipping heartbeats.
    async fn next(&mut self) -> (String, serde_json::Value) {
        loop {
            let text = self.buf.trim_start_matches(['\r', '\n']).to_string();
            self.buf = text;
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut lines = frame.lines();
                let event = lines
                    .next()
                    .unwrap()
                    .strip_prefix("event: ")
                    .unwrap()
                    .to_string();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                return (event, serde_json::from_str(data).unwrap());
            }
            let chunk = timeout(DEADLINE, self.body.next())
                .await
                .expect("frame in time")
                .unwrap()
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn subscribe(h: &Harness, query: &str) -> Frames {
    let r = h
        .http
        .get(h.url(&format!("/v2/events{query}")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream;charset=UTF-8"
    );
    Frames {
        body: Box::pin(r.bytes_stream()),
        buf: String::new(),
    }
}

fn event(t: &str) -> MarathonEvent {
    MarathonEvent {
        event_type: t.into(),
        payload: Arc::from(format!(
            r#"{{"eventType":"{t}","timestamp":"2024-05-01T12:00:00.123Z"}}"#
        )),
    }
}

#[tokio::test]
async fn event_stream_frames_filters_and_compat_rule() {
    let h = leading(ServiceView::default()).await;
    let r = h.http.get(h.url("/v2/events")).send().await.unwrap();
    assert_eq!(r.status(), 405, "Accept: text/event-stream is required");
    let mut all_frames = subscribe(&h, "").await;
    let (ev, data) = all_frames.next().await;
    assert_eq!(ev, "event_stream_attached");
    assert_eq!(data["eventType"], "event_stream_attached");
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(data["remoteAddress"], "127.0.0.1");
    let mut sched_frames = subscribe(
        &h,
        "?event_type=scheduler_registered_event&event_type=deployment_success",
    )
    .await;
    // The second stream's attach event reaches the first.
    assert_eq!(all_frames.next().await.0, "event_stream_attached");
    h.events.send(event("scheduler_registered_event")).unwrap();
    h.events.send(event("status_update_event")).unwrap();
    h.events.send(event("deployment_success")).unwrap();
    assert_eq!(
        all_frames.next().await.0,
        "status_update_event",
        "scheduler_* is opt-in"
    );
    assert_eq!(all_frames.next().await.0, "deployment_success");
    assert_eq!(sched_frames.next().await.0, "scheduler_registered_event");
    assert_eq!(sched_frames.next().await.0, "deployment_success");
    // Closing a stream publishes event_stream_detached.
    drop(sched_frames);
    let (ev, data) = all_frames.next().await;
    assert_eq!(
        (ev.as_str(), data["eventType"].as_str()),
        ("event_stream_detached", Some("event_stream_detached"))
    );
}

#[tokio::test]
async fn standby_forwards_to_the_leader_and_redirects_events() {
    let leader = leading(sample_view()).await;
    let leader_addr = leader.addr.clone();
    let standby = start(ServiceView::default(), |_| {
        LeaderState::Following(leader_addr.clone())
    })
    .await;
    let body = r#"{"id":"hello3","cmd":"sleep 10","ports":[0]}"#;
    let (s, headers, v) = standby
        .send("POST", "/v2/apps?force=true", Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], "/hello3");
    assert_eq!(
        headers["x-marathon-via"],
        format!("1.1 {}", standby.addr).as_str()
    );
    assert_eq!(
        headers["x-marathon-leader"],
        format!("http://{}", leader.addr).as_str()
    );
    assert_eq!(headers["marathon-deployment-id"], "dep-1");
    assert!(matches!(
        &leader.recorded()[..],
        [Recorded::Deploy {
            force: true,
            create_only: true,
            ..
        }]
    ));
    assert!(standby.recorded().is_empty());
    let (s, _, v) = standby.send("GET", "/v2/apps/hello2", None).await;
    assert_eq!((s, v["app"]["id"].as_str()), (200, Some("/hello2")));
    let r = standby.http.get(standby.url("/ping")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "pong");
    // Metrics describe the instance that answers: a standby serves its own, unproxied.
    let (headers, samples) = standby.prometheus().await;
    assert!(!headers.contains_key("x-marathon-via"));
    assert_eq!(samples.value("marathon_apps_active_gauge"), Some(0.0));
    let (_, samples) = leader.prometheus_matching_metrics().await;
    assert!(samples.value("marathon_apps_active_gauge").unwrap() >= 3.0);
    let r = standby
        .http
        .get(standby.url("/v2/events?event_type=a"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("http://{}/v2/events?event_type=a", leader.addr).as_str()
    );
    // Our own address already in X-Marathon-Via: a loop.
    let r = standby
        .http
        .get(standby.url("/v2/apps"))
        .header("x-marathon-via", format!("1.1 {}", standby.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Detected proxying loop.");
}

#[tokio::test]
async fn unreachable_leader_is_502_and_no_leader_is_503_after_the_wait() {
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap().to_string();
    drop(gone);
    let standby = start(ServiceView::default(), |_| {
        LeaderState::Following(gone_addr.clone())
    })
    .await;
    let (s, _, v) = standby.send("GET", "/v2/apps", None).await;
    assert_eq!(s, 502);
    assert!(v["message"].is_string());

    let lonely = start(ServiceView::default(), |_| LeaderState::Unknown).await;
    let started = Instant::now();
    let (s, _, v) = lonely.send("GET", "/v2/apps", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (503, Some("Could not determine the current leader"))
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    // A leader appearing during the wait is used at once.
    let leader = leading(sample_view()).await;
    let addr = leader.addr.clone();
    let waiting = tokio::spawn({
        let http = lonely.http.clone();
        let url = lonely.url("/v2/apps/hello2");
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    });
    // Whether the request is already waiting or arrives after the switch, it must reach the leader.
    lonely.leader.send(LeaderState::Following(addr)).unwrap();
    assert_eq!(timeout(DEADLINE, waiting).await.unwrap().unwrap(), 200);
}
