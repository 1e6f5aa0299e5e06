//! One simulated agent: waits for a leader, (re)registers after a jittered, doubling backoff,
//! follows `307` redirects, then keeps the RecordIO stream open, answering `PING` with `PONG` until
//! the stream ends, the leader changes, the master sends `SHUTDOWN` or the run stops. It behaves
//! like `tepui agent` on the wire without running tasks or serving HTTP.

use super::report::{Event, RegisteredWith};
use super::{changed, stopped, Shared};
use election::Leader;
use futures::StreamExt;
use proto::agent_protocol::{
    AgentCall, AgentInfo, MasterToAgent, AGENT_ID_HEADER, AGENT_PATH, PROTOCOL_VERSION,
};
use proto::{recordio, AgentId};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Upper bound of the registration backoff (mesos-ha.md 3.3).
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Silence after which a registered agent gives up on its master (15 s pings x 5).
const PING_TIMEOUT_TOTAL: Duration = Duration::from_secs(75);
/// How long a (re)registration may wait for the response headers.
const REGISTRATION_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one pong may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed within one registration attempt.
const REDIRECT_HOPS_MAX: usize = 3;

/// splitmix64: enough randomness for jitter, without another dependency.
struct Jitter(u64);

impl Jitter {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An error with its sources (reqwest's own text is only "error sending request for url").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn url(endpoint: &str) -> String {
    format!("http://{endpoint}{AGENT_PATH}")
}

/// `host:port` of a `Location` header: `//host:port/path`, `http://host:port/path` or `host:port`.
fn location_endpoint(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))
        .unwrap_or(location);
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = authority.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some(authority.to_string())
}

#[allow(clippy::large_enum_variant)] // one per session
enum SessionEnd {
    LeaderChanged(Option<Leader>),
    Ended { registered: bool },
    Stop,
}

pub(super) struct SimAgent {
    shared: Arc<Shared>,
    index: usize,
    agent_id: Option<AgentId>,
    info: AgentInfo,
    endpoint: String,
    jitter: Jitter,
}

impl SimAgent {
    pub(super) fn new(shared: Arc<Shared>, index: usize, seed: u64) -> SimAgent {
        let c = &shared.config;
        let port = c.port_base + index as u16;
        let info = AgentInfo {
            id: None,
            hostname: format!("{}-{index}", c.hostname_prefix),
            port,
            resources: c.resources.clone(),
            attributes: Vec::new(),
        };
        let endpoint = format!("{}:{port}", c.ip);
        SimAgent {
            shared,
            index,
            agent_id: None,
            info,
            endpoint,
            jitter: Jitter(seed),
        }
    }

