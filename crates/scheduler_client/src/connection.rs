//! The subscription loop: SUBSCRIBE, decode the stream, re-subscribe when it breaks.
//!
//! mesos-http-api.md 8.1: SUBSCRIBE is a `POST /api/v1/scheduler` whose `200` response is a RecordIO
//! stream (section 7) with header `Mesos-Stream-Id`; its first record is SUBSCRIBED, or ERROR then
//! close. Re-subscriptions carry the framework id both at the top level and in
//! `framework_info.id`, which even a new leader that never saw the id accepts (mesos-ha.md 3.5).
//!
//! 8.6: the stream counts as dead after about 5 missed heartbeats; then, or when it breaks, or
//! when the detector names a new leader, the loop re-subscribes on a new connection after a
//! jittered exponential backoff (`backoff`). A standby answers 307 (followed, `detect`) or 503
//! (retried after the backoff). A record that does not frame or parse is logged with the record's
//! text and the connection is re-established: the stream's position can no longer be trusted.

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::detect::{self, REDIRECTS_MAX};
use crate::error::{clip, show_bytes};
use crate::{ClientEvent, Session, Shared};
use election::{Detector, Leader};
use futures::StreamExt;
use proto::recordio;
use proto::scheduler::{Call, Event, Subscribe};
use proto::FrameworkId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// Used when SUBSCRIBED announces no usable heartbeat interval (proto default, 15 s).
const HEARTBEAT_INTERVAL_FALLBACK: Duration = Duration::from_secs(15);
/// How long the final events (`Disconnected`, `FrameworkRemoved`) may wait for room in the channel.
const FINAL_EVENT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn scheduler_url(endpoint: &str) -> String {
    format!("http://{endpoint}{SCHEDULER_PATH}")
}

/// What an ERROR event means to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// "Framework has been removed" (also after TEARDOWN or failover timeout): never coming back.
    Removed,
    /// "Framework failed over": another instance took the stream.
    FailedOver,
    /// Anything else (invalid FrameworkInfo, authorization): reported, then re-subscribed.
    Other,
}

pub fn classify_error(message: &str) -> ErrorKind {
    let message = message.to_ascii_lowercase();
    if message.contains("failed over") {
        ErrorKind::FailedOver
    } else if message.contains("removed")
        || message.contains("torn down")
        || message.contains("teardown")
    {
        ErrorKind::Removed
    } else {
        ErrorKind::Other
    }
}

/// Why a stream could not be decoded.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad RecordIO framing: {0}")]
    Framing(#[from] recordio::RecordIoError),
    #[error("record is not a scheduler event ({error}): {record}")]
    Event { error: String, record: String },
}

/// RecordIO records to `Event`s, fed arbitrary chunks (mesos-http-api.md section 7).
#[derive(Default)]
pub struct EventDecoder {
    records: recordio::Decoder,
}

impl EventDecoder {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.records.feed(chunk);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        let Some(record) = self.records.next_record()? else {
            return Ok(None);
        };
        serde_json::from_slice(&record)
            .map(Some)
            .map_err(|e| DecodeError::Event {
                error: e.to_string(),
                record: show_bytes(&record),
            })
    }
}

/// How one subscription attempt ended.
#[allow(clippy::large_enum_variant)] // one per session
enum End {
    /// The detector named another leader (or none).
    LeaderChanged(Option<Leader>),
    /// Try again after the backoff; `subscribed` if SUBSCRIBED was received on it.
    Retry { subscribed: bool },
    /// The client stops (stop, teardown, removed, failed over, receiver gone).
    Stop,
}

/// Internal: the events receiver is gone or the client was stopped.
struct Stopped;

pub struct Runner {
    shared: Arc<Shared>,
    config: ClientConfig,
    detector: Arc<dyn Detector>,
    events: mpsc::Sender<ClientEvent>,
    stop: watch::Receiver<bool>,
}

impl Runner {
    pub fn new(
        shared: Arc<Shared>,
        config: ClientConfig,
        detector: Arc<dyn Detector>,
        events: mpsc::Sender<ClientEvent>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Runner {
            shared,
            config,
            detector,
            events,
            stop,
        }
    }

