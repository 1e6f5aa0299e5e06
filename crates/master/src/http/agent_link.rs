//! `POST /internal/v1/agent`: agents register here and keep a stream open for the master's messages;
//! their other calls (status updates, pongs) arrive as separate posts naming the agent.

use super::streaming::{recordio_response, CloseGuard};
use super::{text_error, AppState};
use crate::server::{now_secs, AgentLink, Outbound};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::agent_protocol::{AgentCall, MasterToAgent, AGENT_ID_HEADER, PROTOCOL_VERSION};
use proto::AgentId;
use tokio::sync::mpsc;

pub async fn handle(State(master): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) =
        super::redirect_unless_leader(&master, proto::agent_protocol::AGENT_PATH)
    {
        return response;
    }
    let call: AgentCall = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse agent call: {e}"),
            )
        }
    };
    if call.protocol_version() != PROTOCOL_VERSION {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!(
                "Agent protocol version {} is not supported; this master speaks {PROTOCOL_VERSION}",
                call.protocol_version()
            ),
        );
    }
    let now = now_secs();
    match call {
        AgentCall::Register {
            agent_info,
            endpoint,
            version,
            ..
        } => {
            let (sender, receiver) = mpsc::unbounded_channel();
            let id = master.lock().core.next_agent_id();
            let mut admitted = agent_info.clone();
            admitted.id = Some(id.clone());
            // Written to the registry before the agent is told it is registered (mesos-ha.md 3.7).
            if let Err(e) = master
                .update_registry(&[registry::Operation::AdmitAgent(admitted)])
                .await
            {
                return registry_failure(&master, e);
            }
            let mut inner = master.lock();
            let connection = inner.next_connection();
            inner
                .agent_links
                .insert(id.clone(), AgentLink { connection, sender });
            match inner.core.register_agent(
                now,
                id.clone(),
                agent_info,
                endpoint,
                version,
                connection,
            ) {
                Ok(effects) => inner.execute(effects),
                Err(refusal) => return refuse(&mut inner, &id, refusal.to_string(), receiver),
            }
            drop(inner);
            stream(master, id, connection, receiver)
        }
        AgentCall::Reregister {
            agent_info,
            endpoint,
            version,
            tasks,
            frameworks,
            ..
        } => {
            let Some(id) = agent_info.id.clone() else {
                return text_error(StatusCode::BAD_REQUEST, "REREGISTER needs 'agent_info.id'");
            };
            let (sender, receiver) = mpsc::unbounded_channel();
            if master.lock().registry.is_gone(&id) {
                // mesos-ha.md 3.6: a gone agent that contacts the master is told to shut down.
                let _ = sender.send(Outbound::Record(bytes::Bytes::from(
                    proto::recordio::encode(
                        &serde_json::to_vec(&MasterToAgent::Shutdown {
                            message: "Agent has been marked gone".into(),
                        })
                        .unwrap_or_default(),
                    ),
                )));
                let _ = sender.send(Outbound::Close);
                return recordio_response(receiver, CloseGuard::new(|| {}), None);
            }
            // An agent unknown to the registry (the in-memory registry after a restart) is admitted
            // again with its old id; one already admitted needs no write (mesos-ha.md 3.5).
            if let Err(e) = master
                .update_registry(&[registry::Operation::AdmitAgent(agent_info.clone())])
                .await
            {
                return registry_failure(&master, e);
            }
            let mut inner = master.lock();
            let connection = inner.next_connection();
            if let Some(old) = inner
                .agent_links
                .insert(id.clone(), AgentLink { connection, sender })
            {
                let _ = old.sender.send(Outbound::Close);
            }
            match inner.core.reregister_agent(
                now,
                id.clone(),
                agent_info,
                endpoint,
                version,
                connection,
                tasks,
                frameworks,
            ) {
                Ok(effects) => {
                    inner.execute(effects);
                    let effects = inner.core.agent_reachable_again(now, &id);
                    inner.execute(effects);
                }
                Err(refusal) => return refuse(&mut inner, &id, refusal.to_string(), receiver),
            }
            drop(inner);
            stream(master, id, connection, receiver)
        }
        other => {
            let Some(id) = headers
                .get(AGENT_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(AgentId::new)
            else {
                return text_error(
                    StatusCode::BAD_REQUEST,
                    format!("Expecting the '{AGENT_ID_HEADER}' header"),
                );
            };
            let mut inner = master.lock();
            if !inner.agent_links.contains_key(&id) {
                return text_error(
                    StatusCode::FORBIDDEN,
                    format!("Agent '{id}' is not registered with this master"),
                );
            }
            let effects = match other {
                AgentCall::StatusUpdate { update, .. } => {
                    inner.core.status_update(now, &id, update)
                }
                AgentCall::ExecutorExited {
                    framework_id,
                    executor_id,
                    status,
                    ..
                } => inner
                    .core
                    .executor_exited(&id, &framework_id, executor_id, status),
                AgentCall::ExecutorMessage {
                    framework_id,
                    executor_id,
                    data,
                    ..
                } => inner
                    .core
                    .executor_message(&id, &framework_id, executor_id, data),
                AgentCall::Pong { .. } => {
                    inner.core.agent_pong(&id);
                    Vec::new()
                }
                _ => Vec::new(),
            };
            inner.execute(effects);
            StatusCode::ACCEPTED.into_response()
        }
    }
}

/// A registry write that failed: a leader whose registry cannot be written must not go on
/// (mesos-ha.md 3.2); the caller is refused and the master's run loop exits.
fn registry_failure(master: &AppState, error: registry::StoreError) -> Response {
    tracing::error!(error = %error, "cannot store the registry");
    master.registry_failed(error.to_string());
    text_error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("Registry unavailable: {error}"),
    )
}

fn refuse(
    inner: &mut crate::server::Inner,
    id: &AgentId,
    message: String,
    receiver: mpsc::UnboundedReceiver<Outbound>,
) -> Response {
    tracing::warn!(agent = %id, %message, "agent refused");
    if let Some(link) = inner.agent_links.remove(id) {
        let shutdown = MasterToAgent::Shutdown { message };
        let _ = link.sender.send(Outbound::Record(bytes::Bytes::from(
            proto::recordio::encode(&serde_json::to_vec(&shutdown).unwrap_or_default()),
        )));
        let _ = link.sender.send(Outbound::Close);
    }
    recordio_response(receiver, CloseGuard::new(|| {}), None)
}

fn stream(
    master: AppState,
    id: AgentId,
    connection: u64,
    receiver: mpsc::UnboundedReceiver<Outbound>,
) -> Response {
    let weak = std::sync::Arc::downgrade(&master);
    let guard = CloseGuard::new(move || {
        let Some(master) = weak.upgrade() else { return };
        let mut inner = master.lock();
        if inner
            .agent_links
            .get(&id)
            .is_some_and(|l| l.connection == connection)
        {
            inner.agent_links.remove(&id);
        }
        let effects = inner.core.agent_disconnected(&id, connection);
        inner.execute(effects);
    });
    recordio_response(receiver, guard, None)
}
