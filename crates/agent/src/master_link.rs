//! The agent's side of the internal master<->agent protocol (`proto::agent_protocol`).
//!
//! What: `Link::run` finds the leader through the detector, registers (or reregisters, once this
//! agent has an id) with `POST /internal/v1/agent`, and reads the RecordIO stream of
//! `MasterToAgent` records that answers it, forwarding each to the driver. `Outbound` posts the
//! agent's other calls (status updates, pongs) as separate requests naming the agent.
//!
//! Rules from mesos-ha.md 3.3: after detecting a leader the agent waits a random delay in
//! `[0, --registration_backoff_factor]` before registering; failed attempts double the bound up to
//! one minute. A registered agent that hears nothing from the master for the ping timeout (75 s),
//! whose stream ends, or whose leader changes, detects again and reregisters. Disconnection pauses
//! status-update forwarding (the core queues updates) but never touches running tasks.

use crate::shared::Shared;
use election::{Detector, Leader};
use futures::StreamExt;
use proto::agent_protocol::{
    AgentCall, AgentInfo, MasterToAgent, AGENT_ID_HEADER, AGENT_PATH, PROTOCOL_VERSION,
};
use proto::recordio;
use proto::{AgentId, MasterInfo};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// Upper bound of the registration backoff (mesos-ha.md 3.3).
pub const REGISTRATION_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Silence after which a registered agent gives up on its master (`agent_ping_timeout` 15 s times
/// `max_agent_ping_timeouts` 5, mesos-ha.md 3.3).
pub const PING_TIMEOUT_TOTAL: Duration = Duration::from_secs(75);
/// How long a (re)registration may wait for the response headers.
const REGISTRATION_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one agent call (status update, pong) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Agent calls in flight at once; more wait their turn.
pub const CALLS_IN_FLIGHT_MAX: usize = 32;
/// Most bytes of an error body quoted in a log line.
const ERROR_BODY_LOG_MAX: usize = 512;

/// What the link tells the driver.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a handful per session
pub enum LinkEvent {
    Registered {
        agent_id: AgentId,
        master_info: MasterInfo,
        endpoint: String,
    },
    Message(Box<MasterToAgent>),
    Disconnected,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "HTTP client with custom settings unavailable; using defaults");
            reqwest::Client::new()
        })
}