    pub async fn run(mut self) {
        let mut rx = self.detector.leader();
        let mut leader = rx.borrow_and_update().clone();
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut first_attempt = true;
        loop {
            if self.stopping() {
                break;
            }
            let Some(current) = leader.clone() else {
                tracing::info!("no leading master detected; waiting for one");
                tokio::select! {
                    next = detect::changed(&mut rx, None) => leader = next,
                    _ = stopped(&mut self.stop) => break,
                    _ = self.events.closed() => break,
                }
                backoff.reset();
                continue;
            };
            if !first_attempt {
                let delay = backoff.next_delay();
                tracing::debug!(master = %current.endpoint, ?delay, "subscribing again after a backoff");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    next = detect::changed(&mut rx, Some(&current)) => {
                        leader = next;
                        backoff.reset();
                        continue;
                    }
                    _ = stopped(&mut self.stop) => break,
                    _ = self.events.closed() => break,
                }
            }
            first_attempt = false;
            match self.session(&current, &mut rx).await {
                End::LeaderChanged(next) => {
                    tracing::info!(old = %current.endpoint, new = ?next.as_ref().map(|l| &l.endpoint), "leading master changed");
                    leader = next;
                    backoff.reset();
                }
                End::Retry { subscribed: true } => backoff.reset(),
                End::Retry { subscribed: false } => {}
                End::Stop => break,
            }
        }
        self.finish().await;
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || self.events.is_closed()
    }

    /// Calls fail with `Stopped` from now on. Done before the last events are sent, so a caller
    /// reacting to them already sees a stopped client.
    fn mark_stopped(&self) {
        {
            let mut state = self.shared.state();
            state.session = None;
            state.stopped = true;
        }
        let _ = self.shared.stop.send(true);
    }

    /// Final bookkeeping: no session, and `FrameworkRemoved` after a TEARDOWN.
    async fn finish(&mut self) {
        self.mark_stopped();
        let torn_down = self.shared.state().torn_down;
        if torn_down {
            let event = ClientEvent::FrameworkRemoved {
                message: "torn down by this scheduler (TEARDOWN)".into(),
            };
            let _ = tokio::time::timeout(FINAL_EVENT_TIMEOUT, self.events.send(event)).await;
        }
        tracing::info!("scheduler client stopped");
    }

    /// Sends an event, giving up if the client is stopped meanwhile or the receiver is gone.
    async fn emit(&mut self, event: ClientEvent) -> Result<(), Stopped> {
        tokio::select! {
            sent = self.events.send(event) => sent.map_err(|_| Stopped),
            _ = stopped(&mut self.stop) => Err(Stopped),
        }
    }

    fn subscribe_call(&self) -> (Call, Option<FrameworkId>) {
        let framework_id = self.shared.state().framework_id.clone();
        let mut info = self.config.framework_info.clone();
        info.id = framework_id.clone();
        let mut call = Call::new("SUBSCRIBE", framework_id.clone());
        call.subscribe = Some(Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
        });
        (call, framework_id)
    }

    /// POSTs SUBSCRIBE, following redirects; `Ok((endpoint, response))` on a 200.
    async fn post_subscribe(
        &self,
        leader: &Leader,
        body: &[u8],
    ) -> Result<(String, reqwest::Response), End> {
        let mut endpoint = leader.endpoint.clone();
        for _ in 0..=REDIRECTS_MAX {
            let request = self
                .shared
                .http
                .post(scheduler_url(&endpoint))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.to_vec())
                .send();
            let response = match tokio::time::timeout(self.config.subscribe_timeout, request).await
            {
                Err(_) => {
                    tracing::warn!(master = %endpoint, timeout = ?self.config.subscribe_timeout, "no answer to SUBSCRIBE in time");
                    return Err(End::Retry { subscribed: false });
                }
                Ok(Err(e)) => {
                    tracing::warn!(master = %endpoint, error = %e, "cannot SUBSCRIBE");
                    return Err(End::Retry { subscribed: false });
                }
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if status == reqwest::StatusCode::OK {
                return Ok((endpoint, response));
            }
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok());
                match location.and_then(detect::location_endpoint) {
                    Some(next) => {
                        tracing::info!(from = %endpoint, to = %next, "not the leader; following the redirect");
                        endpoint = next;
                        continue;
                    }
                    None => {
                        tracing::warn!(master = %endpoint, %status, ?location, "redirect without a usable Location");
                        return Err(End::Retry { subscribed: false });
                    }
                }
            }
            let body = clip(response.text().await.unwrap_or_default());
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                // No leader elected, or the leader is still recovering (mesos-http-api.md section 2).
                tracing::info!(master = %endpoint, reason = %body, "master unavailable; retrying");
            } else {
                tracing::warn!(master = %endpoint, %status, %body, "the master refused SUBSCRIBE");
            }
            return Err(End::Retry { subscribed: false });
        }
        tracing::warn!(master = %leader.endpoint, "more than {REDIRECTS_MAX} redirects; starting over");
        Err(End::Retry { subscribed: false })
    }

    /// One subscription attempt and the life of its stream.
    async fn session(&mut self, leader: &Leader, rx: &mut watch::Receiver<Option<Leader>>) -> End {
        let (call, subscribed_with) = self.subscribe_call();
        let body = match serde_json::to_vec(&call) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode SUBSCRIBE (framework_info has a non-finite number?)");
                return End::Retry { subscribed: false };
            }
        };
        tracing::info!(master = %leader.endpoint, framework_id = ?subscribed_with.as_ref().map(|f| f.as_str()), "subscribing");
        let mut stop = self.stop.clone();
        let attempt = tokio::select! {
            r = self.post_subscribe(leader, &body) => r,
            next = detect::changed(rx, Some(leader)) => return End::LeaderChanged(next),
            _ = stopped(&mut stop) => return End::Stop,
        };
        let (endpoint, response) = match attempt {
            Ok(ok) => ok,
            Err(end) => return end,
        };
        // Absent when the master answers ERROR then closes (refused subscription).
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut stream = response.bytes_stream();
        let mut decoder = EventDecoder::default();
        let mut connected = false;
        // Until SUBSCRIBED says otherwise, the subscribe deadline bounds the silence.
        let mut silence_limit = self.config.subscribe_timeout;
        let outcome: Result<End, Stopped> = 'stream: loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(silence_limit, stream.next()) => c,
                next = detect::changed(rx, Some(leader)) => break Ok(End::LeaderChanged(next)),
                _ = stopped(&mut self.stop) => break Err(Stopped),
            };
            let reason = match chunk {
                Err(_) if connected => {
                    format!("no heartbeat from {endpoint} for {silence_limit:?}")
                }
                Err(_) => format!("no SUBSCRIBED from {endpoint} within {silence_limit:?}"),
                Ok(None) => match decoder.records.finish() {
                    Ok(()) => format!("{endpoint} closed the stream"),
                    Err(e) => format!("{endpoint} closed the stream inside a record: {e}"),
                },
                Ok(Some(Err(e))) => format!("the stream from {endpoint} broke: {e}"),
                Ok(Some(Ok(bytes))) => {
                    decoder.feed(&bytes);
                    loop {
                        let event = match decoder.next_event() {
                            Ok(Some(event)) => event,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(master = %endpoint, error = %e, "malformed record on the subscription stream; reconnecting");
                                break 'stream Ok(self
                                    .disconnected(
                                        connected,
                                        format!("malformed record from {endpoint}: {e}"),
                                    )
                                    .await);
                            }
                        };
                        match self
                            .on_event(
                                event,
                                &endpoint,
                                stream_id.as_deref(),
                                subscribed_with.is_some(),
                                &mut connected,
                                &mut silence_limit,
                            )
                            .await
                        {
                            Ok(None) => {}
                            Ok(Some(end)) => break 'stream Ok(end),
                            Err(Stopped) => break 'stream Err(Stopped),
                        }
                    }
                    continue;
                }
            };
            tracing::warn!(master = %endpoint, %reason, "subscription ended");
            break Ok(self.disconnected(connected, reason).await);
        };
        match outcome {
            Ok(End::LeaderChanged(next)) => {
                let reason = format!("leading master changed from {}", leader.endpoint);
                if let End::Stop = self.disconnected(connected, reason).await {
                    return End::Stop;
                }
                End::LeaderChanged(next)
            }
            Ok(end) => end,
            Err(Stopped) => {
                let _ = self
                    .disconnected_final(connected, "the scheduler client stopped")
                    .await;
                End::Stop
            }
        }
    }

    /// Handles one event; `Ok(Some(end))` ends the session.
    #[allow(clippy::too_many_arguments)]
    async fn on_event(
        &mut self,
        event: Event,
        endpoint: &str,
        stream_id: Option<&str>,
        reregistering: bool,
        connected: &mut bool,
        silence_limit: &mut Duration,
    ) -> Result<Option<End>, Stopped> {
        match event.kind.as_str() {
            "SUBSCRIBED" if !*connected => {
                let (Some(subscribed), Some(stream_id)) = (event.subscribed.clone(), stream_id)
                else {
                    tracing::warn!(master = %endpoint, "SUBSCRIBED without its payload or without a Mesos-Stream-Id header; reconnecting");
                    return Ok(Some(End::Retry { subscribed: false }));
                };
                let interval = Some(subscribed.heartbeat_interval_seconds)
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .unwrap_or(HEARTBEAT_INTERVAL_FALLBACK);
                *silence_limit = interval * self.config.heartbeats_missed_max.max(1);
                let framework_id = subscribed.framework_id.clone();
                {
                    let mut state = self.shared.state();
                    state.framework_id = Some(framework_id.clone());
                    state.session = Some(Session {
                        endpoint: endpoint.to_string(),
                        stream_id: stream_id.to_string(),
                        framework_id: framework_id.clone(),
                    });
                }
                *connected = true;
                tracing::info!(master = %endpoint, framework_id = %framework_id, reregistered = reregistering, "subscribed");
                self.emit(ClientEvent::Connected {
                    framework_id,
                    master: endpoint.to_string(),
                    reregistered: reregistering,
                })
                .await?;
                self.emit(ClientEvent::Event(event)).await?;
                Ok(None)
            }
            "ERROR" => {
                let message = event
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                tracing::warn!(master = %endpoint, %message, "ERROR event from the master");
                match classify_error(&message) {
                    ErrorKind::Removed => {
                        self.emit(ClientEvent::Event(event)).await?;
                        self.mark_stopped();
                        let _ = self
                            .disconnected_final(*connected, "the framework was removed")
                            .await;
                        // Reported here; `finish` must not report it a second time.
                        self.shared.state().torn_down = false;
                        self.final_event(ClientEvent::FrameworkRemoved { message })
                            .await;
                        Ok(Some(End::Stop))
                    }
                    ErrorKind::FailedOver => {
                        self.emit(ClientEvent::Event(event)).await?;
                        self.mark_stopped();
                        let _ = self
                            .disconnected_final(*connected, "another scheduler instance took over")
                            .await;
                        self.final_event(ClientEvent::FailedOver { message }).await;
                        Ok(Some(End::Stop))
                    }
                    // The master closes the stream after it; the loop re-subscribes.
                    ErrorKind::Other => self.emit(ClientEvent::Event(event)).await.map(|()| None),
                }
            }
            _ if !*connected => {
                tracing::warn!(master = %endpoint, kind = %event.kind, "event before SUBSCRIBED; reconnecting");
                Ok(Some(End::Retry { subscribed: false }))
            }
            "HEARTBEAT" if !self.config.forward_heartbeats => Ok(None),
            _ => self.emit(ClientEvent::Event(event)).await.map(|()| None),
        }
    }

    /// The session is over: forget it and, if it was connected, say so. `End::Stop` if the
    /// receiver is gone.
    async fn disconnected(&mut self, connected: bool, reason: String) -> End {
        self.shared.state().session = None;
        if connected
            && self
                .emit(ClientEvent::Disconnected { reason })
                .await
                .is_err()
        {
            return End::Stop;
        }
        End::Retry {
            subscribed: connected,
        }
    }

    /// Like `disconnected`, for a client that is stopping anyway.
    async fn disconnected_final(&mut self, connected: bool, reason: &str) -> End {
        self.shared.state().session = None;
        if connected {
            self.final_event(ClientEvent::Disconnected {
                reason: reason.to_string(),
            })
            .await;
        }
        End::Stop
    }

    async fn final_event(&self, event: ClientEvent) {
        let _ = tokio::time::timeout(FINAL_EVENT_TIMEOUT, self.events.send(event)).await;
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_classified() {
        assert_eq!(
            classify_error("Framework has been removed"),
            ErrorKind::Removed
        );
        assert_eq!(
            classify_error("Framework failed over"),
            ErrorKind::FailedOver
        );
        assert_eq!(
            classify_error("framework was torn down"),
            ErrorKind::Removed
        );
        assert_eq!(
            classify_error("role 'a b' contains whitespace"),
            ErrorKind::Other
        );
    }

    #[test]
    fn decoder_yields_events_across_chunks_and_reports_bad_records() {
        let mut wire = recordio::encode(br#"{"type":"HEARTBEAT"}"#);
        wire.extend(recordio::encode(
            br#"{"type":"RESCIND","rescind":{"offer_id":{"value":"o1"}}}"#,
        ));
        let mut d = EventDecoder::default();
        let mut kinds = Vec::new();
        for byte in &wire {
            d.feed(std::slice::from_ref(byte));
            while let Some(event) = d.next_event().unwrap() {
                kinds.push(event.kind);
            }
        }
        assert_eq!(kinds, ["HEARTBEAT", "RESCIND"]);

        let mut d = EventDecoder::default();
        d.feed(&recordio::encode(b"{not json"));
        match d.next_event() {
            Err(DecodeError::Event { record, .. }) => assert_eq!(record, "{not json"),
            other => panic!("{other:?}"),
        }
        let mut d = EventDecoder::default();
        d.feed(b"x1\n{}");
        assert!(matches!(d.next_event(), Err(DecodeError::Framing(_))));
    }
}
