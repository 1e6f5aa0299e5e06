//! Test support for custom executors: the test plays the executor over `/api/v1/executor`
//! (calls, and the subscription stream decoded record by record).

use super::*;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(20);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// RUN_TASK of `task` for executor `e1`, whose process runs `command`.
pub fn run_executor_task(task: &str, command: &str) -> MasterToAgent {
    let mut framework = framework_json();
    framework["checkpoint"] = serde_json::json!(true);
    serde_json::from_value(serde_json::json!({
        "type": "RUN_TASK",
        "framework": framework,
        "task": {
            "name": task, "task_id": {"value": task}, "agent_id": {"value": AGENT_ID},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
            "executor": {
                "executor_id": {"value": "e1"},
                "name": "test executor",
                "command": {"value": command, "environment": {"variables": [{"name": "MODE", "value": "test"}]}},
                "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}]
            }
        }
    }))
    .expect("a valid RUN_TASK")
}

pub fn call(kind: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut call = serde_json::json!({
        "type": kind, "framework_id": {"value": "F1"}, "executor_id": {"value": "e1"}
    });
    if let (Some(call), Some(extra)) = (call.as_object_mut(), extra.as_object()) {
        call.extend(extra.clone());
    }
    call
}

pub async fn post(base: &str, body: &serde_json::Value) -> (u16, String) {
    let response = client()
        .post(format!("{base}/api/v1/executor"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub fn uuid_b64(n: u128) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::from_u128(n).as_bytes())
}

pub fn update(task: &str, state: &str, n: u128) -> serde_json::Value {
    call(
        "UPDATE",
        serde_json::json!({"update": {"status": {
            "task_id": {"value": task}, "state": state, "uuid": uuid_b64(n),
            "source": "SOURCE_EXECUTOR", "timestamp": 1_700_000_000
        }}}),
    )
}

/// The executor's subscription stream, decoded record by record.
pub struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: proto::recordio::Decoder,
}

impl Events {
    /// Subscribes as executor `e1` of `F1`, waiting (up to the deadline) while the agent does not
    /// know it yet (404: its RUN_TASK is still on its way).
    pub async fn subscribe(base: &str) -> Events {
        Events::subscribe_with(
            base,
            serde_json::json!({"unacknowledged_tasks": [], "unacknowledged_updates": []}),
        )
        .await
    }

    /// Subscribes with this `subscribe` payload (what a reconnecting executor resends).
    pub async fn subscribe_with(base: &str, subscribe: serde_json::Value) -> Events {
        let deadline = std::time::Instant::now() + WAIT;
        let response = loop {
            let response = client()
                .post(format!("{base}/api/v1/executor"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(call("SUBSCRIBE", serde_json::json!({ "subscribe": subscribe })).to_string())
                .send()
                .await
                .unwrap();
            if response.status().as_u16() != 404 || std::time::Instant::now() >= deadline {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("transfer-encoding")
                .map(|v| v.as_bytes()),
            Some(&b"chunked"[..]),
            "pymesos needs a chunked stream"
        );
        assert!(response.headers().get("content-length").is_none());
        Events {
            body: response.bytes_stream().boxed(),
            decoder: proto::recordio::Decoder::new(),
        }
    }

    /// The next event that is not a HEARTBEAT.
    pub async fn next(&mut self) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(record) = self.decoder.next_record().expect("well-framed records") {
                let event: serde_json::Value =
                    serde_json::from_slice(&record).expect("JSON records");
                if event["type"] != "HEARTBEAT" {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an event within the deadline")
                .expect("the stream stays open")
                .expect("the stream reads");
            self.decoder.feed(&chunk);
        }
    }

    /// Whether the stream ends within the deadline.
    pub async fn ended(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(chunk))) => self.decoder.feed(&chunk),
            }
        }
    }
}