/// `text` cut to at most `ERROR_BODY_LOG_MAX` bytes, on a character boundary.
fn clip(mut text: String) -> String {
    if text.len() > ERROR_BODY_LOG_MAX {
        let mut end = ERROR_BODY_LOG_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn url(endpoint: &str) -> String {
    format!("http://{endpoint}{AGENT_PATH}")
}

fn leader_hostname(leader: &Leader) -> String {
    match &leader.info {
        Some(info) => info.hostname.clone(),
        None => leader
            .endpoint
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&leader.endpoint)
            .to_string(),
    }
}

/// Waits for a leader different from `current`; never resolves if the detector can report no
/// further change (it is gone).
async fn changed(
    rx: &mut watch::Receiver<Option<Leader>>,
    current: Option<&Leader>,
) -> Option<Leader> {
    let next = election::detect(rx, current).await;
    if next.as_ref() == current {
        std::future::pending::<()>().await;
    }
    next
}

#[allow(clippy::large_enum_variant)] // one per session
enum SessionEnd {
    LeaderChanged(Option<Leader>),
    Ended { registered: bool },
}

pub struct Link {
    pub shared: Arc<Shared>,
    pub detector: Arc<dyn Detector>,
    pub events: mpsc::Sender<LinkEvent>,
    pub client: reqwest::Client,
    pub backoff_factor: Duration,
    /// This agent as the master sees it, without its id.
    pub agent_info: AgentInfo,
    /// `ip:port` of the agent's HTTP server.
    pub endpoint: String,
}

impl Link {
    pub async fn run(self) {
        let mut rx = self.detector.leader();
        let mut leader = rx.borrow_and_update().clone();
        let mut backoff = self.backoff_factor;
        loop {
            let Some(current) = leader.clone() else {
                self.shared.set_leader(None);
                tracing::info!("no leading master detected; waiting for one");
                leader = changed(&mut rx, None).await;
                backoff = self.backoff_factor;
                continue;
            };
            self.shared.set_leader(Some(leader_hostname(&current)));
            let delay = backoff.mul_f64(rand::thread_rng().gen_range(0.0..=1.0));
            tracing::debug!(leader = %current.endpoint, ?delay, "registering after a random delay");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                next = changed(&mut rx, Some(&current)) => {
                    leader = next;
                    backoff = self.backoff_factor;
                    continue;
                }
            }
            match self.session(&current, &mut rx).await {
                SessionEnd::LeaderChanged(next) => {
                    tracing::info!(old = %current.endpoint, new = ?next.as_ref().map(|l| &l.endpoint), "leading master changed");
                    leader = next;
                    backoff = self.backoff_factor;
                }
                SessionEnd::Ended { registered: true } => backoff = self.backoff_factor,
                SessionEnd::Ended { registered: false } => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(1), REGISTRATION_BACKOFF_MAX);
                }
            }
        }
    }

    fn registration_call(&self) -> AgentCall {
        let core = self.shared.core();
        let mut agent_info = self.agent_info.clone();
        agent_info.id = core.agent_id().cloned();
        if agent_info.id.is_none() {
            return AgentCall::Register {
                protocol_version: PROTOCOL_VERSION,
                agent_info,
                endpoint: self.endpoint.clone(),
                version: proto::MESOS_VERSION.to_string(),
            };
        }
        let (tasks, frameworks) = core.reregistration_report();
        AgentCall::Reregister {
            protocol_version: PROTOCOL_VERSION,
            agent_info,
            endpoint: self.endpoint.clone(),
            version: proto::MESOS_VERSION.to_string(),
            tasks,
            frameworks,
        }
    }

    /// One (re)registration and the life of its stream.
    async fn session(
        &self,
        leader: &Leader,
        rx: &mut watch::Receiver<Option<Leader>>,
    ) -> SessionEnd {
        let call = self.registration_call();
        let kind = if matches!(call, AgentCall::Register { .. }) {
            "register"
        } else {
            "reregister"
        };
        tracing::info!(master = %leader.endpoint, kind, "connecting to the master");
        let request = self.client.post(url(&leader.endpoint)).json(&call).send();
        let response = tokio::select! {
            r = tokio::time::timeout(REGISTRATION_RESPONSE_TIMEOUT, request) => r,
            next = changed(rx, Some(leader)) => return SessionEnd::LeaderChanged(next),
        };
        let response = match response {
            Err(_) => {
                tracing::warn!(master = %leader.endpoint, "no answer to {kind} within {REGISTRATION_RESPONSE_TIMEOUT:?}");
                return SessionEnd::Ended { registered: false };
            }
            Ok(Err(e)) => {
                tracing::warn!(master = %leader.endpoint, error = %e, "cannot {kind}");
                return SessionEnd::Ended { registered: false };
            }
            Ok(Ok(r)) => r,
        };
        if response.status() != reqwest::StatusCode::OK {
            let status = response.status();
            let body = clip(response.text().await.unwrap_or_default());
            tracing::warn!(master = %leader.endpoint, %status, %body, "the master refused to {kind}");
            return SessionEnd::Ended { registered: false };
        }
        // Calls go where the registration ended up (a backup master answers with a redirect).
        let endpoint = match (
            response.url().host_str(),
            response.url().port_or_known_default(),
        ) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => leader.endpoint.clone(),
        };
        let mut stream = response.bytes_stream();
        let mut decoder = recordio::Decoder::new();
        let mut registered = false;
        // The master says how long its pings may fall silent; until it does, Mesos' default.
        let mut silence_limit = PING_TIMEOUT_TOTAL;
        let end = 'stream: loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(silence_limit, stream.next()) => c,
                next = changed(rx, Some(leader)) => break 'stream Some(next),
            };
            let bytes = match chunk {
                Err(_) => {
                    tracing::warn!(master = %leader.endpoint, "nothing heard from the master for {silence_limit:?}");
                    break None;
                }
                Ok(None) => {
                    tracing::info!(master = %leader.endpoint, "the master closed the stream");
                    break None;
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(master = %leader.endpoint, error = %e, "the stream from the master broke");
                    break None;
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            decoder.feed(&bytes);
            loop {
                let record = match decoder.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(master = %leader.endpoint, error = %e, "bad framing on the master's stream");
                        break 'stream None;
                    }
                };
                match self
                    .on_record(&record, &endpoint, registered, &mut silence_limit)
                    .await
                {
                    Ok(now_registered) => registered = now_registered,
                    Err(()) => break 'stream None,
                }
            }
        };
        if registered && self.events.send(LinkEvent::Disconnected).await.is_err() {
            return SessionEnd::Ended { registered };
        }
        match end {
            Some(next) => SessionEnd::LeaderChanged(next),
            None => SessionEnd::Ended { registered },
        }
    }

    /// Handles one record; `Ok(registered)` to go on, `Err` to drop the stream.
    async fn on_record(
        &self,
        record: &[u8],
        endpoint: &str,
        registered: bool,
        silence_limit: &mut Duration,
    ) -> Result<bool, ()> {
        let message: MasterToAgent = match serde_json::from_slice(record) {
            Ok(m) => m,
            Err(e) => {
                let shown =
                    String::from_utf8_lossy(&record[..record.len().min(ERROR_BODY_LOG_MAX)])
                        .into_owned();
                tracing::warn!(error = %e, record = %shown, "unreadable message from the master; skipped");
                return Ok(registered);
            }
        };
        match message {
            MasterToAgent::Registered {
                protocol_version,
                agent_id,
                master_info,
                ping_timeout_total_secs,
            } => {
                if let Some(secs) = ping_timeout_total_secs.filter(|s| s.is_finite() && *s > 0.0) {
                    // A little slack over the master's figure, so one late ping is not a loss.
                    *silence_limit =
                        Duration::from_secs_f64(secs * 1.5).max(Duration::from_secs(1));
                }
                if protocol_version != PROTOCOL_VERSION {
                    tracing::error!(
                        theirs = protocol_version,
                        ours = PROTOCOL_VERSION,
                        "the master speaks another version of the agent protocol"
                    );
                    return Err(());
                }
                tracing::info!(%agent_id, master = %master_info.pid, "registered with the master");
                self.shared.set_leader(Some(master_info.hostname.clone()));
                let event = LinkEvent::Registered {
                    agent_id,
                    master_info,
                    endpoint: endpoint.to_string(),
                };
                self.events.send(event).await.map_err(|_| ())?;
                Ok(true)
            }
            // A master that refuses this agent for good (it was marked gone) answers its
            // reregistration with SHUTDOWN: the agent stops (mesos-ha.md 3.6).
            shutdown @ MasterToAgent::Shutdown { .. } if !registered => {
                self.events
                    .send(LinkEvent::Message(Box::new(shutdown)))
                    .await
                    .map_err(|_| ())?;
                Ok(false)
            }
            other if !registered => {
                tracing::warn!(message = ?other, "message from the master before REGISTERED; ignored");
                Ok(false)
            }
            other => {
                self.events
                    .send(LinkEvent::Message(Box::new(other)))
                    .await
                    .map_err(|_| ())?;
                Ok(true)
            }
        }
    }
}

/// Posts agent calls to the current master, a bounded number at a time. Failures are logged; the
/// status-update retry timer takes care of anything lost.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    permits: Arc<Semaphore>,
}

impl Outbound {
    pub fn new(client: reqwest::Client) -> Self {
        Outbound {
            client,
            permits: Arc::new(Semaphore::new(CALLS_IN_FLIGHT_MAX)),
        }
    }

    pub fn post(&self, endpoint: &str, agent_id: &AgentId, call: AgentCall) {
        let request = self
            .client
            .post(url(endpoint))
            .header(AGENT_ID_HEADER, agent_id.value.as_str())
            .timeout(CALL_TIMEOUT)
            .json(&call);
        let permits = self.permits.clone();
        let endpoint = endpoint.to_string();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {}
                Ok(r) => {
                    let status = r.status();
                    let body = clip(r.text().await.unwrap_or_default());
                    tracing::warn!(master = %endpoint, %status, %body, "the master did not accept an agent call");
                }
                Err(e) => tracing::warn!(master = %endpoint, error = %e, "agent call failed"),
            }
        });
    }
}
