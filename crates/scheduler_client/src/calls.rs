//! The calls other than SUBSCRIBE (mesos-http-api.md 8.3): each is its own `POST
//! /api/v1/scheduler` to the master that holds the subscription, with header `Mesos-Stream-Id` and
//! top-level `framework_id`. `202 Accepted` (any 2xx) is success; a 4xx is `Rejected` with the
//! master's plain-text reason; 307/503/5xx are `Unavailable` (leadership moved or the master is
//! busy: the subscription loop will notice and re-subscribe, the caller may retry after
//! `Connected`). Calls are never retried here: only the caller knows whether repeating one is safe.
//!
//! Bodies are the `proto::scheduler` types; nothing had to be built by hand. `data` of MESSAGE is a
//! protobuf `bytes` field, base64 in JSON (section 1), encoded here to keep the dependency list short.

use crate::connection::{scheduler_url, STREAM_ID_HEADER};
use crate::error::{clip, ClientError};
use crate::SchedulerClient;
use proto::scheduler::{
    Accept, Acknowledge, Call, Decline, Filters, Kill, Message, Operation, Reconcile,
    ReconcileTask, Roles, Shutdown,
};
use proto::{AgentId, ExecutorId, KillPolicy, OfferId, TaskId};

impl SchedulerClient {
    /// Sends one call built by `fill` on the current subscription.
    async fn call(&self, kind: &str, fill: impl FnOnce(&mut Call)) -> Result<(), ClientError> {
        let session = {
            let state = self.shared.state();
            if state.stopped {
                return Err(ClientError::Stopped);
            }
            state.session.clone().ok_or(ClientError::NotSubscribed)?
        };
        let mut call = Call::new(kind, Some(session.framework_id.clone()));
        fill(&mut call);
        let body = serde_json::to_vec(&call)
            .map_err(|e| ClientError::Invalid(format!("cannot encode {kind}: {e}")))?;
        let response = self
            .shared
            .http
            .post(scheduler_url(&session.endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(STREAM_ID_HEADER, session.stream_id.as_str())
            .timeout(self.shared.call_timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("{kind} to {}: {e}", session.endpoint)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = match response.text().await {
            Ok(text) => clip(text),
            Err(e) => format!("(body unreadable: {e})"),
        };
        tracing::debug!(kind, %status, %body, "call not accepted");
        if status.is_client_error() {
            Err(ClientError::Rejected {
                status: status.as_u16(),
                body,
            })
        } else {
            Err(ClientError::Unavailable {
                status: status.as_u16(),
                body,
            })
        }
    }

    /// ACCEPT: apply `operations` (LAUNCH, LAUNCH_GROUP, ...) to offers of one agent; unused
    /// resources are declined with `filters`.
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Option<Filters>,
    ) -> Result<(), ClientError> {
        self.call("ACCEPT", |c| {
            c.accept = Some(Accept {
                offer_ids,
                operations,
                filters,
            })
        })
        .await
    }

    /// DECLINE: give offers back, refusing their resources for `refuse_seconds` (master default 5 s).
    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        refuse_seconds: Option<f64>,
    ) -> Result<(), ClientError> {
        let filters = refuse_seconds.map(|s| Filters {
            refuse_seconds: Some(s),
        });
        self.call("DECLINE", |c| {
            c.decline = Some(Decline { offer_ids, filters })
        })
        .await
    }

    /// KILL a task. An unknown task is answered like an explicit reconciliation of it.
    pub async fn kill(
        &self,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        kill_policy: Option<KillPolicy>,
    ) -> Result<(), ClientError> {
        self.call("KILL", |c| {
            c.kill = Some(Kill {
                task_id,
                agent_id,
                kill_policy,
            })
        })
        .await
    }

    /// ACKNOWLEDGE a reliable status update (one that carried `uuid`, base64 as received).
    pub async fn acknowledge(
        &self,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: String,
    ) -> Result<(), ClientError> {
        self.call("ACKNOWLEDGE", |c| {
            c.acknowledge = Some(Acknowledge {
                agent_id,
                task_id,
                uuid,
            })
        })
        .await
    }

    /// RECONCILE the given tasks (explicit), or all tasks the master knows of (empty: implicit).
    /// Answers arrive as UPDATE events with `REASON_RECONCILIATION`.
    pub async fn reconcile(
        &self,
        tasks: Vec<(TaskId, Option<AgentId>)>,
    ) -> Result<(), ClientError> {
        let tasks = tasks
            .into_iter()
            .map(|(task_id, agent_id)| ReconcileTask { task_id, agent_id })
            .collect();
        self.call("RECONCILE", |c| c.reconcile = Some(Reconcile { tasks }))
            .await
    }

    /// REVIVE: clear offer filters and unsuppress, for all roles.
    pub async fn revive(&self) -> Result<(), ClientError> {
        self.call("REVIVE", |c| c.revive = Some(Roles::default()))
            .await
    }

    /// SUPPRESS: stop offers for all roles until REVIVE.
    pub async fn suppress(&self) -> Result<(), ClientError> {
        self.call("SUPPRESS", |c| c.suppress = Some(Roles::default()))
            .await
    }

    /// TEARDOWN: the master kills every task and removes the framework. On success the client
    /// stops and reports `ClientEvent::FrameworkRemoved`.
    pub async fn teardown(&self) -> Result<(), ClientError> {
        self.call("TEARDOWN", |_| {}).await?;
        {
            let mut state = self.shared.state();
            state.torn_down = true;
            state.stopped = true;
            state.session = None;
        }
        let _ = self.shared.stop.send(true);
        Ok(())
    }

    /// MESSAGE: best-effort bytes to an executor.
    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let data = base64_encode(data);
        self.call("MESSAGE", |c| {
            c.message = Some(Message {
                agent_id,
                executor_id,
                data,
            })
        })
        .await
    }

    /// SHUTDOWN a custom executor.
    pub async fn shutdown(
        &self,
        executor_id: ExecutorId,
        agent_id: AgentId,
    ) -> Result<(), ClientError> {
        self.call("SHUTDOWN", |c| {
            c.shutdown = Some(Shutdown {
                executor_id,
                agent_id,
            })
        })
        .await
    }
}

/// Standard base64 with padding (RFC 4648 section 4), as protobuf's JSON mapping writes `bytes`.
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
        assert_eq!(base64_encode(&[0xff, 0xfe]), "//4=");
    }
}