    pub(super) async fn run(
        mut self,
        mut rx: watch::Receiver<Option<Leader>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let factor = self.shared.config.backoff_factor;
        let mut leader = rx.borrow_and_update().clone();
        let mut backoff = factor;
        loop {
            if *stop.borrow() {
                return;
            }
            let Some(current) = leader.clone() else {
                tokio::select! {
                    next = changed(&mut rx, None) => leader = next,
                    _ = stopped(&mut stop) => return,
                }
                backoff = factor;
                continue;
            };
            let delay = backoff.mul_f64(self.jitter.next_unit());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                next = changed(&mut rx, Some(&current)) => {
                    leader = next;
                    backoff = factor;
                    continue;
                }
                _ = stopped(&mut stop) => return,
            }
            match self.session(&current, &mut rx, &mut stop).await {
                SessionEnd::LeaderChanged(next) => {
                    leader = next;
                    backoff = factor;
                }
                SessionEnd::Ended { registered: true } => backoff = factor,
                SessionEnd::Ended { registered: false } => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(1), BACKOFF_MAX);
                }
                SessionEnd::Stop => return,
            }
        }
    }

    fn registration_call(&self) -> AgentCall {
        let mut agent_info = self.info.clone();
        agent_info.id = self.agent_id.clone();
        match agent_info.id {
            None => AgentCall::Register {
                protocol_version: PROTOCOL_VERSION,
                agent_info,
                endpoint: self.endpoint.clone(),
                version: proto::MESOS_VERSION.to_string(),
            },
            Some(_) => AgentCall::Reregister {
                protocol_version: PROTOCOL_VERSION,
                agent_info,
                endpoint: self.endpoint.clone(),
                version: proto::MESOS_VERSION.to_string(),
                tasks: Vec::new(),
                frameworks: Vec::new(),
            },
        }
    }

    /// One (re)registration attempt (following redirects) and the life of its stream.
    async fn session(
        &mut self,
        leader: &Leader,
        rx: &mut watch::Receiver<Option<Leader>>,
        stop: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        let shared = self.shared.clone();
        let stats = &shared.stats;
        let call = self.registration_call();
        let mut target = leader.endpoint.clone();
        let mut hops = 0;
        let response = loop {
            stats.attempts.fetch_add(1, Ordering::Relaxed);
            let request = shared.client.post(url(&target)).json(&call).send();
            let answer = tokio::select! {
                r = tokio::time::timeout(REGISTRATION_RESPONSE_TIMEOUT, request) => r,
                next = changed(rx, Some(leader)) => return SessionEnd::LeaderChanged(next),
                _ = stopped(stop) => return SessionEnd::Stop,
            };
            let response = match answer {
                Err(_) => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!(
                        "{target}: no answer within {REGISTRATION_RESPONSE_TIMEOUT:?}"
                    ));
                    return SessionEnd::Ended { registered: false };
                }
                Ok(Err(e)) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!("{target}: {}", chain(&e)));
                    return SessionEnd::Ended { registered: false };
                }
                Ok(Ok(r)) => r,
            };
            match response.status().as_u16() {
                200 => break response,
                307 => {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match location.as_deref().and_then(location_endpoint) {
                        Some(next) if hops < REDIRECT_HOPS_MAX && next != target => {
                            stats.redirects.fetch_add(1, Ordering::Relaxed);
                            hops += 1;
                            target = next;
                        }
                        _ => {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            stats.note_error(format!(
                                "{target}: 307 to {location:?} not followed (hop {hops})"
                            ));
                            return SessionEnd::Ended { registered: false };
                        }
                    }
                }
                503 => {
                    stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    return SessionEnd::Ended { registered: false };
                }
                _ => {
                    let status = response.status();
                    let body = tokio::time::timeout(CALL_TIMEOUT, response.text())
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .unwrap_or_default();
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    stats.note_error(format!("{target}: {status}: {body}"));
                    return SessionEnd::Ended { registered: false };
                }
            }
        };
        let mut stream = response.bytes_stream();
        let mut decoder = recordio::Decoder::new();
        let mut registered = false;
        let end = 'stream: loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(PING_TIMEOUT_TOTAL, stream.next()) => c,
                next = changed(rx, Some(leader)) => break 'stream SessionEnd::LeaderChanged(next),
                _ = stopped(stop) => break 'stream SessionEnd::Stop,
            };
            let bytes = match chunk {
                Err(_) => {
                    stats.note_error(format!(
                        "{target}: nothing heard for {PING_TIMEOUT_TOTAL:?}"
                    ));
                    break SessionEnd::Ended { registered };
                }
                Ok(None) => break SessionEnd::Ended { registered },
                Ok(Some(Err(e))) => {
                    stats.note_error(format!("{target}: stream broke: {}", chain(&e)));
                    break SessionEnd::Ended { registered };
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            decoder.feed(&bytes);
            loop {
                let record = match decoder.next_record() {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(e) => {
                        stats.note_error(format!("{target}: bad framing: {e}"));
                        break 'stream SessionEnd::Ended { registered };
                    }
                };
                let message: MasterToAgent = match serde_json::from_slice(&record) {
                    Ok(m) => m,
                    Err(e) => {
                        stats.ignored_messages.fetch_add(1, Ordering::Relaxed);
                        stats.note_error(format!("{target}: unreadable message: {e}"));
                        continue;
                    }
                };
                match message {
                    MasterToAgent::Registered {
                        protocol_version,
                        agent_id,
                        master_info,
                        ..
                    } => {
                        if protocol_version != PROTOCOL_VERSION {
                            let why = format!("master {target} speaks agent protocol {protocol_version}, not {PROTOCOL_VERSION}");
                            let _ = shared.events.send(Event::Stopped {
                                index: self.index,
                                why,
                            });
                            break 'stream SessionEnd::Stop;
                        }
                        let counter = if self.agent_id.is_some() {
                            &stats.reregistered
                        } else {
                            &stats.registered
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        self.agent_id = Some(agent_id);
                        registered = true;
                        let with = RegisteredWith {
                            master_id: master_info.id,
                            via: leader.endpoint.clone(),
                        };
                        let _ = shared.events.send(Event::Registered {
                            index: self.index,
                            with,
                        });
                    }
                    MasterToAgent::Ping if registered => {
                        stats.pings.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = &self.agent_id {
                            self.pong(&target, id);
                        }
                    }
                    MasterToAgent::Shutdown { message } => {
                        let why = format!("master {target} sent SHUTDOWN: {message}");
                        let _ = shared.events.send(Event::Stopped {
                            index: self.index,
                            why,
                        });
                        break 'stream SessionEnd::Stop;
                    }
                    _ => {
                        stats.ignored_messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Ended { .. }) {
            stats.stream_ends.fetch_add(1, Ordering::Relaxed);
        }
        if registered {
            let _ = shared
                .events
                .send(Event::Disconnected { index: self.index });
        }
        end
    }

    fn pong(&self, endpoint: &str, agent_id: &AgentId) {
        let shared = self.shared.clone();
        let request = shared
            .client
            .post(url(endpoint))
            .header(AGENT_ID_HEADER, agent_id.as_str())
            .timeout(CALL_TIMEOUT)
            .json(&AgentCall::Pong {
                protocol_version: PROTOCOL_VERSION,
            });
        let endpoint = endpoint.to_string();
        tokio::spawn(async move {
            let Ok(_permit) = shared.pong_permits.clone().acquire_owned().await else {
                return;
            };
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {}
                Ok(r) => {
                    shared.stats.pongs_failed.fetch_add(1, Ordering::Relaxed);
                    shared
                        .stats
                        .note_error(format!("{endpoint}: PONG answered {}", r.status()));
                }
                Err(e) => {
                    shared.stats.pongs_failed.fetch_add(1, Ordering::Relaxed);
                    shared
                        .stats
                        .note_error(format!("{endpoint}: PONG failed: {}", chain(&e)));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_agents::stats::Stats;
    use crate::sim_agents::Config;
    use proto::ResourceBag;
    use std::net::Ipv4Addr;
    use tokio::sync::{mpsc, Semaphore};

    #[test]
    fn location_forms() {
        assert_eq!(
            location_endpoint("//10.0.0.2:5050/internal/v1/agent").as_deref(),
            Some("10.0.0.2:5050")
        );
        assert_eq!(
            location_endpoint("http://m2:5050/x?y").as_deref(),
            Some("m2:5050")
        );
        assert_eq!(location_endpoint("m3:5050").as_deref(), Some("m3:5050"));
        assert_eq!(location_endpoint("//nohost/path"), None);
        assert_eq!(location_endpoint("//:5050/"), None);
        assert_eq!(location_endpoint("//h:99999/"), None);
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        let mut j = Jitter(42);
        for _ in 0..10_000 {
            let x = j.next_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn calls_register_then_reregister() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            client: reqwest::Client::new(),
            config: Config {
                count: 1,
                ip: Ipv4Addr::LOCALHOST,
                backoff_factor: Duration::from_secs(1),
                hostname_prefix: "sim".into(),
                port_base: 40000,
                resources: ResourceBag::parse("cpus:1;mem:1024")
                    .unwrap_or_default()
                    .to_resources(None),
                progress_interval: Duration::from_secs(5),
            },
            stats: Stats::default(),
            pong_permits: Arc::new(Semaphore::new(1)),
            events: tx,
        });
        let mut agent = SimAgent::new(shared, 7, 1);
        assert_eq!(agent.info.hostname, "sim-7");
        assert_eq!(agent.endpoint, "127.0.0.1:40007");
        assert!(matches!(
            agent.registration_call(),
            AgentCall::Register { .. }
        ));
        agent.agent_id = Some(AgentId::new("a-1"));
        match agent.registration_call() {
            AgentCall::Reregister { agent_info, .. } => {
                assert_eq!(agent_info.id, Some(AgentId::new("a-1")))
            }
            other => panic!("expected REREGISTER, got {other:?}"),
        }
    }
}
